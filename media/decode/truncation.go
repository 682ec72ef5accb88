package decode

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/asticode/go-astiav"
)

// A file cut short often still demuxes cleanly up to the cut, so FFmpeg
// reports a plain end of file. What gives it away is the container itself:
// its top-level structure declares how long it is (MP4 boxes, the Matroska
// Segment, AVI's RIFF chunks, whole 188-byte TS packets), and its index or
// header declares how many frames there are (the MP4 sample table, the AVI
// header, Matroska's duration times the rate). MPEG-TS declares neither a
// length nor a count, so there only a cut inside a packet can be seen.

// maxTopLevel bounds the top-level boxes or chunks walked, so a file of
// tiny boxes cannot turn the check into a scan.
const maxTopLevel = 256

// truncation fills Truncated, Expected and Missing once decoding has ended.
func (d *Decoder) truncation() {
	format := d.info.Format
	short := d.endsEarly(format)
	delivered, expected := d.stats.Decoded, int64(0)
	switch {
	case strings.HasPrefix(format, "mov,"):
		// The sample table counts packets; edit lists may hide decoded
		// pictures, so packets are what is compared.
		expected, delivered = d.info.Frames, d.stats.Packets
		if expected > int64(delivered) {
			short = true
		}
	case format == "avi":
		// dwLength counts repeat-frame (empty) chunks too: only used once
		// the file is known to be cut.
		expected = d.info.Frames
	case strings.HasPrefix(format, "matroska"):
		expected = d.matroskaFrames()
	}
	if !short {
		return
	}
	if expected > 0 && expected <= int64(delivered) {
		// Only trailing data (an index, cues, audio) is cut: every frame
		// the container declares arrived.
		return
	}
	d.stats.Truncated = true
	if expected > 0 {
		d.stats.Expected = int(min(expected, math.MaxInt32))
		d.stats.Missing = d.stats.Expected - delivered
	}
}

// matroskaFrames is the frame count a Matroska track declares: its
// NUMBER_OF_FRAMES statistics tag, or its duration (the DURATION tag, else
// the segment's) times the frame rate; 0 when it declares none.
func (d *Decoder) matroskaFrames() int64 {
	md := d.st.Metadata()
	if n, err := strconv.ParseInt(dictValue(md, "NUMBER_OF_FRAMES"), 10, 64); err == nil && n > 0 {
		return n
	}
	if d.info.FPS <= 0 {
		return 0
	}
	dur, ok := parseClock(dictValue(md, "DURATION"))
	if !ok {
		dur = d.info.Duration
	}
	if dur <= 0 {
		return 0
	}
	return int64(math.Round(dur * d.info.FPS))
}

func dictValue(md *astiav.Dictionary, key string) string {
	if md == nil {
		return ""
	}
	if e := md.Get(key, nil, 0); e != nil {
		return e.Value()
	}
	return ""
}

// parseClock reads Matroska's "HH:MM:SS.nnnnnnnnn" duration tags.
func parseClock(s string) (float64, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 {
		return 0, false
	}
	return float64(h)*3600 + float64(m)*60 + sec, true
}

// endsEarly reports whether the input is shorter than its container's
// top-level structure declares. A container that declares no length, an
// unknown input size or an unreadable input answer false: the check only
// ever adds evidence of a cut.
func (d *Decoder) endsEarly(format string) bool {
	size, err := d.src.sizeOf()
	if err != nil || size <= 0 {
		return false
	}
	at := readerAt{r: d.src.r}
	var short bool
	switch {
	case strings.HasPrefix(format, "mov,"):
		short, err = boxesShort(at, size)
	case strings.HasPrefix(format, "matroska"):
		short, err = segmentShort(at, size)
	case format == "avi":
		short, err = riffShort(at, size)
	case format == "mpegts":
		short, err = tsShort(at, size)
	}
	return err == nil && short
}

// readerAt reads at offsets of the input. It is only used once FFmpeg has
// finished reading, so moving the reader's position is harmless.
type readerAt struct{ r io.ReadSeeker }

func (a readerAt) ReadAt(b []byte, off int64) (int, error) {
	if a.r == nil {
		return 0, errors.New("reader detached")
	}
	if _, err := a.r.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(a.r, b)
}

// boxesShort walks an MP4's top-level boxes: one running past the end of
// the file (usually mdat) means the file was cut.
func boxesShort(r io.ReaderAt, size int64) (bool, error) {
	var h [16]byte
	for off, i := int64(0), 0; off < size && i < maxTopLevel; i++ {
		if size-off < 8 {
			return true, nil // not even a box header fits
		}
		if _, err := r.ReadAt(h[:8], off); err != nil {
			return false, err
		}
		n := int64(binary.BigEndian.Uint32(h[:4]))
		switch n {
		case 0:
			return false, nil // the last box runs to the end of the file
		case 1:
			if size-off < 16 {
				return true, nil
			}
			if _, err := r.ReadAt(h[8:16], off+8); err != nil {
				return false, err
			}
			n = int64(binary.BigEndian.Uint64(h[8:16]))
			if n < 16 {
				return false, nil // not a box: stop trusting the layout
			}
		default:
			if n < 8 {
				return false, nil
			}
		}
		if n > size-off {
			return true, nil
		}
		off += n
	}
	return false, nil
}

// segmentShort reads the Matroska EBML header and Segment sizes: a Segment
// of known size that runs past the end of the file means the file was cut.
func segmentShort(r io.ReaderAt, size int64) (bool, error) {
	var b [64]byte
	n, err := r.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	buf := b[:n]
	off := 0
	for _, id := range []uint32{0x1A45DFA3, 0x18538067} { // EBML, Segment
		gotID, idLen, ok := ebmlID(buf[off:])
		if !ok || gotID != id {
			return false, nil
		}
		off += idLen
		v, szLen, unknown, ok := ebmlSize(buf[off:])
		if !ok {
			return false, nil
		}
		off += szLen
		if id == 0x18538067 {
			if unknown {
				return false, nil // live recording: no length declared
			}
			return v > uint64(size-int64(off)), nil
		}
		if unknown || v > uint64(len(buf)-off) {
			return false, nil
		}
		off += int(v)
	}
	return false, nil
}

func ebmlID(b []byte) (id uint32, n int, ok bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false
	}
	n = 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 4 || len(b) < n {
		return 0, 0, false
	}
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	return id, n, true
}

func ebmlSize(b []byte) (v uint64, n int, unknown, ok bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false, false
	}
	n = 1
	mask := byte(0x80)
	for ; b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if len(b) < n {
		return 0, 0, false, false
	}
	v = uint64(b[0] & (mask - 1))
	allOnes := v == uint64(mask-1)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	return v, n, allOnes, true
}

// riffShort walks an AVI's RIFF chunks (one "AVI ", then OpenDML's "AVIX"
// extensions): one running past the end of the file means the file was cut.
func riffShort(r io.ReaderAt, size int64) (bool, error) {
	var h [12]byte
	for off, i := int64(0), 0; off < size && i < maxTopLevel; i++ {
		if size-off < 12 {
			return i == 0, nil
		}
		if _, err := r.ReadAt(h[:], off); err != nil {
			return false, err
		}
		if string(h[:4]) != "RIFF" {
			return false, nil // trailing data that is not a RIFF chunk
		}
		n := int64(binary.LittleEndian.Uint32(h[4:8]))
		if n == 0 || n == 0xFFFFFFFF {
			return false, nil // a streaming writer left the size open
		}
		end := off + 8 + n + n&1
		if off+8+n > size {
			return true, nil
		}
		off = end
	}
	return false, nil
}

// tsShort reports whether an MPEG-TS ends inside a packet: the one sign of a
// cut the format gives, as it declares neither a length nor a frame count.
func tsShort(r io.ReaderAt, size int64) (bool, error) {
	var b [5 * 204]byte
	n, err := r.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	head := b[:n]
	for _, p := range []struct{ size, sync int }{{188, 0}, {192, 4}, {204, 0}} {
		if tsAligned(head, p.size, p.sync) {
			return size%int64(p.size) != 0, nil
		}
	}
	return false, nil // leading junk FFmpeg resynced past: nothing to measure
}

// tsAligned reports whether head holds sync bytes every psize bytes from
// offset sync, for as many packets as it holds (at least two).
func tsAligned(head []byte, psize, sync int) bool {
	count := 0
	for off := sync; off < len(head); off += psize {
		if head[off] != 0x47 {
			return false
		}
		count++
	}
	return count >= 2
}
