package decode

import (
	"context"
	"errors"
	"io"

	"github.com/asticode/go-astiav"
)

// ioBufferSize is FFmpeg's read granularity: large enough that a ranged S3
// reader is not called for every 4 KiB, small enough to stay cheap per video.
const ioBufferSize = 64 << 10

// source adapts an io.ReadSeeker to FFmpeg's AVIO read and seek callbacks, so
// local files and remote ranged readers go through one code path. FFmpeg
// calls back on the goroutine that called into it, so ctx is simply the
// context of the Open or Next call in progress.
type source struct {
	r    io.ReadSeeker
	ctx  context.Context
	size int64 // cached answer to AVSEEK_SIZE; -1 until asked
	err  error // first reader or context error, reported instead of FFmpeg's code
}

// sizer is implemented by readers that know their length without seeking
// (bytes.Reader, an S3 object reader).
type sizer interface{ Size() int64 }

func newSource(r io.ReadSeeker) *source {
	return &source{r: r, ctx: context.Background(), size: -1}
}

func (s *source) read(b []byte) (int, error) {
	if s.r == nil {
		return 0, astiav.ErrEof
	}
	if err := s.ctx.Err(); err != nil {
		// AVERROR_EXIT makes FFmpeg abandon the operation instead of retrying.
		s.setErr(err)
		return 0, astiav.ErrExit
	}
	for range 100 {
		n, err := s.r.Read(b)
		switch {
		case n > 0:
			// A trailing error comes back on the next call.
			return n, nil
		case errors.Is(err, io.EOF):
			// FFmpeg 5.1 treats a 0 return as EOF with a warning; say it.
			return 0, astiav.ErrEof
		case err != nil:
			s.setErr(err)
			return 0, astiav.ErrEio
		}
	}
	s.setErr(io.ErrNoProgress)
	return 0, astiav.ErrEio
}

func (s *source) seek(offset int64, whence int) (int64, error) {
	if s.r == nil {
		return 0, astiav.ErrEio
	}
	if whence&avseekSize != 0 {
		return s.sizeOf()
	}
	// AVSEEK_FORCE is only a hint that seeking may be expensive.
	n, err := s.r.Seek(offset, whence&^avseekMask)
	if err != nil {
		// Not recorded: demuxers probe odd offsets on damaged files and cope
		// with the failure themselves.
		return 0, astiav.ErrEio
	}
	return n, nil
}

func (s *source) sizeOf() (int64, error) {
	if s.size >= 0 {
		return s.size, nil
	}
	if sz, ok := s.r.(sizer); ok {
		s.size = sz.Size()
		return s.size, nil
	}
	cur, err := s.r.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, astiav.ErrEio
	}
	end, err := s.r.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, astiav.ErrEio
	}
	if _, err := s.r.Seek(cur, io.SeekStart); err != nil {
		s.setErr(err)
		return 0, astiav.ErrEio
	}
	s.size = end
	return end, nil
}

// head reads up to n bytes from the start of the input, for classifying a
// failed open; it leaves the reader at an unspecified position.
func (s *source) head(n int) ([]byte, error) {
	if _, err := s.r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	m, err := io.ReadFull(s.r, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:m], err
}

func (s *source) setErr(err error) {
	if s.err == nil {
		s.err = err
	}
}

// detach drops the reader: go-astiav keeps IO callbacks in a global map it
// never prunes, so a closed decoder must not pin the reader through them.
func (s *source) detach() {
	s.r = nil
	s.ctx = context.Background()
}
