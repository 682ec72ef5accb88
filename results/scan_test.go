package results

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func scanAll(t *testing.T, src Source, f Filter) ([]Row, ScanStats) {
	t.Helper()
	var got []Row
	st, err := Scan(context.Background(), src, f, func(r Row) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return got, st
}

func TestRoundTrip(t *testing.T) {
	p := genParams{Seed: 1, Jobs: 2, Videos: 3, Frames: 1500, Dets: 2, RandomDets: true, Classes: 12}
	rows := collect(p)
	data := writeRows(t, rows, WriterOptions{RowGroupRows: 1000})
	src := NewBytesSource("roundtrip.parquet", data)

	got, st := scanAll(t, src, Filter{})
	if len(got) != len(rows) {
		t.Fatalf("scan returned %d rows, wrote %d", len(got), len(rows))
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Fatalf("row %d: got %+v, wrote %+v", i, got[i], rows[i])
		}
	}
	wantGroups := (len(rows) + 999) / 1000
	if st.RowGroups != wantGroups || st.RowGroupsRead != wantGroups || st.Rows != int64(len(rows)) || st.Matched != int64(len(rows)) {
		t.Errorf("stats %+v, want %d row groups all read, %d rows matched", st, wantGroups, len(rows))
	}
	if st.BytesRead < int64(len(data))*9/10 || st.BytesRead > int64(len(data)) {
		t.Errorf("full scan read %d bytes of a %d-byte file", st.BytesRead, len(data))
	}
}

func TestScanFilters(t *testing.T) {
	p := genParams{Seed: 2, Jobs: 2, Videos: 4, Frames: 2000, Dets: 2, RandomDets: true, Classes: 15}
	rows := collect(p)
	src := NewBytesSource("filters.parquet", writeRows(t, rows, WriterOptions{RowGroupRows: 2000}))

	tests := []struct {
		name string
		f    Filter
		// prunes says some row groups must be skipped without being read.
		prunes bool
	}{
		{name: "class", f: Filter{Classes: []string{"car"}}},
		{name: "two classes", f: Filter{Classes: []string{"dog", "person"}}},
		{name: "absent class", f: Filter{Classes: []string{"giraffe"}}, prunes: true},
		{name: "class ids", f: Filter{ClassIDs: []int32{2, 5}}},
		{name: "absent class id", f: Filter{ClassIDs: []int32{79}}, prunes: true},
		{name: "min conf", f: Filter{MinConf: 0.6}},
		{name: "conf above all", f: Filter{MinConf: 1.5}, prunes: true},
		{name: "time window", f: Filter{From: ptr(10.0), To: ptr(20.0)}, prunes: true},
		{name: "from only", f: Filter{From: ptr(75.5)}, prunes: true},
		{name: "to only", f: Filter{To: ptr(3.0)}, prunes: true},
		{name: "empty window", f: Filter{From: ptr(20.0), To: ptr(20.0)}, prunes: true},
		{name: "window boundary", f: Filter{From: ptr(8.0), To: ptr(8.04)}, prunes: true},
		{name: "video", f: Filter{Videos: []string{"video002"}}, prunes: true},
		{name: "job", f: Filter{Jobs: []string{"job-01"}}, prunes: true},
		{name: "unknown video", f: Filter{Videos: []string{"nope"}}, prunes: true},
		{name: "frames", f: Filter{FromFrame: ptr[int64](100), ToFrame: ptr[int64](300)}, prunes: true},
		{
			name:   "combined",
			f:      Filter{Jobs: []string{"job-00"}, Videos: []string{"video001", "video003"}, Classes: []string{"person"}, MinConf: 0.6, From: ptr(30.0), To: ptr(60.0)},
			prunes: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []Row
			for _, r := range rows {
				if matches(tt.f, r) {
					want = append(want, r)
				}
			}
			got, st := scanAll(t, src, tt.f)
			if len(got) != len(want) {
				t.Fatalf("got %d rows, brute force %d", len(got), len(want))
			}
			if len(want) > 0 && !reflect.DeepEqual(got, want) {
				t.Fatalf("rows differ from brute force (first got %+v, want %+v)", got[0], want[0])
			}
			if st.Matched != int64(len(want)) {
				t.Errorf("stats matched %d, want %d", st.Matched, len(want))
			}
			if tt.prunes && st.RowGroupsRead >= st.RowGroups {
				t.Errorf("read %d of %d row groups, want some skipped", st.RowGroupsRead, st.RowGroups)
			}
		})
	}
}

func TestScanStop(t *testing.T) {
	rows := collect(genParams{Seed: 3, Videos: 1, Frames: 3000, Dets: 3})
	src := NewBytesSource("stop.parquet", writeRows(t, rows, WriterOptions{RowGroupRows: 500}))
	n := 0
	st, err := Scan(context.Background(), src, Filter{}, func(Row) error {
		if n++; n == 10 {
			return ErrStop
		}
		return nil
	})
	if err != nil || n != 10 || st.RowGroupsRead != 1 {
		t.Errorf("stop after 10 rows: err %v, %d rows, %d row groups read", err, n, st.RowGroupsRead)
	}

	boom := errors.New("boom")
	_, err = Scan(context.Background(), src, Filter{}, func(Row) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("callback error: got %v, want it wrapped", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Scan(ctx, src, Filter{}, func(Row) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: got %v", err)
	}
}

func TestFileSource(t *testing.T) {
	rows := collect(genParams{Seed: 11, Videos: 2, Frames: 300, Dets: 2})
	path := filepath.Join(t.TempDir(), "detections.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(f, WriterOptions{RowGroupRows: 200})
	for _, r := range rows {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var total ScanStats
	for _, video := range []string{"video000", "video001"} {
		st, err := Scan(context.Background(), src, Filter{Videos: []string{video}}, func(Row) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		total.Add(st)
	}
	if total.Matched != int64(len(rows)) || total.RowGroups != 2*((len(rows)+199)/200) {
		t.Errorf("two scans of %s: %+v for %d rows", src.Name(), total, len(rows))
	}

	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.parquet")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.parquet") {
		t.Errorf("open missing file: %v", err)
	}
}
