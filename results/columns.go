package results

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// valueKind is a column's physical type in the detections schema.
type valueKind int

const (
	kindString valueKind = iota
	kindInt64
	kindDouble
	kindInt32
	kindFloat
)

var colKinds = [numCols]valueKind{
	cJob: kindString, cVideo: kindString, cFrame: kindInt64, cPTS: kindDouble,
	cClassID: kindInt32, cClass: kindString, cConf: kindFloat,
	cX1: kindFloat, cY1: kindFloat, cX2: kindFloat, cY2: kindFloat,
}

var parquetKinds = [...]parquet.Kind{
	kindString: parquet.ByteArray, kindInt64: parquet.Int64, kindDouble: parquet.Double,
	kindInt32: parquet.Int32, kindFloat: parquet.Float,
}

// bindColumns finds each wanted column's leaf index in the file and checks
// its type, so a foreign table fails with the column's name rather than
// with wrong values.
func bindColumns(schema *parquet.Schema, want colSet) ([numCols]int, error) {
	var leaf [numCols]int
	for c := range numCols {
		leaf[c] = -1
		if !want.has(c) {
			continue
		}
		name := Columns[c]
		lc, ok := schema.Lookup(name)
		if !ok {
			return leaf, fmt.Errorf("missing column %q: %w", name, ErrSchema)
		}
		if lc.MaxRepetitionLevel != 0 {
			return leaf, fmt.Errorf("column %q is repeated: %w", name, ErrSchema)
		}
		wantKind := parquetKinds[colKinds[c]]
		if got := lc.Node.Type().Kind(); got != wantKind {
			return leaf, fmt.Errorf("column %q is %s, want %s: %w", name, got, wantKind, ErrSchema)
		}
		leaf[c] = lc.ColumnIndex
	}
	return leaf, nil
}

// column holds one column chunk's decoded values; only the slice of its
// kind is used. Buffers are reused from row group to row group.
type column struct {
	kind valueKind
	str  []string
	i64  []int64
	f64  []float64
	i32  []int32
	f32  []float32
	// intern maps a string's bytes to one shared string, so dictionary
	// values are allocated once per scan instead of once per row.
	intern map[string]string
}

func (c *column) reset() {
	c.str, c.i64, c.f64, c.i32, c.f32 = c.str[:0], c.i64[:0], c.f64[:0], c.i32[:0], c.f32[:0]
}

func (c *column) len() int {
	switch c.kind {
	case kindString:
		return len(c.str)
	case kindInt64:
		return len(c.i64)
	case kindDouble:
		return len(c.f64)
	case kindInt32:
		return len(c.i32)
	default:
		return len(c.f32)
	}
}

// maxInterned bounds the intern table: a column of unique strings (a
// foreign file) would otherwise keep every value alive for the whole scan.
const maxInterned = 1 << 16

func (c *column) internString(b []byte) string {
	if s, ok := c.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.intern) < maxInterned {
		c.intern[s] = s
	}
	return s
}

// decode reads every page of a column chunk from data (the chunk's bytes,
// already fetched) and appends the values to c.
func (c *column) decode(cc *parquet.FileColumnChunk, data io.ReaderAt) (err error) {
	// parquet-go panics on some malformed pages; a bad file must end in an
	// error naming it, never take the process down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode pages: %v: %w", r, ErrCorrupt)
		}
	}()
	pages := cc.PagesFrom(data)
	defer pages.Close()
	var buf [512]parquet.Value
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read page: %w: %w", err, ErrCorrupt)
		}
		if page.NumNulls() > 0 {
			parquet.Release(page)
			return fmt.Errorf("%d null values: %w", page.NumNulls(), ErrSchema)
		}
		err = c.appendValues(page.Values(), buf[:])
		parquet.Release(page)
		if err != nil {
			return err
		}
	}
}

func (c *column) appendValues(r parquet.ValueReader, buf []parquet.Value) error {
	for {
		n, err := r.ReadValues(buf)
		for _, v := range buf[:n] {
			if v.IsNull() {
				return fmt.Errorf("null value: %w", ErrSchema)
			}
			switch c.kind {
			case kindString:
				c.str = append(c.str, c.internString(v.ByteArray()))
			case kindInt64:
				c.i64 = append(c.i64, v.Int64())
			case kindDouble:
				c.f64 = append(c.f64, v.Double())
			case kindInt32:
				c.i32 = append(c.i32, v.Int32())
			case kindFloat:
				c.f32 = append(c.f32, v.Float())
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read values: %w: %w", err, ErrCorrupt)
		}
	}
}

// dictionaryStrings reads a string column chunk's dictionary page alone
// (data holds only that page) and returns its values, or ok=false when the
// chunk has no dictionary.
func dictionaryStrings(cc *parquet.FileColumnChunk, data io.ReaderAt) (values []string, ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode dictionary: %v: %w", r, ErrCorrupt)
		}
	}()
	pages := cc.PagesFrom(data)
	defer pages.Close()
	dict, err := pages.ReadDictionary()
	if err != nil {
		return nil, false, fmt.Errorf("read dictionary: %w: %w", err, ErrCorrupt)
	}
	if dict == nil {
		return nil, false, nil
	}
	values = make([]string, dict.Len())
	for i := range values {
		values[i] = string(dict.Index(int32(i)).ByteArray())
	}
	return values, true, nil
}
