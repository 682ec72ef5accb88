package annotate

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"os"

	"github.com/asticode/go-astiav"
)

// DrawPNG draws boxes (in img's pixel coordinates) on a copy of img with the
// same outlines, palette and font as the video, and saves it as a PNG file.
// It is meant for README pictures and debugging.
func DrawPNG(path string, img image.Image, boxes []Box) error {
	rgba := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	if !rgba.Rect.Empty() {
		drawBoxes(rgbaCanvas{rgba}, boxes, styleFor(rgba.Rect.Dx(), rgba.Rect.Dy()), bt601)
	}
	if err := savePNG(path, rgba); err != nil {
		return fmt.Errorf("draw png %s: %w", path, err)
	}
	return nil
}

func savePNG(path string, img image.Image) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	return png.Encode(f, img)
}

// FramePNG decodes frame index (0-based, counting every decoded frame) of the
// video in src (or the local file srcName when src is nil), turns it to
// display orientation and saves it with boxes drawn as a PNG at path.
func FramePNG(ctx context.Context, srcName string, src io.ReadSeeker, index int, path string, boxes []Box) error {
	img, err := decodeFrame(ctx, srcName, src, index)
	if err != nil {
		return fmt.Errorf("annotate %s: %w", srcName, err)
	}
	return DrawPNG(path, img, boxes)
}

// decodeFrame returns frame index of a video as RGBA in display orientation.
func decodeFrame(ctx context.Context, srcName string, src io.ReadSeeker, index int) (*image.RGBA, error) {
	if index < 0 {
		return nil, fmt.Errorf("frame %d: negative index", index)
	}
	s, err := openSource(ctx, srcName, src, Options{}.withDefaults())
	if err != nil {
		return nil, err
	}
	defer s.close()
	for i := 0; ; i++ {
		err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("frame %d: video has %d frames", index, i)
		}
		if err != nil {
			return nil, err
		}
		if i == index {
			break
		}
	}
	w, h := s.frame.Width(), s.frame.Height()
	conv := newConverter(w, h, astiav.PixelFormatRgba)
	defer conv.free()
	out, err := conv.convert(s.frame)
	if err != nil {
		return nil, err
	}
	p, ok := planeAt(out, 0, h)
	if !ok {
		return nil, errors.New("converted frame has no pixels")
	}
	coded := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		copy(coded.Pix[y*coded.Stride:y*coded.Stride+4*w], p.data[y*p.stride:])
	}
	return turnRGBA(coded, s.rotation), nil
}

// turnRGBA turns img clockwise by rot degrees (0, 90, 180 or 270).
func turnRGBA(img *image.RGBA, rot int) *image.RGBA {
	if rot == 0 {
		return img
	}
	sw, sh := img.Rect.Dx(), img.Rect.Dy()
	dw, dh := displaySize(sw, sh, rot)
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		for x := range dw {
			var sx, sy int
			switch rot {
			case 90:
				sx, sy = y, sh-1-x
			case 180:
				sx, sy = sw-1-x, sh-1-y
			default: // 270
				sx, sy = sw-1-y, x
			}
			copy(out.Pix[out.PixOffset(x, y):out.PixOffset(x, y)+4], img.Pix[img.PixOffset(sx, sy):])
		}
	}
	return out
}
