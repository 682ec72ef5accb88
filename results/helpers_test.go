package results

// Whole-slice conveniences over the streaming encoders and counters, for
// the tests; the commands stream.

import (
	"context"
	"io"
)

// WriteTable writes rows as aligned columns under a header.
func WriteTable(w io.Writer, rows []Row) error { return writeAll(w, FormatTable, rows) }

// WriteCSV writes rows as CSV with a header, floats at full precision.
func WriteCSV(w io.Writer, rows []Row) error { return writeAll(w, FormatCSV, rows) }

// WriteJSONL writes one JSON object per row, boxes as in detections.jsonl.
func WriteJSONL(w io.Writer, rows []Row) error { return writeAll(w, FormatJSONL, rows) }

func writeAll(w io.Writer, f Format, rows []Row) error {
	enc, err := NewRowEncoder(w, f)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return enc.Close()
}

// CountBy counts the rows of one source matching f, grouped by kind.
func CountBy(ctx context.Context, src Source, f Filter, kind CountKind) ([]Count, ScanStats, error) {
	c, err := NewCounter(kind)
	if err != nil {
		return nil, ScanStats{}, err
	}
	st, err := c.Scan(ctx, src, f)
	if err != nil {
		return nil, st, err
	}
	return c.Counts(), st, nil
}

// Rows reports how many rows were added.
func (w *Writer) Rows() int64 { return w.rows + int64(len(w.batch)) }
