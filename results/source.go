package results

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Source is a random-access view of one Parquet file: a local file, a byte
// slice, or an object-store ranged reader. Each ReadAt may be a network round
// trip, so Scan issues few, large reads.
type Source interface {
	io.ReaderAt
	Size() int64
	Name() string
}

// FileSource reads a local file.
type FileSource struct {
	f    *os.File
	size int64
}

// OpenFile opens path as a Source; Close it when done.
func OpenFile(path string) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	return &FileSource{f: f, size: st.Size()}, nil
}

// ReadAt implements io.ReaderAt.
func (s *FileSource) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

// Size is the file size when it was opened.
func (s *FileSource) Size() int64 { return s.size }

// Name is the path.
func (s *FileSource) Name() string { return s.f.Name() }

// Close closes the file.
func (s *FileSource) Close() error { return s.f.Close() }

// BytesSource is a Source over an in-memory file.
type BytesSource struct {
	name string
	r    *bytes.Reader
}

// NewBytesSource names b for error messages.
func NewBytesSource(name string, b []byte) *BytesSource {
	return &BytesSource{name: name, r: bytes.NewReader(b)}
}

// ReadAt implements io.ReaderAt.
func (s *BytesSource) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }

// Size is len(b).
func (s *BytesSource) Size() int64 { return s.r.Size() }

// Name is the name given to NewBytesSource.
func (s *BytesSource) Name() string { return s.name }

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
