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

// Resizer letterboxes packed 24-bit frames the way cv2.resize(INTER_LINEAR)
// + copyMakeBorder(114) does, bit for bit (checked against OpenCV 4.6 on
// x86), into packed 8-bit RGB (RunPacked): the levels Planar turns into
// what YOLOv5 feeds the model. It precomputes the
// interpolation tables of one Letterbox so that neither allocates. A
// Resizer is not safe for concurrent use.
type Resizer struct {
	lb     Letterbox
	format PixelFormat

	xtaps        []xtap  // per output column
	yofs0, yofs1 []int32 // the two source rows per output row, clamped
	beta         []int32 // vertical weights, two per output row

	// rows hold horizontally resized source rows: 3*NewW channel values in
	// RGB order, already shifted right by 4, two values per word.
	rows   [2][]uint64
	rowSrc [2]int   // which source row each buffer holds, -1 when none
	pad    []byte   // one letterbox row of PadValue
	lanes  []uint64 // one source row, a pixel's channels per word (see hpass)
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
		z.xtaps[dx] = xtap{o0: int32(sx), o1: int32(min(sx+1, lb.SrcW-1)), a0: a0, a1: a1}
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
	words := (3*lb.NewW + 1) / 2
	z.rows[0] = make([]uint64, words)
	z.rows[1] = make([]uint64, words)
	z.lanes = make([]uint64, lb.SrcW)
	z.pad = make([]byte, 3*lb.DstW)
	for i := range z.pad {
		z.pad[i] = PadValue
	}
	return z, nil
}

// xtap holds the two source columns of an output column and their
// fixed-point weights (non-negative, sum about 2048).
type xtap struct{ o0, o1, a0, a1 int32 }

// The horizontal pass works on a pixel's three channels at once, each in a
// 21-bit lane of a uint64: a weighted sum of two taps is at most
// 255*2049 < 1<<21, so one multiply-add per tap never carries between lanes.
// The vertical pass works on two channel values at once, in 32-bit lanes:
// a value shifted right by 4 is below 1<<17 and a weight at most 2048, so a
// product stays below 1<<29.
const (
	laneBits = 21
	laneMask = 1<<laneBits - 1
	pairMask = 0xFFFFFFFF
)

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

// Tap is one output column's or row's two source indices, clamped to the
// image, and their 11-bit fixed-point weights (non-negative).
type Tap struct{ I0, I1, W0, W1 int32 }

// Taps returns the interpolation tables, per output column and per output
// row, for a kernel elsewhere (vectorising C, say) that repeats Run's
// arithmetic: per channel h = (p*W0 + q*W1) >> 4 across, then
// ((h0*W0)>>16 + (h1*W1)>>16 + 2) >> 2 down.
func (z *Resizer) Taps() (cols, rows []Tap) {
	cols = make([]Tap, len(z.xtaps))
	for i, t := range z.xtaps {
		cols[i] = Tap{t.o0, t.o1, t.a0, t.a1}
	}
	rows = make([]Tap, len(z.yofs0))
	for i := range rows {
		rows[i] = Tap{z.yofs0[i], z.yofs1[i], z.beta[2*i], z.beta[2*i+1]}
	}
	return cols, rows
}

// Letterbox returns the geometry the Resizer was built for.
func (z *Resizer) Letterbox() Letterbox { return z.lb }

// resizeRow writes output row dy of the resized picture, RGB, into d.
func (z *Resizer) resizeRow(d []byte, src []byte, stride, dy int) {
	lb := z.lb
	if lb.NewW == lb.SrcW && lb.NewH == lb.SrcH {
		// Ultralytics skips cv2.resize when the size already fits.
		s := src[dy*stride : dy*stride+3*lb.SrcW]
		if z.format == RGB24 {
			copy(d, s)
			return
		}
		for x := 0; x < len(d); x += 3 {
			p, q := s[x:x+3:x+3], d[x:x+3:x+3]
			q[0], q[1], q[2] = p[2], p[1], p[0]
		}
		return
	}
	y0, y1 := int(z.yofs0[dy]), int(z.yofs1[dy])
	s0 := z.hrow(src, stride, y0, y1)
	s1 := z.hrow(src, stride, y1, y0)
	vrow(d, s0, s1, z.beta[2*dy], z.beta[2*dy+1])
}

// hrow returns the horizontally resized source row y, computing it into the
// buffer that does not hold row keep.
func (z *Resizer) hrow(src []byte, stride, y, keep int) []uint64 {
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
	row := src[y*stride : y*stride+3*z.lb.SrcW]
	lanes := z.lanes
	if z.format == BGR24 {
		for x := range lanes {
			p := row[3*x : 3*x+3 : 3*x+3]
			lanes[x] = uint64(p[2]) | uint64(p[1])<<laneBits | uint64(p[0])<<(2*laneBits)
		}
	} else {
		for x := range lanes {
			p := row[3*x : 3*x+3 : 3*x+3]
			lanes[x] = uint64(p[0]) | uint64(p[1])<<laneBits | uint64(p[2])<<(2*laneBits)
		}
	}
	hpass(z.rows[v], lanes, z.xtaps)
	z.rowSrc[v] = y
	return z.rows[v]
}

// hpass resizes one source row, its pixels as lanes, into out (see
// Resizer.rows).
func hpass(out, lanes []uint64, taps []xtap) {
	n := len(taps) &^ 1
	for dx := 0; dx < n; dx += 2 {
		t, u := taps[dx], taps[dx+1]
		a := lanes[t.o0]*uint64(t.a0) + lanes[t.o1]*uint64(t.a1)
		b := lanes[u.o0]*uint64(u.a0) + lanes[u.o1]*uint64(u.a1)
		// Pixels dx and dx+1 are channel values 3dx..3dx+5: three words.
		w := out[3*dx/2 : 3*dx/2+3 : 3*dx/2+3]
		w[0] = a&laneMask>>4 | (a>>laneBits&laneMask>>4)<<32
		w[1] = a>>(2*laneBits)>>4 | (b&laneMask>>4)<<32
		w[2] = b>>laneBits&laneMask>>4 | (b>>(2*laneBits)>>4)<<32
	}
	if n < len(taps) {
		t := taps[n]
		a := lanes[t.o0]*uint64(t.a0) + lanes[t.o1]*uint64(t.a1)
		w := out[3*n/2 : 3*n/2+2 : 3*n/2+2]
		w[0] = a&laneMask>>4 | (a>>laneBits&laneMask>>4)<<32
		w[1] = a >> (2 * laneBits) >> 4
	}
}

// vrow blends two resized rows into one output row, len(d) channel values.
// The rounding copies OpenCV's SIMD path (VResizeLinearVec_32s8u): 16-bit
// multiply-high of the rows shifted right by 4, then a rounding shift by 2.
// Two values go through each 64-bit step; the masks drop what the shifts
// move across the lane boundary.
func vrow(d []byte, s0, s1 []uint64, b0, b1 int32) {
	const (
		hi16 = 0xFFFF | 0xFFFF<<32
		lo8  = 0xFF | 0xFF<<32
		two  = 2 | 2<<32
	)
	n := len(d) / 2
	s0, s1 = s0[:n], s1[:n]
	w0, w1 := uint64(b0), uint64(b1)
	for k := range n {
		v := (s0[k]*w0)>>16&hi16 + (s1[k]*w1)>>16&hi16
		v = (v + two) >> 2 & lo8
		q := d[2*k : 2*k+2 : 2*k+2]
		q[0], q[1] = byte(v), byte(v>>32)
	}
	if len(d)%2 == 1 {
		k := len(d) / 2
		v := ((s0[:k+1][k]&pairMask*w0)>>16 + (s1[:k+1][k]&pairMask*w1)>>16 + 2) >> 2
		d[len(d)-1] = byte(min(v, 255))
	}
}

// RunPacked letterboxes src (packed 24-bit, rows stride bytes apart) into
// packed 8-bit RGB: DstH rows of 3*DstW bytes, R first whatever the source
// order. These are the uint8 pixels cv2.resize returns, before YOLOv5
// divides them by 255 (Planar).
func (z *Resizer) RunPacked(dst []byte, src []byte, stride int) error {
	lb := z.lb
	if err := z.checkSource(src, stride); err != nil {
		return err
	}
	row := 3 * lb.DstW
	if len(dst) < row*lb.DstH {
		return fmt.Errorf("letterbox destination of %d bytes, needs %d: %w", len(dst), row*lb.DstH, ErrShortBuffer)
	}
	for y := range lb.DstH {
		d := dst[y*row : (y+1)*row]
		if y < lb.Top || y >= lb.Top+lb.NewH {
			copy(d, z.pad)
			continue
		}
		copy(d[:3*lb.Left], z.pad)
		copy(d[3*(lb.Left+lb.NewW):], z.pad)
	}
	z.rowSrc = [2]int{-1, -1}
	for dy := range lb.NewH {
		z.resizeRow(dst[(lb.Top+dy)*row+3*lb.Left:][:3*lb.NewW], src, stride, dy)
	}
	return nil
}

func (z *Resizer) checkSource(src []byte, stride int) error {
	lb := z.lb
	if stride < 3*lb.SrcW {
		return fmt.Errorf("letterbox source stride %d for width %d: %w", stride, lb.SrcW, ErrSize)
	}
	if need := (lb.SrcH-1)*stride + 3*lb.SrcW; len(src) < need {
		return fmt.Errorf("letterbox source of %d bytes, %dx%d stride %d needs %d: %w",
			len(src), lb.SrcW, lb.SrcH, stride, need, ErrShortBuffer)
	}
	return nil
}
