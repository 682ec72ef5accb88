// Package jpeg encodes and decodes the JPEG frames that travel between
// ingest and the workers with FFmpeg's mjpeg codec; its Decoder is the one
// reader of JPEG bytes off the bus, with their limits.
package jpeg

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// header reads the size a JPEG's frame header (its first SOFn) declares,
// walking the marker segments from the start-of-image marker. It is
// stricter than FFmpeg, which skips junk between segments: what it refuses
// FFmpeg is never shown. It is not the last word: FFmpeg reads segments by
// their content, not their declared length, and may find a frame header
// inside one that this walk skips (TestDecodeRefuses has one); the
// decoder's max_pixels bounds that.
func header(b []byte) (w, h int, err error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0, fmt.Errorf("%w: no start-of-image marker", ErrCorrupt)
	}
	for i := 2; ; {
		if i+2 > len(b) {
			return 0, 0, fmt.Errorf("%w: no frame header", ErrCorrupt)
		}
		if b[i] != 0xFF {
			return 0, 0, fmt.Errorf("%w: byte %d: want a marker, have %#02x", ErrCorrupt, i, b[i])
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // TEM, RSTn: no length
			i += 2
			continue
		case m == 0xD8 || m == 0xD9 || m == 0xDA:
			return 0, 0, fmt.Errorf("%w: marker %#02x before the frame header", ErrCorrupt, m)
		}
		if i+4 > len(b) {
			return 0, 0, fmt.Errorf("%w: no frame header", ErrCorrupt)
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 {
			return 0, 0, fmt.Errorf("%w: marker %#02x has length %d", ErrCorrupt, m, n)
		}
		switch {
		case m == 0xC0 || m == 0xC1 || m == 0xC2: // baseline, extended, progressive
			if n < 8 || i+9 > len(b) {
				return 0, 0, fmt.Errorf("%w: short frame header", ErrCorrupt)
			}
			if p := b[i+4]; p != 8 {
				return 0, 0, fmt.Errorf("%w: %d-bit samples", ErrUnsupported, p)
			}
			h = int(binary.BigEndian.Uint16(b[i+5:]))
			w = int(binary.BigEndian.Uint16(b[i+7:]))
			if w == 0 || h == 0 {
				return 0, 0, fmt.Errorf("%w: frame header declares %dx%d", ErrCorrupt, w, h)
			}
			return w, h, nil
		// The other SOFn but DHT (C4), JPG (C8) and DAC (CC), and JPEG-LS's
		// SOF55 (F7), which FFmpeg's mjpeg decoder also reads.
		case m >= 0xC3 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC, m == 0xF7:
			return 0, 0, fmt.Errorf("%w: frame header %#02x", ErrUnsupported, m)
		}
		i += 2 + n
	}
}
