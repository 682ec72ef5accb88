package annotate

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/media/decode"
)

// DrawPNG draws boxes (in img's pixel coordinates) on a copy of img with the
// same outlines, palette and font as the video, and saves it as a PNG file.
func DrawPNG(path string, img image.Image, boxes []Box) error {
	rgba := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	return drawPNG(path, rgba, boxes)
}

// drawPNG is DrawPNG drawing on rgba itself, which the preview owns.
func drawPNG(path string, rgba *image.RGBA, boxes []Box) error {
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

// keepPreview holds picture p, upright at its own size bounded as the
// output is, as the preview candidate with its boxes (scaled with
// it); the PNG is drawn once the video is written.
func (a *annotator) keepPreview(p *decode.Picture, boxes []Box) error {
	dw, dh := boundedSize(p.Width, p.Height, a.plan.MaxOutputPixels)
	w, h := displaySize(dw, dh, a.rotation)
	if a.rgba == nil || a.rgba.w != w || a.rgba.h != h {
		if a.rgba != nil {
			a.rgba.free()
		}
		a.rgba = newConverter(w, h, astiav.PixelFormatRgba)
	}
	out, err := a.rgba.convert(p.Frame)
	if err != nil {
		return err
	}
	pl, ok := planeAt(out, 0, h)
	if !ok {
		return errors.New("converted frame has no pixels")
	}
	coded := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		copy(coded.Pix[y*coded.Stride:y*coded.Stride+4*w], pl.data[y*pl.stride:])
	}
	a.best = turnRGBA(coded, a.rotation)
	a.bestBoxes = a.bestBoxes[:0]
	sx, sy := float32(dw)/float32(p.Width), float32(dh)/float32(p.Height)
	for _, b := range boxes {
		b.X1, b.X2, b.Y1, b.Y2 = b.X1*sx, b.X2*sx, b.Y1*sy, b.Y2*sy
		a.bestBoxes = append(a.bestBoxes, b)
	}
	a.bestFrame, a.bestN = p.Index, len(boxes)
	return nil
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
