package results

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// arrowSchema is the detections schema as arrow-go sees it.
func arrowSchema(nullable bool) *arrow.Schema {
	str, f32 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float32
	return arrow.NewSchema([]arrow.Field{
		{Name: "job", Type: str, Nullable: nullable},
		{Name: "video", Type: str, Nullable: nullable},
		{Name: "frame", Type: arrow.PrimitiveTypes.Int64, Nullable: nullable},
		{Name: "pts", Type: arrow.PrimitiveTypes.Float64, Nullable: nullable},
		{Name: "class_id", Type: arrow.PrimitiveTypes.Int32, Nullable: nullable},
		{Name: "class", Type: str, Nullable: nullable},
		{Name: "conf", Type: f32, Nullable: nullable},
		{Name: "x1", Type: f32, Nullable: nullable},
		{Name: "y1", Type: f32, Nullable: nullable},
		{Name: "x2", Type: f32, Nullable: nullable},
		{Name: "y2", Type: f32, Nullable: nullable},
	}, nil)
}

// TestArrowReadsOurFile reads a file written by Writer with arrow-go, an
// independent Parquet implementation: schema, every value, the per row
// group statistics pruning relies on, dictionary encoding and compression.
func TestArrowReadsOurFile(t *testing.T) {
	rows := collect(genParams{Seed: 4, Jobs: 2, Videos: 3, Frames: 1200, Dets: 2, RandomDets: true})
	const rgRows = 1500
	data := writeRows(t, rows, WriterOptions{RowGroupRows: rgRows})

	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("arrow-go open: %v", err)
	}
	defer pf.Close()
	if v := pf.MetaData().KeyValueMetadata().FindValue("vidpipe.schema"); v == nil || *v != SchemaVersion {
		t.Errorf("vidpipe.schema metadata = %v, want %q", v, SchemaVersion)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow-go read: %v", err)
	}
	defer tbl.Release()
	// Field metadata (arrow-go adds field ids) is not part of the contract.
	want := arrowSchema(false)
	for i, f := range tbl.Schema().Fields() {
		if w := want.Field(i); f.Name != w.Name || !arrow.TypeEqual(f.Type, w.Type) || f.Nullable {
			t.Errorf("arrow-go field %d: %s %v nullable=%t, want %s %v required", i, f.Name, f.Type, f.Nullable, w.Name, w.Type)
		}
	}
	if tbl.Schema().NumFields() != want.NumFields() {
		t.Fatalf("arrow-go sees %d fields, want %d", tbl.Schema().NumFields(), want.NumFields())
	}
	got := arrowRows(t, tbl)
	if len(got) != len(rows) {
		t.Fatalf("arrow-go read %d rows, wrote %d", len(got), len(rows))
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Fatalf("row %d: arrow-go read %+v, wrote %+v", i, got[i], rows[i])
		}
	}

	md := pf.MetaData()
	if md.NumRowGroups() != (len(rows)+rgRows-1)/rgRows {
		t.Fatalf("%d row groups for %d rows of %d", md.NumRowGroups(), len(rows), rgRows)
	}
	start := 0
	for g := range md.NumRowGroups() {
		rg := md.RowGroup(g)
		part := rows[start : start+int(rg.NumRows())]
		start += int(rg.NumRows())
		for c, name := range Columns {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Zstd {
				t.Errorf("row group %d %s: compression %v, want zstd", g, name, cc.Compression())
			}
			if colKinds[c] == kindString && !hasDictEncoding(cc.Encodings()) {
				t.Errorf("row group %d %s: encodings %v, want a dictionary", g, name, cc.Encodings())
			}
			st, err := cc.Statistics()
			if err != nil || st == nil || !st.HasMinMax() {
				t.Fatalf("row group %d %s: no min/max statistics (%v)", g, name, err)
			}
			checkStats(t, g, colID(c), st, part)
		}
	}
}

func hasDictEncoding(encs []parquet.Encoding) bool {
	for _, e := range encs {
		if e == parquet.Encodings.RLEDict || e == parquet.Encodings.PlainDict {
			return true
		}
	}
	return false
}

// checkStats compares arrow-go's reading of a chunk's min/max with the true
// extremes of the rows in that row group.
func checkStats(t *testing.T, g int, c colID, st metadata.TypedStatistics, part []Row) {
	t.Helper()
	fail := func(gotMin, gotMax, wantMin, wantMax any) {
		t.Errorf("row group %d %s: stats [%v, %v], rows span [%v, %v]", g, Columns[c], gotMin, gotMax, wantMin, wantMax)
	}
	switch s := st.(type) {
	case *metadata.Int64Statistics:
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, r := range part {
			lo, hi = min(lo, r.Frame), max(hi, r.Frame)
		}
		if s.Min() != lo || s.Max() != hi {
			fail(s.Min(), s.Max(), lo, hi)
		}
	case *metadata.Float64Statistics:
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range part {
			lo, hi = min(lo, r.PTS), max(hi, r.PTS)
		}
		if s.Min() != lo || s.Max() != hi {
			fail(s.Min(), s.Max(), lo, hi)
		}
	case *metadata.Int32Statistics:
		lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
		for _, r := range part {
			lo, hi = min(lo, r.ClassID), max(hi, r.ClassID)
		}
		if s.Min() != lo || s.Max() != hi {
			fail(s.Min(), s.Max(), lo, hi)
		}
	case *metadata.Float32Statistics:
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, r := range part {
			v := [...]float32{cConf: r.Conf, cX1: r.X1, cY1: r.Y1, cX2: r.X2, cY2: r.Y2}[c]
			lo, hi = min(lo, v), max(hi, v)
		}
		if s.Min() != lo || s.Max() != hi {
			fail(s.Min(), s.Max(), lo, hi)
		}
	case *metadata.ByteArrayStatistics:
		lo, hi := part[0].value(c), part[0].value(c)
		for _, r := range part {
			lo, hi = min(lo, r.value(c)), max(hi, r.value(c))
		}
		if string(s.Min()) != lo || string(s.Max()) != hi {
			fail(string(s.Min()), string(s.Max()), lo, hi)
		}
	default:
		t.Errorf("row group %d %s: unexpected statistics type %T", g, Columns[c], st)
	}
}

// value is a string column of r.
func (r Row) value(c colID) string {
	switch c {
	case cJob:
		return r.Job
	case cVideo:
		return r.Video
	default:
		return r.Class
	}
}

// arrowRows converts an arrow table with the detections schema to rows.
func arrowRows(t *testing.T, tbl arrow.Table) []Row {
	t.Helper()
	rows := make([]Row, tbl.NumRows())
	for c := range int(tbl.NumCols()) {
		i := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for j := range chunk.Len() {
				r := &rows[i]
				i++
				switch a := chunk.(type) {
				case *array.String:
					*[...]*string{cJob: &r.Job, cVideo: &r.Video, cClass: &r.Class}[c] = a.Value(j)
				case *array.Int64:
					r.Frame = a.Value(j)
				case *array.Float64:
					r.PTS = a.Value(j)
				case *array.Int32:
					r.ClassID = a.Value(j)
				case *array.Float32:
					*[...]*float32{cConf: &r.Conf, cX1: &r.X1, cY1: &r.Y1, cX2: &r.X2, cY2: &r.Y2}[c] = a.Value(j)
				default:
					t.Fatalf("column %d: unexpected arrow array %T", c, chunk)
				}
			}
		}
	}
	return rows
}

// writeArrow writes rows with arrow-go, snappy, small row groups and, with
// dict, dictionary encoding on every column (arrow-go's default, numbers
// included) or else plain encoding.
func writeArrow(t *testing.T, rows []Row, nullable, dict bool, nullAt int) []byte {
	t.Helper()
	schema := arrowSchema(nullable)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.Job)
		b.Field(1).(*array.StringBuilder).Append(r.Video)
		b.Field(2).(*array.Int64Builder).Append(r.Frame)
		b.Field(3).(*array.Float64Builder).Append(r.PTS)
		b.Field(4).(*array.Int32Builder).Append(r.ClassID)
		b.Field(5).(*array.StringBuilder).Append(r.Class)
		if i == nullAt {
			b.Field(6).(*array.Float32Builder).AppendNull()
		} else {
			b.Field(6).(*array.Float32Builder).Append(r.Conf)
		}
		for k, v := range []float32{r.X1, r.Y1, r.X2, r.Y2} {
			b.Field(7 + k).(*array.Float32Builder).Append(v)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tbl := array.NewTableFromRecords(schema, []arrow.RecordBatch{rec})
	defer tbl.Release()
	props := parquet.NewWriterProperties(
		parquet.WithStats(true),
		parquet.WithDictionaryDefault(dict),
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(700),
	)
	var buf bytes.Buffer
	if err := pqarrow.WriteTable(tbl, &buf, 700, props, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatalf("arrow-go write: %v", err)
	}
	return buf.Bytes()
}

// TestScanReadsArrowFile reads files written by arrow-go, with required and
// with optional columns, and checks filters and pruning work on them too.
func TestScanReadsArrowFile(t *testing.T) {
	rows := collect(genParams{Seed: 5, Videos: 2, Frames: 1500, Dets: 2, RandomDets: true, Classes: 10})
	for _, tc := range []struct {
		name           string
		nullable, dict bool
	}{{"required", false, true}, {"optional", true, true}, {"plain", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			src := NewBytesSource("arrow-"+tc.name+".parquet", writeArrow(t, rows, tc.nullable, tc.dict, -1))
			got, _ := scanAll(t, src, Filter{})
			if len(got) != len(rows) {
				t.Fatalf("scan read %d rows, arrow-go wrote %d", len(got), len(rows))
			}
			for i := range rows {
				if got[i] != rows[i] {
					t.Fatalf("row %d: scan read %+v, arrow-go wrote %+v", i, got[i], rows[i])
				}
			}
			f := Filter{Videos: []string{"video001"}, Classes: []string{"person"}, MinConf: 0.5, From: ptr(20.0), To: ptr(30.0)}
			var want []Row
			for _, r := range rows {
				if matches(f, r) {
					want = append(want, r)
				}
			}
			got, st := scanAll(t, src, f)
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("filtered: got %d rows, brute force %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("filtered row %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
			// 10 s of one video is ~500 rows: two 700-row groups, three
			// when it straddles a boundary.
			if st.RowGroupsRead > 3 || st.RowGroups < 8 {
				t.Errorf("read %d of %d row groups of arrow-go's file, want at most 3", st.RowGroupsRead, st.RowGroups)
			}
		})
	}
	t.Run("null value", func(t *testing.T) {
		src := NewBytesSource("arrow-null.parquet", writeArrow(t, rows[:100], true, true, 42))
		_, err := Scan(context.Background(), src, Filter{}, func(Row) error { return nil })
		if !errors.Is(err, ErrSchema) {
			t.Fatalf("null conf: got %v, want ErrSchema", err)
		}
		t.Log(err)
	})
}
