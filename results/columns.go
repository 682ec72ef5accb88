package results

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
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
// its type, so a foreign table fails with the names of all the columns that
// do not fit rather than with wrong values.
func bindColumns(schema *parquet.Schema, want colSet) ([numCols]int, error) {
	var leaf [numCols]int
	var missing, wrong []string
	for c := range numCols {
		leaf[c] = -1
		if !want.has(c) {
			continue
		}
		name := Columns[c]
		lc, ok := schema.Lookup(name)
		if !ok {
			missing = append(missing, strconv.Quote(name))
			continue
		}
		wantKind := parquetKinds[colKinds[c]]
		got, ok := physicalKind(lc.Node)
		switch {
		case lc.MaxRepetitionLevel != 0:
			wrong = append(wrong, fmt.Sprintf("%q is repeated", name))
		case !ok:
			wrong = append(wrong, fmt.Sprintf("%q has no physical type", name))
		case got != wantKind:
			wrong = append(wrong, fmt.Sprintf("%q is %s, want %s", name, got, wantKind))
		default:
			leaf[c] = lc.ColumnIndex
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing columns "+strings.Join(missing, ", "))
	}
	if len(wrong) > 0 {
		problems = append(problems, "column "+strings.Join(wrong, ", "))
	}
	if len(problems) > 0 {
		return leaf, fmt.Errorf("%s: %w", strings.Join(problems, "; "), ErrSchema)
	}
	return leaf, nil
}

// physicalKind is a leaf's physical type. parquet-go panics when asked for
// the kind of a group or of a leaf whose logical type lacks one, as a
// damaged footer can declare.
func physicalKind(n parquet.Node) (k parquet.Kind, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if !n.Leaf() {
		return 0, false
	}
	return n.Type().Kind(), true
}

// column holds one column chunk's decoded values; only the slice of its
// kind is used. Buffers are reused from row group to row group.
//
// A string column is kept as codes into a table of distinct values, as the
// file stores it: filters then test each distinct value once, and the
// garbage collector does not trace one string header per row.
type column struct {
	kind  valueKind
	codes []int32  // string columns: index into strs per row
	strs  []string // string columns: distinct values of this row group
	i64   []int64
	f64   []float64
	i32   []int32
	f32   []float32

	// codeOf maps plain-encoded strings to codes within a row group.
	codeOf map[string]int32
	// dict is the dictionary whose values sit at strs[dictBase:]; pages of
	// one chunk share it.
	dict     parquet.Dictionary
	dictBase int32
	// num holds a numeric dictionary's values (files from other writers
	// dictionary-encode numbers too).
	numDict parquet.Dictionary
	numI64  []int64
	numF64  []float64
	numI32  []int32
	numF32  []float32
	// intern shares one string per distinct value across row groups, so
	// values are allocated once per scan rather than once per row group.
	intern map[string]string
}

func (c *column) reset() {
	c.codes, c.strs = c.codes[:0], c.strs[:0]
	c.i64, c.f64, c.i32, c.f32 = c.i64[:0], c.f64[:0], c.i32[:0], c.f32[:0]
	clear(c.codeOf)
	c.dict, c.numDict = nil, nil
}

func (c *column) len() int {
	switch c.kind {
	case kindString:
		return len(c.codes)
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

// str returns row i's value of a string column.
func (c *column) str(i int32) string { return c.strs[c.codes[i]] }

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

// codeFor returns the code of a plain-encoded string value.
func (c *column) codeFor(b []byte) int32 {
	if code, ok := c.codeOf[string(b)]; ok {
		return code
	}
	s := c.internString(b)
	code := int32(len(c.strs))
	c.strs = append(c.strs, s)
	c.codeOf[s] = code
	return code
}

// decode reads every page of a column chunk from data (the chunk's bytes,
// already fetched) and appends the values to c. rows is the row group's
// row count, used only to size buffers.
func (c *column) decode(cc *parquet.FileColumnChunk, data io.ReaderAt, rows int64) (err error) {
	// parquet-go panics on some malformed pages; a bad file must end in an
	// error naming it, never take the process down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode pages: %v: %w", r, ErrCorrupt)
		}
	}()
	c.grow(int(min(rows, 1<<20)))
	pages := cc.PagesFrom(data)
	defer pages.Close()
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
			return fmt.Errorf("null values (%d in a page): %w", page.NumNulls(), ErrSchema)
		}
		err = c.appendPage(page)
		parquet.Release(page)
		if err != nil {
			return err
		}
	}
}

func (c *column) grow(n int) {
	switch c.kind {
	case kindString:
		c.codes = slices.Grow(c.codes, n)
	case kindInt64:
		c.i64 = slices.Grow(c.i64, n)
	case kindDouble:
		c.f64 = slices.Grow(c.f64, n)
	case kindInt32:
		c.i32 = slices.Grow(c.i32, n)
	case kindFloat:
		c.f32 = slices.Grow(c.f32, n)
	}
}

// appendPage copies a page's values in bulk.
func (c *column) appendPage(page parquet.Page) error {
	data := page.Data()
	unexpected := func() error {
		return fmt.Errorf("page of %s values for a %s column: %w", data.Kind(), parquetKinds[c.kind], ErrCorrupt)
	}
	if dict := page.Dictionary(); dict != nil {
		if data.Kind() != encoding.Int32 {
			return unexpected()
		}
		return c.appendIndexes(dict, data.Int32())
	}
	switch c.kind {
	case kindString:
		if data.Kind() != encoding.ByteArray {
			return unexpected()
		}
		values, offsets := data.ByteArray()
		if len(offsets) == 0 {
			return nil
		}
		for i := range len(offsets) - 1 {
			j, k := offsets[i], offsets[i+1]
			if j > k || int(k) > len(values) {
				return fmt.Errorf("byte array offsets [%d, %d) outside %d bytes: %w", j, k, len(values), ErrCorrupt)
			}
			c.codes = append(c.codes, c.codeFor(values[j:k]))
		}
	case kindInt64:
		if data.Kind() != encoding.Int64 {
			return unexpected()
		}
		c.i64 = append(c.i64, data.Int64()...)
	case kindDouble:
		if data.Kind() != encoding.Double {
			return unexpected()
		}
		c.f64 = append(c.f64, data.Double()...)
	case kindInt32:
		if data.Kind() != encoding.Int32 {
			return unexpected()
		}
		c.i32 = append(c.i32, data.Int32()...)
	case kindFloat:
		if data.Kind() != encoding.Float {
			return unexpected()
		}
		c.f32 = append(c.f32, data.Float()...)
	}
	return nil
}

// appendIndexes resolves dictionary indexes, decoding each dictionary once.
func (c *column) appendIndexes(dict parquet.Dictionary, idx []int32) error {
	n := int32(dict.Len())
	for _, ix := range idx {
		if ix < 0 || ix >= n {
			return fmt.Errorf("dictionary index %d of %d values: %w", ix, n, ErrCorrupt)
		}
	}
	if c.kind == kindString {
		if dict != c.dict {
			c.dict, c.dictBase = dict, int32(len(c.strs))
			for i := range n {
				c.strs = append(c.strs, c.internString(dict.Index(i).ByteArray()))
			}
		}
		for _, ix := range idx {
			c.codes = append(c.codes, c.dictBase+ix)
		}
		return nil
	}
	if dict != c.numDict {
		c.numDict = dict
		c.numI64, c.numF64, c.numI32, c.numF32 = c.numI64[:0], c.numF64[:0], c.numI32[:0], c.numF32[:0]
		for i := range n {
			v := dict.Index(i)
			switch c.kind {
			case kindInt64:
				c.numI64 = append(c.numI64, v.Int64())
			case kindDouble:
				c.numF64 = append(c.numF64, v.Double())
			case kindInt32:
				c.numI32 = append(c.numI32, v.Int32())
			case kindFloat:
				c.numF32 = append(c.numF32, v.Float())
			}
		}
	}
	for _, ix := range idx {
		switch c.kind {
		case kindInt64:
			c.i64 = append(c.i64, c.numI64[ix])
		case kindDouble:
			c.f64 = append(c.f64, c.numF64[ix])
		case kindInt32:
			c.i32 = append(c.i32, c.numI32[ix])
		case kindFloat:
			c.f32 = append(c.f32, c.numF32[ix])
		}
	}
	return nil
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
