package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// headerSize reads the picture size from the head of a format whose
// demuxer or probing decoder fails on huge pictures without saying why:
// YUV4MPEG2's text header and a JPEG stream's first start-of-frame marker.
func headerSize(format string, head []byte) (w, h int, ok bool) {
	switch format {
	case "yuv4mpegpipe":
		return y4mSize(head)
	case "mjpeg", "jpeg_pipe", "mpjpeg":
		return jpegSize(head)
	}
	return 0, 0, false
}

// y4mSize parses "YUV4MPEG2 W<width> H<height> ..." up to the first newline.
func y4mSize(head []byte) (w, h int, ok bool) {
	line, _, found := bytes.Cut(head, []byte{'\n'})
	if !found || !bytes.HasPrefix(line, []byte("YUV4MPEG2 ")) {
		return 0, 0, false
	}
	for _, f := range bytes.Fields(line[len("YUV4MPEG2 "):]) {
		if len(f) < 2 || (f[0] != 'W' && f[0] != 'H') {
			continue
		}
		v, err := strconv.Atoi(string(f[1:]))
		if err != nil || v <= 0 {
			return 0, 0, false
		}
		if f[0] == 'W' {
			w = v
		} else {
			h = v
		}
	}
	return w, h, w > 0 && h > 0
}

// jpegSize reads the size of the first JPEG in head.
func jpegSize(head []byte) (w, h int, ok bool) {
	i := bytes.Index(head, []byte{0xFF, 0xD8})
	if i < 0 {
		return 0, 0, false
	}
	w, h, _, _, err := JPEGHeader(head[i:])
	return w, h, err == nil
}

// JPEGHeader walks a JPEG's marker segments from its start-of-image
// marker to its first frame header (SOFn, or JPEG-LS's SOF55, which
// FFmpeg's mjpeg decoder also reads) and returns the size it declares, the
// marker and the sample precision. It is the one reader of JPEG headers:
// Decode's check, and media/decode's guard against huge pictures in MJPEG
// streams.
func JPEGHeader(b []byte) (w, h int, marker, precision byte, err error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0, 0, 0, errors.New("no start-of-image marker")
	}
	for i := 2; ; {
		if i+2 > len(b) {
			return 0, 0, 0, 0, errors.New("no frame header")
		}
		if b[i] != 0xFF {
			return 0, 0, 0, 0, fmt.Errorf("byte %d: want a marker, have %#02x", i, b[i])
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
			return 0, 0, 0, 0, fmt.Errorf("marker %#02x before the frame header", m)
		}
		if i+4 > len(b) {
			return 0, 0, 0, 0, errors.New("no frame header")
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 {
			return 0, 0, 0, 0, fmt.Errorf("marker %#02x has length %d", m, n)
		}
		// SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC); SOF55.
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC || m == 0xF7 {
			if n < 8 || i+9 > len(b) {
				return 0, 0, 0, 0, errors.New("short frame header")
			}
			h = int(binary.BigEndian.Uint16(b[i+5:]))
			w = int(binary.BigEndian.Uint16(b[i+7:]))
			if w == 0 || h == 0 {
				return 0, 0, 0, 0, fmt.Errorf("frame header declares %dx%d", w, h)
			}
			return w, h, m, b[i+4], nil
		}
		i += 2 + n
	}
}
