package bus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Codec says how a frame's pixels travel.
type Codec uint8

// Frame codecs. Raw is letterboxed RGB24, JPEG is the same picture JPEG-encoded.
const (
	Raw  Codec = 0
	JPEG Codec = 1
)

func (c Codec) String() string {
	switch c {
	case Raw:
		return "raw"
	case JPEG:
		return "jpeg"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec parses "raw" or "jpeg".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "raw":
		return Raw, nil
	case "jpeg":
		return JPEG, nil
	}
	return 0, fmt.Errorf("frame codec %q: want raw or jpeg", s)
}

// Frame is one decoded, letterboxed picture on its way to a worker.
type Frame struct {
	Job, Video string
	// Seq numbers the frames published for a video 0, 1, 2, ... with no gap:
	// the coordinator orders and de-duplicates by it.
	Seq int
	// Index is the frame's position among all decoded frames of the video.
	Index int
	// PTS is the presentation time in seconds; Estimated means the container
	// gave none and it was extrapolated.
	PTS       float64
	Estimated bool
	// Width and Height are the original picture size in display orientation.
	Width, Height int
	// Size is the square model input the picture was letterboxed to, with the
	// letterbox's gain and float pads for mapping boxes back.
	Size       int
	Gain       float64
	PadX, PadY float32
	// PublishedUnixNano and DecodeMS feed the stage latency statistics.
	PublishedUnixNano int64
	DecodeMS          float32
	Codec             Codec
	Pixels            []byte
}

const (
	frameMagic = "VPF1"
	// MaxFramePixels bounds the payload a decoder accepts (an 8K RGB frame).
	MaxFramePixels = 8192 * 8192 * 3
)

// AppendFrame encodes f onto b in vidpipe's binary frame format: a fixed
// little-endian header, then the pixels. It never allocates when b has room.
func AppendFrame(b []byte, f *Frame) []byte {
	b = append(b, frameMagic...)
	b = append(b, byte(f.Codec))
	b = appendString(b, f.Job)
	b = appendString(b, f.Video)
	b = binary.LittleEndian.AppendUint32(b, uint32(f.Seq))
	b = binary.LittleEndian.AppendUint32(b, uint32(f.Index))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f.PTS))
	var flags byte
	if f.Estimated {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(f.Width))
	b = binary.LittleEndian.AppendUint32(b, uint32(f.Height))
	b = binary.LittleEndian.AppendUint32(b, uint32(f.Size))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f.Gain))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f.PadX))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f.PadY))
	b = binary.LittleEndian.AppendUint64(b, uint64(f.PublishedUnixNano))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f.DecodeMS))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Pixels)))
	return append(b, f.Pixels...)
}

// DecodeFrame parses a frame message into f. f.Pixels aliases b.
func DecodeFrame(b []byte, f *Frame) error {
	r := reader{b: b}
	if string(r.bytes(len(frameMagic))) != frameMagic {
		return fmt.Errorf("%w: not a vidpipe frame", ErrBadMessage)
	}
	f.Codec = Codec(r.u8())
	f.Job = r.string()
	f.Video = r.string()
	f.Seq = int(r.u32())
	f.Index = int(r.u32())
	f.PTS = math.Float64frombits(r.u64())
	f.Estimated = r.u8()&1 != 0
	f.Width = int(r.u32())
	f.Height = int(r.u32())
	f.Size = int(r.u32())
	f.Gain = math.Float64frombits(r.u64())
	f.PadX = math.Float32frombits(r.u32())
	f.PadY = math.Float32frombits(r.u32())
	f.PublishedUnixNano = int64(r.u64())
	f.DecodeMS = math.Float32frombits(r.u32())
	n := int(r.u32())
	if r.err != nil {
		return fmt.Errorf("%w: frame header: %v", ErrBadMessage, r.err)
	}
	if n != len(r.b) {
		return fmt.Errorf("%w: frame says %d pixel bytes, carries %d", ErrBadMessage, n, len(r.b))
	}
	f.Pixels = r.b
	return f.validate()
}

func (f *Frame) validate() error {
	if err := ValidName("job", f.Job); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if err := ValidName("video", f.Video); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	// Every float is refused here unless finite: an infinite pts would
	// pass through inference and then fail the result's JSON encoding,
	// again on every redelivery.
	for _, x := range [...]struct {
		name string
		v    float64
	}{{"pts", f.PTS}, {"gain", f.Gain}, {"pad_x", float64(f.PadX)}, {"pad_y", float64(f.PadY)}, {"decode_ms", float64(f.DecodeMS)}} {
		if !finite(x.v) {
			return fmt.Errorf("%w: frame %s/%s#%d: %s is %v, want a finite number", ErrBadMessage, f.Job, f.Video, f.Seq, x.name, x.v)
		}
	}
	switch {
	case f.Codec != Raw && f.Codec != JPEG:
		return fmt.Errorf("%w: frame %s/%s#%d: unknown codec %d", ErrBadMessage, f.Job, f.Video, f.Seq, f.Codec)
	case f.Size <= 0 || f.Size > 8192 || f.Width <= 0 || f.Height <= 0 || f.Width > 1<<16 || f.Height > 1<<16:
		return fmt.Errorf("%w: frame %s/%s#%d: bad geometry %dx%d -> %d", ErrBadMessage, f.Job, f.Video, f.Seq, f.Width, f.Height, f.Size)
	case !(f.Gain > 0):
		return fmt.Errorf("%w: frame %s/%s#%d: letterbox gain %v, want > 0", ErrBadMessage, f.Job, f.Video, f.Seq, f.Gain)
	case f.Codec == Raw && len(f.Pixels) != f.Size*f.Size*3:
		return fmt.Errorf("%w: frame %s/%s#%d: %d raw bytes for %dx%d RGB", ErrBadMessage, f.Job, f.Video, f.Seq, len(f.Pixels), f.Size, f.Size)
	case len(f.Pixels) > MaxFramePixels:
		return fmt.Errorf("%w: frame %s/%s#%d: %d pixel bytes", ErrBadMessage, f.Job, f.Video, f.Seq, len(f.Pixels))
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// reader consumes a byte slice; the first short read sets err and every
// later read returns zero, so callers check err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("truncated: want %d bytes, have %d", n, len(r.b))
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.bytes(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.bytes(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *reader) string() string { return string(r.bytes(int(r.u16()))) }
