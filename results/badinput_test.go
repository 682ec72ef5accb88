package results

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func scanErr(src Source, f Filter) error {
	_, err := Scan(context.Background(), src, f, func(Row) error { return nil })
	return err
}

// otherTable writes a parquet-go file of rows of type T: a table that is
// Parquet but not (exactly) the detections schema.
func otherTable[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBadInput(t *testing.T) {
	good := writeRows(t, collect(genParams{Seed: 6, Videos: 2, Frames: 500, Dets: 3}), WriterOptions{RowGroupRows: 1000})

	type noConf struct {
		Job     string  `parquet:"job"`
		Video   string  `parquet:"video"`
		Frame   int64   `parquet:"frame"`
		PTS     float64 `parquet:"pts"`
		ClassID int32   `parquet:"class_id"`
		Class   string  `parquet:"class"`
	}
	type doubleConf struct {
		Job   string  `parquet:"job"`
		Video string  `parquet:"video"`
		Frame int64   `parquet:"frame"`
		PTS   float64 `parquet:"pts"`
		Class string  `parquet:"class"`
		Conf  float64 `parquet:"conf"`
	}
	type repeated struct {
		Video string   `parquet:"video"`
		Class []string `parquet:"class"`
	}
	missing := otherTable(t, []noConf{{Job: "j", Video: "v", Class: "person"}})

	tests := []struct {
		name    string
		data    []byte
		f       Filter
		want    error
		mention string // text the error must contain besides the source name
	}{
		{name: "empty", data: nil, want: ErrNotParquet},
		{name: "magic only", data: []byte("PAR1"), want: ErrNotParquet},
		{name: "jsonl", data: []byte(strings.Repeat(`{"frame":1,"pts":0.04,"detections":[]}`+"\n", 20)), want: ErrNotParquet, mention: "no PAR1 magic"},
		{name: "truncated half", data: good[:len(good)/2], want: ErrNotParquet, mention: "truncated"},
		{name: "truncated last byte", data: good[:len(good)-1], want: ErrNotParquet, mention: "truncated"},
		{name: "footer cut", data: append(append([]byte{}, good[:len(good)-200]...), good[len(good)-8:]...), want: ErrCorrupt},
		{name: "missing columns", data: missing, want: ErrSchema, mention: `missing columns "conf", "x1", "y1", "x2", "y2"`},
		{name: "wrong type", data: otherTable(t, []doubleConf{{Conf: 0.5}}), f: Filter{MinConf: 0.5}, want: ErrSchema, mention: `"conf" is DOUBLE, want FLOAT`},
		{name: "repeated column", data: otherTable(t, []repeated{{Video: "v", Class: []string{"a"}}}), want: ErrSchema, mention: `"class" is repeated`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "bad-" + strings.ReplaceAll(tt.name, " ", "-") + ".parquet"
			err := scanErr(NewBytesSource(name, tt.data), tt.f)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not name the source %s and say %q", err, name, tt.mention)
			}
			t.Log(err)
		})
	}

	// A count reads only the columns it needs, so a table without the box
	// and confidence columns still answers a count by class.
	counts, _, err := CountBy(context.Background(), NewBytesSource("noconf.parquet", missing), Filter{Videos: []string{"v"}}, ByClass)
	if err != nil || len(counts) != 1 || counts[0] != (Count{Key: "person", N: 1}) {
		t.Errorf("count on a table without conf: %v, %v", counts, err)
	}
}

func TestWriterClosed(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, WriterOptions{})
	if err := w.Add(Row{Job: "j", Video: "v", Class: "person"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(Row{}); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v, want ErrClosed", err)
	}
	if w.Rows() != 1 {
		t.Errorf("rows %d, want 1", w.Rows())
	}
	// A file with no rows is still a valid, empty table.
	var empty bytes.Buffer
	if err := NewWriter(&empty, WriterOptions{}).Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Scan(context.Background(), NewBytesSource("empty.parquet", empty.Bytes()), Filter{}, func(Row) error {
		return errors.New("no row expected")
	})
	if err != nil || st.RowGroups != 0 {
		t.Errorf("empty table: %+v, %v", st, err)
	}
}

func FuzzScan(f *testing.F) {
	good := writeRows(f, collect(genParams{Seed: 8, Videos: 2, Frames: 40, Dets: 2, Classes: 4}), WriterOptions{RowGroupRows: 50})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Add([]byte(`{"frame":0}`))
	filters := []Filter{
		{},
		{Videos: []string{"video001"}, Classes: []string{"person"}, MinConf: 0.5, From: ptr(0.4), To: ptr(1.2)},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := NewBytesSource("fuzz.parquet", data)
		for _, flt := range filters {
			var n int64
			st, err := Scan(context.Background(), src, flt, func(Row) error { n++; return nil })
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.parquet") {
					t.Fatalf("error does not name the source: %v", err)
				}
				continue
			}
			if n != st.Matched || st.Matched > st.Rows || st.RowGroupsRead > st.RowGroups || st.BytesRead > int64(len(data)) {
				t.Fatalf("inconsistent stats %+v for %d rows", st, n)
			}
		}
		if _, _, err := CountBy(context.Background(), src, filters[1], BySecond); err != nil && !strings.Contains(err.Error(), "fuzz.parquet") {
			t.Fatalf("error does not name the source: %v", err)
		}
	})
}
