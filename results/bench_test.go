package results

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// benchQuery is the selective query of the benchmark and the pruning test:
// one class, confident, a 5-minute window of one video. It is the Go form
// of DuckDBExample restricted to one video.
func benchQuery() Filter {
	return Filter{Videos: []string{"video004"}, Classes: []string{"person"}, MinConf: 0.6, From: ptr(600.0), To: ptr(900.0)}
}

// Query tables: 25,000 frames (1000 s at 25 fps) per video, 4 detections a
// frame; 10 videos is the 1M-row test size, 100 the 10M-row benchmark.
var (
	queryParams1M  = genParams{Seed: 7, Videos: 10, Frames: 25000, Dets: 4}
	queryParams10M = genParams{Seed: 7, Videos: 100, Frames: 25000, Dets: 4}
)

// cachedTable returns the path of the detections file for p, generating it
// once into os.TempDir(), keyed by p, so reruns skip the generation.
func cachedTable(tb testing.TB, p genParams) (path string, generated time.Duration) {
	tb.Helper()
	path = filepath.Join(os.TempDir(), "vidpipe-results-"+p.String()+"-v1.parquet")
	if _, err := os.Stat(path); err == nil {
		return path, 0
	}
	start := time.Now()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vidpipe-results-*.parquet")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	w := NewWriter(tmp, WriterOptions{})
	var addErr error
	generate(p, func(r Row) {
		if addErr == nil {
			addErr = w.Add(r)
		}
	})
	if addErr != nil {
		tb.Fatalf("add: %v", addErr)
	}
	if err := w.Close(); err != nil {
		tb.Fatalf("close writer: %v", err)
	}
	if err := tmp.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		tb.Fatal(err)
	}
	return path, time.Since(start)
}

var (
	table1MOnce sync.Once
	table1M     []byte
)

// table1MBytes is the 1M-row table in memory, written once per test binary.
func table1MBytes(tb testing.TB) []byte {
	table1MOnce.Do(func() {
		var rows []Row
		generate(queryParams1M, func(r Row) { rows = append(rows, r) })
		table1M = writeRows(tb, rows, WriterOptions{})
	})
	if table1M == nil {
		tb.Fatal("1M-row table was not written")
	}
	return table1M
}

// TestPruning is the benchmark's query at test size: the answer equals the
// brute-force filter while reading a small part of the file.
func TestPruning(t *testing.T) {
	data := table1MBytes(t)
	src := NewBytesSource("1M.parquet", data)
	f := benchQuery()
	var want []Row
	generate(queryParams1M, func(r Row) {
		if matches(f, r) {
			want = append(want, r)
		}
	})
	got, st := scanAll(t, src, f)
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("got %d rows, brute force %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	frac := float64(st.BytesRead) / float64(len(data))
	t.Logf("1M rows, %d bytes: read %d row groups of %d, %d bytes (%.2f%%) in %d requests, %d matched",
		len(data), st.RowGroupsRead, st.RowGroups, st.BytesRead, 100*frac, st.Reads, st.Matched)
	if st.RowGroups < 15 || st.RowGroupsRead > 2 {
		t.Errorf("read %d of %d row groups, want at most 2", st.RowGroupsRead, st.RowGroups)
	}
	if frac >= 0.10 {
		t.Errorf("read %.1f%% of the file, want < 10%%", 100*frac)
	}

	// The same query with pruning off must agree and read everything.
	var all int64
	full, err := scan(context.Background(), src, f, scanOptions{cols: allCols, noPrune: true}, func(Row) error { all++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if all != int64(len(want)) || full.RowGroupsRead != full.RowGroups {
		t.Errorf("unpruned scan: %d rows, %d of %d row groups", all, full.RowGroupsRead, full.RowGroups)
	}
}

// BenchmarkQuery times the selective query on 1M and 10M rows, against the
// same query with pruning off (the cost of reading every row group).
func BenchmarkQuery(b *testing.B) {
	for _, tc := range []struct {
		name string
		p    genParams
	}{{"rows=1M", queryParams1M}, {"rows=10M", queryParams10M}} {
		b.Run(tc.name, func(b *testing.B) {
			path, gen := cachedTable(b, tc.p)
			if gen > 0 {
				b.Logf("generated %s in %v", path, gen.Round(time.Millisecond))
			}
			src, err := OpenFile(path)
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			for _, mode := range []struct {
				name string
				opt  scanOptions
			}{{"pruned", scanOptions{cols: allCols}}, {"full", scanOptions{cols: allCols, noPrune: true}}} {
				b.Run(mode.name, func(b *testing.B) {
					var st ScanStats
					b.ResetTimer()
					for b.Loop() {
						st, err = scan(context.Background(), src, benchQuery(), mode.opt, func(Row) error { return nil })
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
					b.ReportMetric(float64(st.BytesRead)/1e6, "MB-read")
					b.ReportMetric(float64(src.Size())/1e6, "file-MB")
					b.ReportMetric(100*float64(st.BytesRead)/float64(src.Size()), "%read")
					b.ReportMetric(float64(st.Reads), "requests")
					b.ReportMetric(float64(st.RowGroupsRead), "rg-read")
					b.ReportMetric(float64(st.RowGroups), "rg-total")
					b.ReportMetric(float64(st.Matched), "rows-matched")
				})
			}
		})
	}
}
