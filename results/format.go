package results

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format is an output format of `vidpipe query`.
type Format string

// Output formats.
const (
	FormatTable Format = "table"
	FormatCSV   Format = "csv"
	FormatJSONL Format = "jsonl"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatCSV, FormatJSONL:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want table, csv or jsonl", s)
}

// RowEncoder writes rows one at a time, so a scan's output need not be held
// in memory; Close flushes it.
type RowEncoder interface {
	Encode(Row) error
	Close() error
}

// NewRowEncoder returns an encoder for format f.
func NewRowEncoder(w io.Writer, f Format) (RowEncoder, error) {
	switch f {
	case FormatTable:
		return &tableEncoder{w: w}, nil
	case FormatCSV:
		return &csvEncoder{w: csv.NewWriter(w)}, nil
	case FormatJSONL:
		bw := bufio.NewWriter(w)
		return &jsonlEncoder{w: bw, enc: json.NewEncoder(bw)}, nil
	}
	return nil, fmt.Errorf("format %q: want table, csv or jsonl", f)
}

// tableSample is how many rows the table encoder holds to size its columns;
// later rows wider than that push their line out rather than hold memory.
const tableSample = 256

// rightAligned marks numeric columns, which line up on their last digit.
var rightAligned = [numCols]bool{cFrame: true, cPTS: true, cClassID: true, cConf: true, cX1: true, cY1: true, cX2: true, cY2: true}

type tableEncoder struct {
	w       io.Writer
	pending [][numCols]string
	widths  []int
	err     error
}

func tableCells(r Row) [numCols]string {
	f1 := func(v float32) string { return strconv.FormatFloat(float64(v), 'f', 1, 32) }
	return [numCols]string{
		r.Job, r.Video, strconv.FormatInt(r.Frame, 10), strconv.FormatFloat(r.PTS, 'f', 3, 64),
		strconv.FormatInt(int64(r.ClassID), 10), r.Class, strconv.FormatFloat(float64(r.Conf), 'f', 3, 32),
		f1(r.X1), f1(r.Y1), f1(r.X2), f1(r.Y2),
	}
}

func (t *tableEncoder) Encode(r Row) error {
	if t.err != nil {
		return t.err
	}
	t.pending = append(t.pending, tableCells(r))
	if t.widths == nil && len(t.pending) < tableSample {
		return nil
	}
	return t.flush()
}

func (t *tableEncoder) flush() error {
	if t.widths == nil {
		header := [numCols]string(Columns)
		t.widths = make([]int, numCols)
		for _, cells := range append([][numCols]string{header}, t.pending...) {
			for i, c := range cells {
				t.widths[i] = max(t.widths[i], len(c))
			}
		}
		t.writeLine(header[:], rightAligned[:])
	}
	for _, cells := range t.pending {
		t.writeLine(cells[:], rightAligned[:])
	}
	t.pending = t.pending[:0]
	return t.err
}

func (t *tableEncoder) writeLine(cells []string, right []bool) {
	if t.err == nil {
		_, t.err = io.WriteString(t.w, alignLine(cells, t.widths, right))
	}
}

// alignLine pads cells to widths, two spaces apart, without trailing blanks.
func alignLine(cells []string, widths []int, right []bool) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		pad := strings.Repeat(" ", max(0, widths[i]-len(c)))
		if right[i] {
			b.WriteString(pad + c)
		} else if i < len(cells)-1 {
			b.WriteString(c + pad)
		} else {
			b.WriteString(c)
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func (t *tableEncoder) Close() error { return t.flush() }

type csvEncoder struct {
	w      *csv.Writer
	header bool
}

func (e *csvEncoder) Encode(r Row) error {
	if !e.header {
		e.header = true
		if err := e.w.Write(Columns); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	g32 := func(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }
	rec := []string{
		r.Job, r.Video, strconv.FormatInt(r.Frame, 10), strconv.FormatFloat(r.PTS, 'g', -1, 64),
		strconv.FormatInt(int64(r.ClassID), 10), r.Class, g32(r.Conf), g32(r.X1), g32(r.Y1), g32(r.X2), g32(r.Y2),
	}
	if err := e.w.Write(rec); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func (e *csvEncoder) Close() error {
	if !e.header { // an empty result still says what its columns are
		e.header = true
		if err := e.w.Write(Columns); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// jsonRow is a row as JSON: the detections.jsonl detection fields plus
// where it came from.
type jsonRow struct {
	Job     string     `json:"job"`
	Video   string     `json:"video"`
	Frame   int64      `json:"frame"`
	PTS     float64    `json:"pts"`
	ClassID int32      `json:"class_id"`
	Class   string     `json:"class"`
	Conf    float32    `json:"conf"`
	Box     [4]float32 `json:"box"`
}

type jsonlEncoder struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func (e *jsonlEncoder) Encode(r Row) error {
	err := e.enc.Encode(jsonRow{r.Job, r.Video, r.Frame, r.PTS, r.ClassID, r.Class, r.Conf, [4]float32{r.X1, r.Y1, r.X2, r.Y2}})
	if err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}

func (e *jsonlEncoder) Close() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}

// WriteCounts writes counts in format f: a KIND/COUNT table, CSV with
// columns kind,count, or JSON lines {"<kind>": key, "count": n} where a
// second is a number.
func WriteCounts(w io.Writer, f Format, kind CountKind, counts []Count) error {
	switch f {
	case FormatTable:
		return WriteCountTable(w, kind, counts)
	case FormatCSV:
		return WriteCountCSV(w, kind, counts)
	case FormatJSONL:
		return WriteCountJSONL(w, kind, counts)
	}
	return fmt.Errorf("format %q: want table, csv or jsonl", f)
}

// WriteCountTable writes counts as two aligned columns and a total line.
func WriteCountTable(w io.Writer, kind CountKind, counts []Count) error {
	keyRight := kind == BySecond
	right := []bool{keyRight, true}
	lines := [][]string{{string(kind), "count"}}
	var total int64
	for _, c := range counts {
		lines = append(lines, []string{c.Key, strconv.FormatInt(c.N, 10)})
		total += c.N
	}
	lines = append(lines, []string{"total", strconv.FormatInt(total, 10)})
	widths := make([]int, 2)
	for _, l := range lines {
		widths[0], widths[1] = max(widths[0], len(l[0])), max(widths[1], len(l[1]))
	}
	bw := bufio.NewWriter(w)
	for i, l := range lines {
		if i == len(lines)-1 {
			right[0] = false // "total" reads as a label, not a key
		}
		if _, err := bw.WriteString(alignLine(l, widths, right)); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// WriteCountCSV writes counts as CSV with a header.
func WriteCountCSV(w io.Writer, kind CountKind, counts []Count) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{string(kind), "count"})
	for _, c := range counts {
		_ = cw.Write([]string{c.Key, strconv.FormatInt(c.N, 10)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// WriteCountJSONL writes one JSON object per group.
func WriteCountJSONL(w io.Writer, kind CountKind, counts []Count) error {
	bw := bufio.NewWriter(w)
	for _, c := range counts {
		key, err := json.Marshal(c.Key)
		if err != nil {
			return fmt.Errorf("write jsonl: %w", err)
		}
		if kind == BySecond && c.Key != unknownSecond {
			key = []byte(c.Key) // a decimal integer: valid JSON as it is
		}
		fmt.Fprintf(bw, "{%q:%s,\"count\":%d}\n", string(kind), key, c.N)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}
