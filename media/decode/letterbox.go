package decode

import (
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/model/detect"
)

// letterboxer is PreprocessFast: it turns decoded pictures of any pixel
// format into a packed RGB24
// Size x Size letterbox in display orientation; rotation happens while
// copying into the letterbox.
//
// 8-bit 4:2:0 sources (nearly all H.264, HEVC, MPEG-4 and MJPEG video) take
// two swscale passes: a bilinear resize within the source format, then an
// unscaled conversion to RGB24. Both passes have SIMD code, while swscale's
// one-pass resize-to-RGB24 output is plain C: on the 768x576 sample the two
// passes cost 0.76 ms a frame against 2.95 ms. The pictures differ by about
// one level on average (chroma is upsampled after the resize instead of
// during it). Every other format goes to RGB24 in a single bilinear pass.
type letterboxer struct {
	size int

	resize  *astiav.SoftwareScaleContext // to RGB24, or within the source format
	mid     *astiav.Frame                // resized picture, two-pass only
	convert *astiav.SoftwareScaleContext // mid to RGB24, two-pass only
	dst     *astiav.Frame                // RGB24 picture, coded orientation

	// Source properties the current contexts and placement were made for.
	srcW, srcH int
	srcFmt     astiav.PixelFormat
	rot        int
	p          detect.Letterbox
}

// boxer turns decoded pictures into the model's letterbox; Options.Preprocess
// picks one. A boxer is used by one goroutine at a time and never touches
// the decoder: what it needs to know of the codec comes in the boxJob.
type boxer interface {
	// apply letterboxes the job's picture into dst.
	apply(dst *canvas, j boxJob) error
	free()
}

// boxJob is one picture to letterbox and what the decoder knew of it.
type boxJob struct {
	src *astiav.Frame
	rot int // clockwise degrees: 0, 90, 180, 270
	// convW and convH are the size PreprocessExact converts at (see
	// convertSize), read from the codec context on the decoding goroutine.
	convW, convH int
}

// canvas is one letterbox, packed RGB24 Size x Size, and where the picture
// lies in it. Its padding is painted once per placement: a boxer writes
// only the picture's area.
type canvas struct {
	buf     []byte
	p       detect.Letterbox
	painted bool
}

func newCanvas(size int) canvas { return canvas{buf: make([]byte, size*size*3)} }

// place readies the canvas for a picture placed at p.
func (c *canvas) place(p detect.Letterbox) {
	if c.painted && c.p == p {
		return
	}
	for i := range c.buf {
		c.buf[i] = detect.PadValue
	}
	c.p, c.painted = p, true
}

func newLetterboxer(size int) *letterboxer {
	return &letterboxer{size: size, srcFmt: astiav.PixelFormatNone}
}

// twoPass reports whether a source format takes the resize-then-convert path.
func twoPass(pf astiav.PixelFormat) bool {
	return pf == astiav.PixelFormatYuv420P || pf == astiav.PixelFormatYuvj420P
}

func (l *letterboxer) apply(dst *canvas, j boxJob) error {
	src, rot := j.src, j.rot
	w, h, pf := src.Width(), src.Height(), src.PixelFormat()
	if l.resize == nil || w != l.srcW || h != l.srcH || pf != l.srcFmt || rot != l.rot {
		if err := l.configure(w, h, pf, rot); err != nil {
			return err
		}
	}
	if l.convert != nil {
		if err := l.resize.ScaleFrame(src, l.mid); err != nil {
			return fmt.Errorf("resize %dx%d %s: %w", w, h, pf, err)
		}
		if err := l.convert.ScaleFrame(l.mid, l.dst); err != nil {
			return fmt.Errorf("convert %s to rgb24: %w", pf, err)
		}
	} else if err := l.resize.ScaleFrame(src, l.dst); err != nil {
		return fmt.Errorf("scale %dx%d %s: %w", w, h, pf, err)
	}
	plane, ls := packedPlane(l.dst)
	if plane == nil {
		return fmt.Errorf("scale %dx%d %s: empty output", w, h, pf)
	}
	dst.place(l.p)
	l.copyRotated(dst.buf, plane, ls)
	return nil
}

// configure rebuilds the swscale contexts only when the source changes,
// which for almost every video means once.
func (l *letterboxer) configure(w, h int, pf astiav.PixelFormat, rot int) error {
	l.free()
	dispW, dispH := w, h
	if rot == 90 || rot == 270 {
		dispW, dispH = h, w
	}
	p, err := detect.Plan(dispW, dispH, l.size, l.size)
	if err != nil {
		return err
	}
	sw, sh := p.NewW, p.NewH
	if rot == 90 || rot == 270 {
		sw, sh = p.NewH, p.NewW
	}
	bilinear := astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear)
	if twoPass(pf) {
		if l.resize, err = astiav.CreateSoftwareScaleContext(w, h, pf, sw, sh, pf, bilinear); err != nil {
			return fmt.Errorf("create scaler %dx%d %s -> %dx%d: %w", w, h, pf, sw, sh, err)
		}
		if l.mid, err = newPicture(sw, sh, pf); err != nil {
			return err
		}
		if l.convert, err = astiav.CreateSoftwareScaleContext(sw, sh, pf, sw, sh, astiav.PixelFormatRgb24, bilinear); err != nil {
			return fmt.Errorf("create converter %dx%d %s -> rgb24: %w", sw, sh, pf, err)
		}
	} else if l.resize, err = astiav.CreateSoftwareScaleContext(w, h, pf, sw, sh, astiav.PixelFormatRgb24, bilinear); err != nil {
		return fmt.Errorf("create scaler %dx%d %s -> %dx%d rgb24: %w", w, h, pf, sw, sh, err)
	}
	if l.dst, err = newPicture(sw, sh, astiav.PixelFormatRgb24); err != nil {
		return err
	}
	l.srcW, l.srcH, l.srcFmt, l.rot, l.p = w, h, pf, rot, p
	return nil
}

// newPicture allocates a frame that swscale writes into again and again.
func newPicture(w, h int, pf astiav.PixelFormat) (*astiav.Frame, error) {
	f := astiav.AllocFrame()
	f.SetWidth(w)
	f.SetHeight(h)
	f.SetPixelFormat(pf)
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, fmt.Errorf("allocate %dx%d %s frame: %w", w, h, pf, err)
	}
	return f, nil
}

// copyRotated writes the scaled picture into the letterbox buf. For rot 90
// the display pixel (x, y) comes from scaled pixel (y, H-1-x), H being the
// scaled height; rot 270 is the mirror case.
func (l *letterboxer) copyRotated(buf, src []byte, ls int) {
	p, stride := l.p, l.size*3
	for y := range p.NewH {
		d := buf[(p.Top+y)*stride+p.Left*3:][:p.NewW*3]
		switch l.rot {
		case 0:
			copy(d, src[y*ls:y*ls+p.NewW*3])
		case 180:
			s := src[(p.NewH-1-y)*ls:]
			for x := range p.NewW {
				o := (p.NewW - 1 - x) * 3
				d[x*3], d[x*3+1], d[x*3+2] = s[o], s[o+1], s[o+2]
			}
		case 90:
			for x := range p.NewW {
				o := (p.NewW-1-x)*ls + y*3
				d[x*3], d[x*3+1], d[x*3+2] = src[o], src[o+1], src[o+2]
			}
		case 270:
			for x := range p.NewW {
				o := x*ls + (p.NewH-1-y)*3
				d[x*3], d[x*3+1], d[x*3+2] = src[o], src[o+1], src[o+2]
			}
		}
	}
}

func (l *letterboxer) free() {
	for _, c := range []**astiav.SoftwareScaleContext{&l.resize, &l.convert} {
		if *c != nil {
			(*c).Free()
			*c = nil
		}
	}
	for _, f := range []**astiav.Frame{&l.mid, &l.dst} {
		if *f != nil {
			(*f).Free()
			*f = nil
		}
	}
}
