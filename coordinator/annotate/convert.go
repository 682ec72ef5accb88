package annotate

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// converter brings decoded frames of any pixel format and size to one fixed
// size and format with swscale, recreating the scaler only when the input
// changes (10-bit, 4:4:4, odd sizes and mid-stream size changes all go here).
type converter struct {
	w, h   int
	format astiav.PixelFormat
	sws    *astiav.SoftwareScaleContext
	key    [3]int // source format, width, height of sws
	out    *astiav.Frame
}

func newConverter(w, h int, format astiav.PixelFormat) *converter {
	return &converter{w: w, h: h, format: format}
}

// convert scales f into the converter's own frame, valid until the next call.
func (c *converter) convert(f *astiav.Frame) (*astiav.Frame, error) {
	key := [3]int{int(f.PixelFormat()), f.Width(), f.Height()}
	if c.sws == nil || c.key != key {
		if c.sws != nil {
			c.sws.Free()
			c.sws = nil
		}
		sws, err := astiav.CreateSoftwareScaleContext(f.Width(), f.Height(), f.PixelFormat(), c.w, c.h, c.format,
			astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
		if err != nil {
			return nil, fmt.Errorf("create scaler %s %dx%d to %s %dx%d: %w", f.PixelFormat(), f.Width(), f.Height(), c.format, c.w, c.h, err)
		}
		c.sws, c.key = sws, key
	}
	if c.out == nil {
		if c.out = astiav.AllocFrame(); c.out == nil {
			return nil, errors.New("allocate frame: out of memory")
		}
		c.out.SetWidth(c.w)
		c.out.SetHeight(c.h)
		c.out.SetPixelFormat(c.format)
		if err := c.out.AllocBuffer(0); err != nil {
			return nil, fmt.Errorf("allocate %dx%d frame: %w", c.w, c.h, err)
		}
	}
	if err := c.sws.ScaleFrame(f, c.out); err != nil {
		return nil, fmt.Errorf("convert %s to %s: %w", f.PixelFormat(), c.format, err)
	}
	return c.out, nil
}

// yuv420 returns the yuv420p planes of f at the converter size, reading the
// decoder's frame in place when it already is yuv420p of that size.
func (c *converter) yuv420(f *astiav.Frame) ([3]plane, error) {
	rows := [3]int{c.h, (c.h + 1) / 2, (c.h + 1) / 2}
	if f.PixelFormat() == astiav.PixelFormatYuv420P && f.Width() == c.w && f.Height() == c.h {
		if p, ok := planes(f, rows); ok {
			return p, nil
		}
	}
	out, err := c.convert(f)
	if err != nil {
		return [3]plane{}, err
	}
	p, ok := planes(out, rows)
	if !ok {
		return p, errors.New("converted frame has no planes")
	}
	return p, nil
}

func (c *converter) free() {
	if c.sws != nil {
		c.sws.Free()
	}
	if c.out != nil {
		c.out.Free()
	}
}
