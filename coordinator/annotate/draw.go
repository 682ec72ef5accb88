package annotate

import (
	"fmt"
	"image"
	"math"

	"github.com/vidpipe/vidpipe/internal/font"
)

// maxLabelRunes bounds the drawn label so one hostile class name cannot cover
// the picture.
const maxLabelRunes = 40

// canvas is a picture the box drawer can paint on: yuv420p planes for the
// video, RGBA for PNG stills.
type canvas interface {
	size() (w, h int)
	// fill paints r, already clipped to the canvas, with c.
	fill(r image.Rectangle, c colour)
	// ink paints one text pixel, light or dark, keeping the background hue.
	ink(x, y int, light bool)
}

// style holds the stroke and text sizes for one picture size.
type style struct {
	thick int // outline width in pixels
	scale int // font magnification
}

// styleFor picks sizes from the shorter side so labels stay legible on HD
// and small boxes stay visible on SD.
func styleFor(w, h int) style {
	short := min(w, h)
	switch {
	case short < 720:
		return style{thick: 2, scale: 1}
	case short < 1440:
		return style{thick: 3, scale: 2}
	default:
		return style{thick: 3, scale: 3}
	}
}

// labelText is what a box's tag reads, e.g. "person 0.87".
func labelText(b Box) string {
	name := b.Label
	if name == "" {
		name = fmt.Sprintf("class %d", b.ClassID)
	}
	if r := []rune(name); len(r) > maxLabelRunes {
		name = string(r[:maxLabelRunes])
	}
	return fmt.Sprintf("%s %.2f", name, b.Conf)
}

// clipBox converts b to integer pixels inside a w x h picture. Boxes with NaN
// or infinite coordinates, inverted corners or no area left after clipping
// are reported as not drawable rather than guessed at.
func clipBox(b Box, w, h int) (image.Rectangle, bool) {
	for _, v := range [4]float32{b.X1, b.Y1, b.X2, b.Y2} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return image.Rectangle{}, false
		}
	}
	if b.X1 > b.X2 || b.Y1 > b.Y2 {
		return image.Rectangle{}, false
	}
	// Clamp in float before converting: huge floats overflow int conversion.
	clamp := func(v float32, hi int) int {
		return int(math.Round(math.Min(math.Max(float64(v), 0), float64(hi))))
	}
	r := image.Rect(clamp(b.X1, w), clamp(b.Y1, h), clamp(b.X2, w), clamp(b.Y2, h))
	if r.Empty() {
		return image.Rectangle{}, false
	}
	return r, true
}

// drawBoxes paints every drawable box with its outline and label.
func drawBoxes(cv canvas, boxes []Box, st style, m matrix) {
	w, h := cv.size()
	frame := image.Rect(0, 0, w, h)
	for _, b := range boxes {
		r, ok := clipBox(b, w, h)
		if !ok {
			continue
		}
		c := classColour(b.ClassID, m)
		t := st.thick
		edges := [4]image.Rectangle{
			image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+t),
			image.Rect(r.Min.X, r.Max.Y-t, r.Max.X, r.Max.Y),
			image.Rect(r.Min.X, r.Min.Y, r.Min.X+t, r.Max.Y),
			image.Rect(r.Max.X-t, r.Min.Y, r.Max.X, r.Max.Y),
		}
		for _, e := range edges {
			if e = e.Intersect(r); !e.Empty() {
				cv.fill(e, c)
			}
		}
		drawLabel(cv, frame, r, labelText(b), c, st.scale)
	}
}

// drawLabel puts the tag above the box, or inside its top edge when the box
// touches the top of the picture, shifted left if it would leave the frame.
func drawLabel(cv canvas, frame, box image.Rectangle, text string, c colour, scale int) {
	pad := scale
	tw, th := font.TextWidth(text)*scale, font.H*scale
	bw, bh := tw+2*pad, th+2*pad
	x, y := box.Min.X, box.Min.Y-bh
	if y < 0 {
		y = box.Min.Y
	}
	if x+bw > frame.Max.X {
		x = max(frame.Max.X-bw, 0)
	}
	bg := image.Rect(x, y, x+bw, y+bh).Intersect(frame)
	if bg.Empty() {
		return
	}
	cv.fill(bg, c)
	light := !c.light()
	gx := x + pad
	for _, r := range text {
		g := font.Glyph(r)
		for col := range font.W {
			bits := g[col]
			for row := range font.H {
				if bits&(1<<row) == 0 {
					continue
				}
				for dy := range scale {
					for dx := range scale {
						px, py := gx+col*scale+dx, y+pad+row*scale+dy
						if image.Pt(px, py).In(bg) {
							cv.ink(px, py, light)
						}
					}
				}
			}
		}
		gx += font.CellW * scale
	}
}

// yuvCanvas paints into 8-bit yuv420p planes in place.
type yuvCanvas struct {
	w, h             int
	y, u, v          []byte
	yStride, cStride int
}

func (c *yuvCanvas) size() (int, int) { return c.w, c.h }

func (c *yuvCanvas) fill(r image.Rectangle, col colour) {
	for py := r.Min.Y; py < r.Max.Y; py++ {
		row := c.y[py*c.yStride:]
		for px := r.Min.X; px < r.Max.X; px++ {
			row[px] = col.y
		}
	}
	// Chroma covers 2x2 luma pixels: paint every chroma sample the rectangle
	// touches, so thin lines keep their hue after subsampling.
	cw, ch := (c.w+1)/2, (c.h+1)/2
	for cy := r.Min.Y / 2; cy < min((r.Max.Y+1)/2, ch); cy++ {
		u, v := c.u[cy*c.cStride:], c.v[cy*c.cStride:]
		for cx := r.Min.X / 2; cx < min((r.Max.X+1)/2, cw); cx++ {
			u[cx], v[cx] = col.u, col.v
		}
	}
}

func (c *yuvCanvas) ink(x, y int, light bool) {
	if light {
		c.y[y*c.yStride+x] = 235
	} else {
		c.y[y*c.yStride+x] = 16
	}
}

// rgbaCanvas paints into an image.RGBA for PNG stills.
type rgbaCanvas struct{ img *image.RGBA }

func (c rgbaCanvas) size() (int, int) {
	return c.img.Rect.Dx(), c.img.Rect.Dy()
}

func (c rgbaCanvas) fill(r image.Rectangle, col colour) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.set(x, y, col.r, col.g, col.b)
		}
	}
}

func (c rgbaCanvas) ink(x, y int, light bool) {
	if light {
		c.set(x, y, 255, 255, 255)
	} else {
		c.set(x, y, 0, 0, 0)
	}
}

func (c rgbaCanvas) set(x, y int, r, g, b uint8) {
	i := c.img.PixOffset(x+c.img.Rect.Min.X, y+c.img.Rect.Min.Y)
	p := c.img.Pix[i : i+4 : i+4]
	p[0], p[1], p[2], p[3] = r, g, b, 255
}
