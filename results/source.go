package results

import (
	"fmt"
	"io"
)

// Source is a random-access view of one Parquet file: a local file, a byte
// slice, or an object-store ranged reader. Each ReadAt may be a network round
// trip, so Scan issues few, large reads.
type Source interface {
	io.ReaderAt
	Size() int64
	Name() string
}

// countingReader counts what a scan really reads, which is what an object
// store bills and what pruning is meant to save.
type countingReader struct {
	r     io.ReaderAt
	bytes int64
	reads int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes += int64(n)
	c.reads++
	return n, err
}

// readFull reads exactly len(p) bytes at off: io.ReaderAt may return a
// short count with io.EOF at the end of the source, which is only fine when
// the count is complete.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// rangeReader serves reads from one buffered byte range of the file: a
// column chunk fetched in a single ReadAt and then decoded page by page.
type rangeReader struct {
	off  int64
	data []byte
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < r.off || off > r.off+int64(len(r.data)) {
		return 0, fmt.Errorf("read at %d outside fetched range [%d, %d): %w", off, r.off, r.off+int64(len(r.data)), ErrCorrupt)
	}
	n := copy(p, r.data[off-r.off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// tailReader answers reads inside the file's last bytes from memory, so
// opening the footer costs one ReadAt when the footer is small.
type tailReader struct {
	r    io.ReaderAt
	tail rangeReader
}

func (t *tailReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= t.tail.off && off+int64(len(p)) <= t.tail.off+int64(len(t.tail.data)) {
		return t.tail.ReadAt(p, off)
	}
	return t.r.ReadAt(p, off)
}
