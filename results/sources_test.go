package results

import (
	"bytes"
	"fmt"
	"os"
)

// The tests' Sources: local files and byte slices. The commands read
// Parquet through storage.Bucket ranged readers instead.

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
