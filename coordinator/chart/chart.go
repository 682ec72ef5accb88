// Package chart draws small line charts as PNG pictures, such as a job's
// frames per second over time, per worker: a look instead of a table.
package chart

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"

	"github.com/vidpipe/vidpipe/internal/font"
)

// Point is one sample of a series.
type Point struct{ X, Y float64 }

// Series is one line of the chart.
type Series struct {
	Name   string
	Points []Point
}

// Chart is what Draw renders.
type Chart struct {
	Title          string
	XLabel, YLabel string
	Series         []Series
}

// Size of the picture and of its plotting margins, in pixels.
const (
	width, height = 960, 480
	left, right   = 70, 190
	top, bottom   = 64, 50
	scale         = 2 // text scale: 10x14 pixel glyphs
)

// ErrEmpty: there is nothing to draw.
var ErrEmpty = errors.New("chart has no points")

var (
	white = color.RGBA{255, 255, 255, 255}
	ink   = color.RGBA{40, 40, 40, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	// lines are distinct on white and for common colour blindness (Okabe-Ito).
	lines = []color.RGBA{
		{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
		{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
	}
)

// Colour is the line colour of the i-th series.
func Colour(i int) color.RGBA { return lines[i%len(lines)] }

// Draw renders c as a PNG into w.
func Draw(w io.Writer, c Chart) error {
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	n := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if !finite(p.X) || !finite(p.Y) {
				return fmt.Errorf("chart %q: series %q has a non-finite point", c.Title, s.Name)
			}
			xmin, xmax, ymax = math.Min(xmin, p.X), math.Max(xmax, p.X), math.Max(ymax, p.Y)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("chart %q: %w", c.Title, ErrEmpty)
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	ystep := niceStep(ymax / 5)
	ytop := math.Max(ystep*math.Ceil(ymax/ystep), ystep)
	xstep := niceStep((xmax - xmin) / 8)

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Rect, white)
	plot := image.Rect(left, top, width-right, height-bottom)
	px := func(x float64) int { return plot.Min.X + int(math.Round((x-xmin)/(xmax-xmin)*float64(plot.Dx()))) }
	py := func(y float64) int { return plot.Max.Y - int(math.Round(y/ytop*float64(plot.Dy()))) }

	for y := 0.0; y <= ytop+ystep/2; y += ystep {
		fill(img, image.Rect(plot.Min.X, py(y), plot.Max.X, py(y)+1), grid)
		label := number(y)
		text(img, plot.Min.X-8-font.TextWidth(label)*scale, py(y)-font.H*scale/2, label, ink)
	}
	for x := xstep * math.Ceil(xmin/xstep); x <= xmax; x += xstep {
		fill(img, image.Rect(px(x), plot.Max.Y, px(x)+1, plot.Max.Y+6), ink)
		label := number(x)
		text(img, px(x)-font.TextWidth(label)*scale/2, plot.Max.Y+10, label, ink)
	}
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+2, plot.Max.Y), ink)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y-1, plot.Max.X, plot.Max.Y+1), ink)
	text(img, left, 10, c.Title, ink)
	text(img, 8, 10+font.CellH*scale+8, c.YLabel, ink)
	text(img, plot.Max.X-font.TextWidth(c.XLabel)*scale, height-18, c.XLabel, ink)

	for i, s := range c.Series {
		col := Colour(i)
		for j := 1; j < len(s.Points); j++ {
			a, b := s.Points[j-1], s.Points[j]
			line(img, px(a.X), py(a.Y), px(b.X), py(b.Y), col)
		}
		if len(s.Points) == 1 {
			p := s.Points[0]
			fill(img, image.Rect(px(p.X)-2, py(p.Y)-2, px(p.X)+3, py(p.Y)+3), col)
		}
		// Legend, right of the plot.
		ly := top + i*(font.CellH*scale+8)
		fill(img, image.Rect(width-right+16, ly+4, width-right+36, ly+10), col)
		text(img, width-right+42, ly, s.Name, ink)
	}
	return png.Encode(w, img)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || !finite(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// number prints a tick value without needless decimals.
func number(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a 2-pixel line from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fill(img, image.Rect(x0, y0, x0+2, y0+2), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// text writes s at (x, y), its top-left corner, in the 5x7 font.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g := font.Glyph(r)
		for col := range font.W {
			for row := range font.H {
				if g[col]&(1<<row) != 0 {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += font.CellW * scale
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
