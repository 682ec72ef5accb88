package jpeg

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// Decoder turns JPEG bytes from outside, which may be hostile, into packed
// RGB24 pictures of a size the caller expects, with FFmpeg's mjpeg decoder.
// Whatever the decoder yields (4:2:0, 4:2:2, 4:4:4, 4:1:1, 4:4:0 or grey)
// is converted as JFIF says: full-range BT.601. The zero Decoder is ready to use; it keeps
// its codec context, frames, packet and scaler from one picture to the
// next. A Decoder is not safe for concurrent use: one per goroutine.
type Decoder struct {
	codec     // src: the decoded picture, dst: it in RGB24
	swsFormat astiav.PixelFormat
}

// Decode decodes jpg, which must be a w x h picture, into dst as packed
// RGB24 and returns dst[:3*w*h], reallocated if dst is too small; nil with
// an error.
//
// A picture of any other size is refused with ErrSize as its frame header
// declares it, before FFmpeg allocates anything (a few hundred bytes may
// declare 65500x65500), and again as it decodes. FFmpeg may find a frame
// header where this package's walk does not look: max_pixels, set from w x
// h, keeps it from allocating a larger picture, and that refusal is
// ErrCorrupt, as are bytes that are not one whole JPEG. JPEGs other than
// 8-bit baseline, extended or progressive give ErrUnsupported.
func (d *Decoder) Decode(dst, jpg []byte, w, h int) ([]byte, error) {
	if d.closed {
		return nil, ErrClosed
	}
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	hw, hh, err := header(jpg)
	if err != nil {
		return nil, err
	}
	if hw != w || hh != h {
		return nil, fmt.Errorf("header declares %dx%d, the frame is %dx%d: %w", hw, hh, w, h, ErrSize)
	}
	// FFmpeg decodes a picture cut short as far as it goes and conceals the
	// rest: a whole JPEG ends with its end-of-image marker.
	if n := len(jpg); jpg[n-2] != 0xFF || jpg[n-1] != 0xD9 {
		return nil, fmt.Errorf("%w: no end-of-image marker", ErrCorrupt)
	}
	if err := d.setup(w, h); err != nil {
		d.reset()
		return nil, err
	}
	out, err := d.decode(dst, jpg)
	if err != nil {
		// Nothing of a failed picture (its tables, the decoder's state)
		// carries into the next one.
		d.reset()
		return nil, err
	}
	return out, nil
}

func (d *Decoder) decode(dst, jpg []byte) ([]byte, error) {
	if err := setPacket(d.pkt, jpg); err != nil {
		return nil, fmt.Errorf("copy packet: %w", err)
	}
	err := d.cc.SendPacket(d.pkt)
	d.pkt.Unref()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := d.cc.ReceiveFrame(d.src); err != nil {
		if errors.Is(err, astiav.ErrEagain) {
			return nil, fmt.Errorf("%w: no picture decoded", ErrCorrupt)
		}
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer d.src.Unref()
	if fw, fh := d.src.Width(), d.src.Height(); fw != d.w || fh != d.h {
		return nil, fmt.Errorf("picture decodes as %dx%d, the frame is %dx%d: %w", fw, fh, d.w, d.h, ErrSize)
	}
	pf := d.src.PixelFormat()
	if d.sws == nil || d.swsFormat != pf {
		if d.sws != nil {
			d.sws.Free()
			d.sws = nil
		}
		sws, err := astiav.CreateSoftwareScaleContext(d.w, d.h, pf, d.w, d.h, astiav.PixelFormatRgb24, decodeFlags)
		if err != nil {
			return nil, fmt.Errorf("create %s to rgb24 scaler: %w", pf, err)
		}
		d.sws, d.swsFormat = sws, pf
	}
	if err := d.sws.ScaleFrame(d.src, d.dst); err != nil {
		return nil, fmt.Errorf("convert %s to rgb24: %w", pf, err)
	}
	n := 3 * d.w * d.h
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	px, ls := plane(d.dst)
	for y, row := 0, 3*d.w; y < d.h; y++ {
		copy(dst[y*row:(y+1)*row], px[y*ls:])
	}
	return dst, nil
}

// setup opens the mjpeg decoder for w x h pictures, with max_pixels so
// that FFmpeg itself refuses to allocate a larger one. Its picture buffers
// are checked at their width aligned to STRIDE_ALIGN (up to 64 pixels, with
// AVX-512), so that is the width max_pixels allows.
func (d *Decoder) setup(w, h int) error {
	if d.cc != nil && d.w == w && d.h == h {
		return nil
	}
	d.reset()
	codec := astiav.FindDecoderByName("mjpeg")
	if codec == nil {
		return fmt.Errorf("find decoder mjpeg: %w", astiav.ErrDecoderNotFound)
	}
	if d.cc = astiav.AllocCodecContext(codec); d.cc == nil {
		return errors.New("allocate mjpeg decoder")
	}
	d.cc.SetThreadCount(1)
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("max_pixels", strconv.Itoa(((w+63)&^63)*h), 0); err != nil {
		return fmt.Errorf("set max_pixels: %w", err)
	}
	if err := d.cc.Open(codec, opts); err != nil {
		return fmt.Errorf("open mjpeg decoder: %w", err)
	}
	if e := opts.Get("max_pixels", nil, 0); e != nil {
		return errors.New("open mjpeg decoder: max_pixels not applied")
	}
	if err := d.allocate(); err != nil {
		return err
	}
	if err := allocPicture(d.dst, w, h, astiav.PixelFormatRgb24); err != nil {
		return err
	}
	d.w, d.h = w, h
	return nil
}

// Close frees everything the Decoder holds. Decode then returns ErrClosed.
func (d *Decoder) Close() { d.close() }
