package decode

import (
	"bytes"
	"encoding/binary"
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

// jpegSize walks the markers of the first JPEG in head to its SOFn.
func jpegSize(head []byte) (w, h int, ok bool) {
	i := bytes.Index(head, []byte{0xFF, 0xD8})
	if i < 0 {
		return 0, 0, false
	}
	for i += 2; i+4 <= len(head); {
		if head[i] != 0xFF {
			return 0, 0, false
		}
		m := head[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // no length
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(head[i+2:]))
		if n < 2 {
			return 0, 0, false
		}
		// SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if i+9 > len(head) {
				return 0, 0, false
			}
			h = int(binary.BigEndian.Uint16(head[i+5:]))
			w = int(binary.BigEndian.Uint16(head[i+7:]))
			return w, h, w > 0 && h > 0
		}
		if m == 0xDA { // start of scan before any SOF
			return 0, 0, false
		}
		i += 2 + n
	}
	return 0, 0, false
}
