// Package jpeg encodes and decodes the JPEG frames that travel between
// ingest and the workers with FFmpeg's mjpeg codec; its Decoder is the one
// reader of JPEG bytes off the bus, with their limits.
package jpeg

import (
	"errors"
	"fmt"

	"github.com/vidpipe/vidpipe/media/decode"
)

// Errors returned by Encoder and Decoder, wrapped with the reason (and
// FFmpeg's own error where there is one).
var (
	// ErrCorrupt means the bytes are not one whole JPEG that FFmpeg decodes:
	// garbage, a cut-off picture, a scan before its frame header.
	ErrCorrupt = errors.New("corrupt or truncated picture")
	// ErrSize means a JPEG's size, as its header declares it or as it
	// decodes, is not the size the caller expects.
	ErrSize = errors.New("picture size mismatch")
	// ErrUnsupported means a JPEG coding process this package leaves
	// alone: lossless, arithmetic-coded, hierarchical, JPEG-LS, or samples
	// of other than 8 bits. Frames are 8-bit baseline; image/jpeg, which
	// read them before, refused these too.
	ErrUnsupported = errors.New("unsupported JPEG coding process")
	// ErrArgument means a caller's argument is out of range: a quality, a
	// picture size, a pixel buffer of the wrong length.
	ErrArgument = errors.New("invalid argument")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("closed")
)

// maxSide is the largest side a JPEG can declare.
const maxSide = 65535

// checkSize refuses sizes no JPEG can have.
func checkSize(w, h int) error {
	if w <= 0 || h <= 0 || w > maxSide || h > maxSide {
		return fmt.Errorf("%w: picture size %dx%d", ErrArgument, w, h)
	}
	return nil
}

// header reads the size a JPEG's frame header declares and refuses the
// coding processes Decode leaves alone. It is stricter than FFmpeg, which
// skips junk between segments: what it refuses FFmpeg is never shown. It
// is not the last word: FFmpeg reads segments by their content, not their
// declared length, and may find a frame header inside one that this walk
// skips (TestDecodeRefuses has one); the decoder's max_pixels bounds that.
func header(b []byte) (w, h int, err error) {
	w, h, m, p, err := decode.JPEGHeader(b)
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	case m != 0xC0 && m != 0xC1 && m != 0xC2: // baseline, extended, progressive
		return 0, 0, fmt.Errorf("%w: frame header %#02x", ErrUnsupported, m)
	case p != 8:
		return 0, 0, fmt.Errorf("%w: %d-bit samples", ErrUnsupported, p)
	}
	return w, h, nil
}
