package results

import (
	"context"
	"math"
	"reflect"
	"strconv"
	"testing"
)

func TestCountBy(t *testing.T) {
	rows := collect(genParams{Seed: 9, Jobs: 2, Videos: 3, Frames: 800, Dets: 2, RandomDets: true, Classes: 8})
	src := NewBytesSource("count.parquet", writeRows(t, rows, WriterOptions{RowGroupRows: 300}))
	f := Filter{Classes: []string{"person", "car", "dog"}, MinConf: 0.4, From: ptr(5.0), To: ptr(8.0)}

	tests := []struct {
		kind CountKind
		key  func(Row) string
	}{
		{ByClass, func(r Row) string { return r.Class }},
		{ByVideo, func(r Row) string { return r.Video }},
		{ByJob, func(r Row) string { return r.Job }},
		{BySecond, func(r Row) string { return strconv.Itoa(int(math.Floor(r.PTS))) }},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			want := map[string]int64{}
			for _, r := range rows {
				if matches(f, r) {
					want[tt.key(r)]++
				}
			}
			counts, st, err := CountBy(context.Background(), src, f, tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for i, c := range counts {
				got[c.Key] = c.N
				if i == 0 {
					continue
				}
				prev := counts[i-1]
				if tt.kind == BySecond {
					a, _ := strconv.Atoi(prev.Key)
					b, _ := strconv.Atoi(c.Key)
					if a >= b {
						t.Errorf("seconds out of order: %s before %s", prev.Key, c.Key)
					}
				} else if prev.N < c.N || (prev.N == c.N && prev.Key > c.Key) {
					t.Errorf("counts out of order: %+v before %+v", prev, c)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("counts %v, brute force %v", got, want)
			}
			if st.RowGroupsRead >= st.RowGroups {
				t.Errorf("read %d of %d row groups, want the time window to prune", st.RowGroupsRead, st.RowGroups)
			}
		})
	}
}

// TestCountReadsFewerColumns checks that a count reads only its key and the
// filter's columns, a fraction of what Scan reads for full rows.
func TestCountReadsFewerColumns(t *testing.T) {
	rows := collect(genParams{Seed: 10, Videos: 1, Frames: 20000, Dets: 3})
	src := NewBytesSource("cols.parquet", writeRows(t, rows, WriterOptions{}))
	f := Filter{Classes: []string{"person"}}
	full, err := Scan(context.Background(), src, f, func(Row) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_, counted, err := CountBy(context.Background(), src, f, ByClass)
	if err != nil {
		t.Fatal(err)
	}
	if counted.Matched != full.Matched || counted.BytesRead*5 > full.BytesRead {
		t.Errorf("count read %d bytes for %d rows, full scan %d bytes for %d rows", counted.BytesRead, counted.Matched, full.BytesRead, full.Matched)
	}
}

func TestCounterMergesSources(t *testing.T) {
	c, err := NewCounter(BySecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, pts := range []float64{0.2, 0.9, 1.0, -0.5, math.NaN(), 59.99} {
		c.Add(Row{PTS: pts})
	}
	want := []Count{{"-1", 1}, {"0", 2}, {"1", 1}, {"59", 1}, {"unknown", 1}}
	if got := c.Counts(); !reflect.DeepEqual(got, want) {
		t.Errorf("by second: %v, want %v", got, want)
	}
	if _, err := ParseCountKind("frame"); err == nil {
		t.Error("count by frame accepted")
	}
}
