package results

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// DefaultRowGroupRows is the row group size: 64k detections is ~1 MB
// compressed, small enough that a time window reads little beyond itself and
// large enough that the footer stays small for a day of video.
const DefaultRowGroupRows = 64 * 1024

// batchRows is how many rows Add gathers before handing them to parquet-go,
// whose per-call overhead is noticeable for single rows.
const batchRows = 1024

// WriterOptions tunes a Writer; the zero value is the default.
type WriterOptions struct {
	// RowGroupRows is the number of rows per row group (default 64k).
	RowGroupRows int
}

// Writer writes detections to a Parquet file. Rows should be added in frame
// order: statistics are correct in any order, but only ordered rows give row
// groups narrow enough to be skipped.
type Writer struct {
	pw     *parquet.GenericWriter[Row]
	batch  []Row
	rows   int64
	closed bool
}

// NewWriter starts a detections file on w. Nothing is written before the
// first row group fills or Close is called.
func NewWriter(w io.Writer, opts WriterOptions) *Writer {
	rg := opts.RowGroupRows
	if rg <= 0 {
		rg = DefaultRowGroupRows
	}
	pw := parquet.NewGenericWriter[Row](w,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.MaxRowsPerRowGroup(int64(rg)),
		parquet.DataPageStatistics(true),
		parquet.KeyValueMetadata("vidpipe.schema", SchemaVersion),
	)
	return &Writer{pw: pw, batch: make([]Row, 0, batchRows)}
}

// Add appends one detection.
func (w *Writer) Add(row Row) error {
	if w.closed {
		return ErrClosed
	}
	w.batch = append(w.batch, row)
	if len(w.batch) == cap(w.batch) {
		return w.flushBatch()
	}
	return nil
}

func (w *Writer) flushBatch() error {
	if len(w.batch) == 0 {
		return nil
	}
	n, err := w.pw.Write(w.batch)
	w.rows += int64(n)
	w.batch = w.batch[:0]
	if err != nil {
		return fmt.Errorf("write detections: %w", err)
	}
	return nil
}

// Close writes the buffered rows and the footer. It does not close the
// underlying io.Writer. A file without Close has no footer and is unreadable.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if err := w.flushBatch(); err != nil {
		return err
	}
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("close detections: %w", err)
	}
	return nil
}
