package jpeg

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// Encoder compresses packed RGB24 pictures to JPEG with FFmpeg's mjpeg
// encoder (YCbCr 4:2:0, full range, as JFIF has it). It keeps its codec
// context, frames, packet and scaler from one picture to the next while
// the size stays the same. An Encoder is not safe for concurrent use: one
// per goroutine.
type Encoder struct {
	codec  // src: the RGB24 picture, dst: it in yuvj420p
	qscale int
}

// NewEncoder returns an Encoder at quality, on libjpeg's (and
// image/jpeg's) scale of 1 to 100; 90 is a good default.
//
// FFmpeg's mjpeg encoder has no such scale: its quantiser tables are
// MPEG-1's intra matrix times a fixed qscale/8, qscale 1 (finest) to 31.
// libjpeg scales its own tables by s = 200-2*quality percent (5000/quality
// below 50), and qscale = s/10, rounded, gives pictures as close to the
// original as image/jpeg's at the same quality, within half a dB of PSNR
// and in fewer bytes (TestQualityMatchesImageJPEG): 95 and above is
// qscale 1, 90 is 2, 85 is 3, 50 is 10, 16 and below is 31.
func NewEncoder(quality int) (*Encoder, error) {
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("%w: quality %d, want 1 to 100", ErrArgument, quality)
	}
	return &Encoder{qscale: qscale(quality)}, nil
}

// qscale maps a libjpeg quality to the mjpeg encoder's qscale.
func qscale(quality int) int {
	s := 200 - 2*quality
	if quality < 50 {
		s = 5000 / quality
	}
	return min(max((s+5)/10, 1), 31)
}

// Encode appends the JPEG of rgb, a packed RGB24 picture w x h, to dst and
// returns the extended slice.
func (e *Encoder) Encode(dst, rgb []byte, w, h int) ([]byte, error) {
	if e.closed {
		return dst, ErrClosed
	}
	if err := checkSize(w, h); err != nil {
		return dst, err
	}
	if len(rgb) != 3*w*h {
		return dst, fmt.Errorf("%w: %d bytes for a %dx%d RGB24 picture", ErrArgument, len(rgb), w, h)
	}
	if err := e.setup(w, h); err != nil {
		e.reset()
		return dst, err
	}
	out, err := e.encode(dst, rgb)
	if err != nil {
		// Nothing of a failed picture carries into the next one.
		e.reset()
		return dst, err
	}
	return out, nil
}

func (e *Encoder) encode(dst, rgb []byte) ([]byte, error) {
	px, ls := plane(e.src)
	for y, row := 0, 3*e.w; y < e.h; y++ {
		copy(px[y*ls:y*ls+row], rgb[y*row:])
	}
	if !writable(e.dst) {
		if err := e.allocYUV(); err != nil {
			return nil, err
		}
	}
	if err := e.sws.ScaleFrame(e.src, e.dst); err != nil {
		return nil, fmt.Errorf("convert to yuvj420p: %w", err)
	}
	setQuality(e.dst, e.qscale)
	if err := e.cc.SendFrame(e.dst); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := e.cc.ReceivePacket(e.pkt); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	defer e.pkt.Unref()
	b, err := packetBytes(e.pkt)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// setup makes the codec context, frames and scaler for w x h pictures.
func (e *Encoder) setup(w, h int) error {
	if e.cc != nil && e.w == w && e.h == h {
		return nil
	}
	e.reset()
	codec := astiav.FindEncoderByName("mjpeg")
	if codec == nil {
		return fmt.Errorf("find encoder mjpeg: %w", astiav.ErrEncoderNotFound)
	}
	if e.cc = astiav.AllocCodecContext(codec); e.cc == nil {
		return errors.New("allocate mjpeg encoder")
	}
	e.cc.SetWidth(w)
	e.cc.SetHeight(h)
	e.cc.SetPixelFormat(astiav.PixelFormatYuvj420P)
	e.cc.SetTimeBase(astiav.NewRational(1, 25))
	e.cc.SetThreadCount(1)
	e.cc.SetFlags(e.cc.Flags().Add(astiav.CodecContextFlagQscale))
	// The quantiser comes from each frame (setQuality); qmin only must
	// not clip it.
	e.cc.SetQmin(1)
	if err := e.cc.Open(codec, nil); err != nil {
		return fmt.Errorf("open mjpeg encoder: %w", err)
	}
	e.w, e.h = w, h
	if err := e.allocate(); err != nil {
		return err
	}
	if err := allocPicture(e.src, w, h, astiav.PixelFormatRgb24); err != nil {
		return err
	}
	if err := e.allocYUV(); err != nil {
		return err
	}
	sws, err := astiav.CreateSoftwareScaleContext(w, h, astiav.PixelFormatRgb24, w, h, astiav.PixelFormatYuvj420P, encodeFlags)
	if err != nil {
		return fmt.Errorf("create rgb24 to yuvj420p scaler: %w", err)
	}
	e.sws = sws
	return nil
}

// allocYUV gives the encoder's input frame a buffer of its own.
func (e *Encoder) allocYUV() error {
	e.dst.Unref()
	return allocPicture(e.dst, e.w, e.h, astiav.PixelFormatYuvj420P)
}

// Close frees everything the Encoder holds. Encode then returns ErrClosed.
func (e *Encoder) Close() { e.close() }
