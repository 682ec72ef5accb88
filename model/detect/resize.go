package detect

import (
	"fmt"
	"math"
)

// PixelFormat is the byte order of a packed 24-bit source image.
type PixelFormat uint8

// Packed 8-bit, 3-channel formats accepted by the Resizer.
const (
	RGB24 PixelFormat = iota
	BGR24
)

// PadValue is the letterbox border grey, as ultralytics uses.
const PadValue = 114

// OpenCV resizes uint8 images in 11-bit fixed point; mimicking it makes the
// result bit-exact with cv2.resize(INTER_LINEAR) rather than merely close.
const (
	coefBits  = 11
	coefScale = 1 << coefBits
)

// Resizer letterboxes packed 24-bit frames into planar RGB float32 (CHW,
// values /255), matching cv2.resize(INTER_LINEAR) + copyMakeBorder(114)
// followed by /255 bit for bit (checked against OpenCV 4.6 on x86). It precomputes the interpolation tables of one Letterbox
// so that Run does not allocate. A Resizer is not safe for concurrent use.
type Resizer struct {
	lb     Letterbox
	format PixelFormat

	xtaps        []xtap  // per output column
	yofs0, yofs1 []int32 // the two source rows per output row, clamped
	beta         []int32 // vertical weights, two per output row

	rows   [2][]int32 // horizontally resized source rows (NewW*3 values, scale 2048)
	rowSrc [2]int     // which source row each buffer holds, -1 when none
	lut    [256]float32
}

// NewResizer prepares the tables for lb and source pixel format.
func NewResizer(lb Letterbox, format PixelFormat) (*Resizer, error) {
	if lb.SrcW <= 0 || lb.SrcH <= 0 || lb.NewW <= 0 || lb.NewH <= 0 ||
		lb.Left < 0 || lb.Top < 0 || lb.Left+lb.NewW > lb.DstW || lb.Top+lb.NewH > lb.DstH ||
		lb.SrcW > math.MaxInt32/3 {
		return nil, fmt.Errorf("new resizer for letterbox %+v: %w", lb, ErrSize)
	}
	if format != RGB24 && format != BGR24 {
		return nil, fmt.Errorf("new resizer pixel format %d: %w", format, ErrOption)
	}
	z := &Resizer{lb: lb, format: format, rowSrc: [2]int{-1, -1}}
	for v := range z.lut {
		z.lut[v] = float32(v) / 255 // float32 division, as torch's im /= 255
	}

	z.xtaps = make([]xtap, lb.NewW)
	for dx := range lb.NewW {
		sx, a0, a1 := linearTap(dx, lb.SrcW, lb.NewW)
		// Past the last column cv2 uses the edge pixel with full weight.
		if sx < 0 {
			sx, a0, a1 = 0, coefScale, 0
		}
		if sx >= lb.SrcW-1 {
			sx, a0, a1 = lb.SrcW-1, coefScale, 0
		}
		z.xtaps[dx] = xtap{o0: int32(3 * sx), o1: int32(3 * min(sx+1, lb.SrcW-1)), a0: a0, a1: a1}
	}

	z.yofs0 = make([]int32, lb.NewH)
	z.yofs1 = make([]int32, lb.NewH)
	z.beta = make([]int32, 2*lb.NewH)
	for dy := range lb.NewH {
		// Rows keep their weights and clamp their indices, as cv2 does.
		sy, b0, b1 := linearTap(dy, lb.SrcH, lb.NewH)
		z.yofs0[dy] = int32(min(max(sy, 0), lb.SrcH-1))
		z.yofs1[dy] = int32(min(max(sy+1, 0), lb.SrcH-1))
		z.beta[2*dy], z.beta[2*dy+1] = b0, b1
	}
	z.rows[0] = make([]int32, 3*lb.NewW)
	z.rows[1] = make([]int32, 3*lb.NewW)
	return z, nil
}

// xtap holds the byte offsets of the two source pixels of an output column
// and their fixed-point weights (sum about 2048).
type xtap struct{ o0, o1, a0, a1 int32 }

// linearTap returns cv2's INTER_LINEAR source index and fixed-point weights
// for output index d: half-pixel centres computed in double, cast to float,
// weights rounded half-to-even after scaling by 2048.
func linearTap(d, src, dst int) (s int, w0, w1 int32) {
	scale := 1 / (float64(dst) / float64(src))
	f := float32((float64(d)+0.5)*scale - 0.5)
	s = int(math.Floor(float64(f)))
	f -= float32(s)
	c0 := (1 - f) * coefScale
	c1 := f * coefScale
	return s, int32(math.RoundToEven(float64(c0))), int32(math.RoundToEven(float64(c1)))
}

// Letterbox returns the geometry the Resizer was built for.
func (z *Resizer) Letterbox() Letterbox { return z.lb }

// Run letterboxes src (packed 24-bit, rows stride bytes apart) into dst,
// which receives 3 planes of DstW*DstH float32 in R, G, B order.
func (z *Resizer) Run(dst []float32, src []byte, stride int) error {
	lb := z.lb
	if stride < 3*lb.SrcW {
		return fmt.Errorf("letterbox source stride %d for width %d: %w", stride, lb.SrcW, ErrSize)
	}
	if need := (lb.SrcH-1)*stride + 3*lb.SrcW; len(src) < need {
		return fmt.Errorf("letterbox source of %d bytes, %dx%d stride %d needs %d: %w",
			len(src), lb.SrcW, lb.SrcH, stride, need, ErrShortBuffer)
	}
	plane := lb.DstW * lb.DstH
	if len(dst) < 3*plane {
		return fmt.Errorf("letterbox destination of %d floats, needs %d: %w", len(dst), 3*plane, ErrShortBuffer)
	}
	r, g, b := dst[:plane], dst[plane:2*plane], dst[2*plane:3*plane]
	if z.format == BGR24 {
		r, b = b, r
	}
	// r, g, b now receive source channels 0, 1, 2 respectively.
	z.fillPad(r)
	z.fillPad(g)
	z.fillPad(b)
	z.rowSrc = [2]int{-1, -1} // src may hold a new frame
	if lb.NewW == lb.SrcW && lb.NewH == lb.SrcH {
		z.copyRows(r, g, b, src, stride) // ultralytics skips cv2.resize here
		return nil
	}
	for dy := range lb.NewH {
		y0, y1 := int(z.yofs0[dy]), int(z.yofs1[dy])
		s0 := z.hrow(src, stride, y0, y1)
		s1 := z.hrow(src, stride, y1, y0)
		z.vrow(r, g, b, (lb.Top+dy)*lb.DstW+lb.Left, s0, s1, z.beta[2*dy], z.beta[2*dy+1])
	}
	return nil
}

// hrow returns the horizontally resized source row y, computing it into the
// buffer that does not hold row keep.
func (z *Resizer) hrow(src []byte, stride, y, keep int) []int32 {
	if z.rowSrc[0] == y {
		return z.rows[0]
	}
	if z.rowSrc[1] == y {
		return z.rows[1]
	}
	v := 0
	if z.rowSrc[0] == keep {
		v = 1
	}
	out := z.rows[v][:3*len(z.xtaps)]
	row := src[y*stride : y*stride+3*z.lb.SrcW]
	for dx, t := range z.xtaps {
		p := row[t.o0 : t.o0+3 : t.o0+3]
		q := row[t.o1 : t.o1+3 : t.o1+3]
		d := out[3*dx : 3*dx+3 : 3*dx+3]
		d[0] = int32(p[0])*t.a0 + int32(q[0])*t.a1
		d[1] = int32(p[1])*t.a0 + int32(q[1])*t.a1
		d[2] = int32(p[2])*t.a0 + int32(q[2])*t.a1
	}
	z.rowSrc[v] = y
	return out
}

// vrow blends two resized rows into one output row of each plane. The
// rounding copies OpenCV's SIMD path (VResizeLinearVec_32s8u): 16-bit
// multiply-high of the rows shifted right by 4, then a rounding shift by 2.
func (z *Resizer) vrow(r, g, b []float32, at int, s0, s1 []int32, b0, b1 int32) {
	n := len(z.xtaps)
	r, g, b = r[at:at+n], g[at:at+n], b[at:at+n]
	s0, s1 = s0[:3*n], s1[:3*n]
	lut := &z.lut
	for dx := range n {
		u := s0[3*dx : 3*dx+3 : 3*dx+3]
		w := s1[3*dx : 3*dx+3 : 3*dx+3]
		r[dx] = lut[blend(u[0], w[0], b0, b1)]
		g[dx] = lut[blend(u[1], w[1], b0, b1)]
		b[dx] = lut[blend(u[2], w[2], b0, b1)]
	}
}

func blend(s0, s1, b0, b1 int32) uint8 {
	v := ((s0>>4)*b0)>>16 + ((s1>>4)*b1)>>16
	v = (v + 2) >> 2
	return uint8(min(max(v, 0), 255))
}

func (z *Resizer) copyRows(r, g, b []float32, src []byte, stride int) {
	lb := z.lb
	for y := range lb.SrcH {
		row := src[y*stride : y*stride+3*lb.SrcW]
		at := (lb.Top+y)*lb.DstW + lb.Left
		rr, gg, bb := r[at:at+lb.SrcW], g[at:at+lb.SrcW], b[at:at+lb.SrcW]
		for x := range rr {
			rr[x] = z.lut[row[3*x]]
			gg[x] = z.lut[row[3*x+1]]
			bb[x] = z.lut[row[3*x+2]]
		}
	}
}

// fillPad writes the border grey around the resized area of one plane.
func (z *Resizer) fillPad(p []float32) {
	lb := z.lb
	v := z.lut[PadValue]
	fill(p[:lb.Top*lb.DstW], v)
	fill(p[(lb.Top+lb.NewH)*lb.DstW:], v)
	right := lb.DstW - lb.Left - lb.NewW
	for y := lb.Top; y < lb.Top+lb.NewH; y++ {
		row := p[y*lb.DstW : (y+1)*lb.DstW]
		fill(row[:lb.Left], v)
		fill(row[lb.DstW-right:], v)
	}
}

func fill(p []float32, v float32) {
	for i := range p {
		p[i] = v
	}
}

// LetterboxImage letterboxes one frame into dst (CHW RGB float32) with a
// throwaway Resizer. Use NewResizer for repeated frames of one geometry.
func LetterboxImage(dst []float32, src []byte, stride int, lb Letterbox, format PixelFormat) error {
	z, err := NewResizer(lb, format)
	if err != nil {
		return err
	}
	return z.Run(dst, src, stride)
}
