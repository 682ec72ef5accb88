package detect

import (
	"fmt"
	"math"
	"slices"
)

// HeadLayout is the memory order of one raw Detect head (logits, one image).
type HeadLayout uint8

const (
	// LayoutConv is the 1x1 conv output [na*(5+nc), ny, nx]: channel a*(5+nc)+j.
	LayoutConv HeadLayout = iota
	// LayoutPermuted is the training-mode output [na, ny, nx, 5+nc].
	LayoutPermuted
)

// DefaultStrides are the YOLOv5 P3, P4, P5 strides.
var DefaultStrides = [3]int{8, 16, 32}

// DefaultAnchors are the YOLOv5 (v6/v7) anchors in input pixels, (w, h)
// pairs per level.
var DefaultAnchors = [3][6]float32{
	{10, 13, 16, 30, 33, 23},
	{30, 61, 62, 45, 59, 119},
	{116, 90, 156, 198, 373, 326},
}

// HeadLevel describes one Detect output level.
type HeadLevel struct {
	NY, NX  int       // grid size
	Stride  float32   // input pixels per grid cell
	Anchors []float32 // (w, h) pairs in input pixels, one per anchor
}

// DecodedRows is the number of output0 rows the levels produce.
func DecodedRows(levels []HeadLevel) int {
	n := 0
	for _, l := range levels {
		n += len(l.Anchors) / 2 * l.NY * l.NX
	}
	return n
}

// DecodeHeads turns raw head logits of one image into output0 rows
// [cx, cy, w, h, obj, cls...] as ultralytics Detect.forward does in export
// mode: sigmoid, xy = (2s - 0.5 + grid)*stride, wh = (2s)^2*anchor, rows
// ordered by level, anchor, y, x. The rows are appended to dst[:0].
func DecodeHeads(dst []float32, heads [][]float32, levels []HeadLevel, nc int, layout HeadLayout) ([]float32, error) {
	dst = dst[:0]
	if nc < 1 || len(heads) != len(levels) {
		return dst, fmt.Errorf("decode %d heads for %d levels, %d classes: %w", len(heads), len(levels), nc, ErrSize)
	}
	if layout != LayoutConv && layout != LayoutPermuted {
		return dst, fmt.Errorf("decode head layout %d: %w", layout, ErrOption)
	}
	no := 5 + nc
	for i, l := range levels {
		na := len(l.Anchors) / 2
		if na < 1 || len(l.Anchors)%2 != 0 || l.NY < 1 || l.NX < 1 || !(l.Stride > 0) {
			return dst, fmt.Errorf("decode level %d (%dx%d, stride %v, %d anchor values): %w",
				i, l.NX, l.NY, l.Stride, len(l.Anchors), ErrSize)
		}
		if want := na * no * l.NY * l.NX; len(heads[i]) != want {
			return dst, fmt.Errorf("decode head %d of %d floats, want %d: %w", i, len(heads[i]), want, ErrSize)
		}
	}
	dst = slices.Grow(dst, DecodedRows(levels)*no)
	for i, l := range levels {
		dst = decodeLevel(dst, heads[i], l, no, layout)
	}
	return dst, nil
}

func decodeLevel(dst, h []float32, l HeadLevel, no int, layout HeadLayout) []float32 {
	na, cells := len(l.Anchors)/2, l.NY*l.NX
	for a := range na {
		aw, ah := l.Anchors[2*a], l.Anchors[2*a+1]
		for y := range l.NY {
			// grid - 0.5 as _make_grid builds it.
			gy := float32(y) - 0.5
			for x := range l.NX {
				gx := float32(x) - 0.5
				cell := y*l.NX + x
				// v(j) reads column j of this (anchor, cell).
				base, step := (a*no)*cells+cell, cells
				if layout == LayoutPermuted {
					base, step = (a*cells+cell)*no, 1
				}
				sx := sigmoid(h[base])
				sy := sigmoid(h[base+step])
				sw := sigmoid(h[base+2*step]) * 2
				sh := sigmoid(h[base+3*step]) * 2
				dst = append(dst,
					(sx*2+gx)*l.Stride,
					(sy*2+gy)*l.Stride,
					float32(sw*sw)*aw,
					float32(sh*sh)*ah,
				)
				for j := 4; j < no; j++ {
					dst = append(dst, sigmoid(h[base+j*step]))
				}
			}
		}
	}
	return dst
}

func sigmoid(v float32) float32 { return float32(1 / (1 + math.Exp(-float64(v)))) }
