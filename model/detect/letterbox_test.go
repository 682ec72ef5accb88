package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name                   string
		srcW, srcH, dstW, dstH int
		gain                   float64
		newW, newH, top, left  int
		bottom, right          int
		padX, padY             float64
	}{
		{"vtest 768x576", 768, 576, 640, 640, 640.0 / 768, 640, 480, 80, 0, 80, 0, 0, 80},
		{"1x1 upscales", 1, 1, 640, 640, 640, 640, 640, 0, 0, 0, 0, 0, 0},
		{"720p exact half", 1280, 720, 640, 640, 0.5, 640, 360, 140, 0, 140, 0, 0, 140},
		// 10000x10: the height rounds to 1 pixel, 639 pad rows, odd one at the bottom.
		{"very wide", 10000, 10, 640, 640, 0.064, 640, 1, 319, 0, 320, 0, 0, (640 - 10*0.064) / 2},
		// 3x4000: 0.48 px would round to 0; kept at 1 column.
		{"very tall", 3, 4000, 640, 640, 0.16, 1, 640, 0, 319, 0, 320, (640 - 3*0.16) / 2, 0},
		{"odd pad", 100, 77, 64, 64, 0.64, 64, 49, 7, 0, 8, 0, 0, (64 - 77*0.64) / 2},
		// 4x1 into 10x10: r = 2.5 and the height 2.5 rounds half to even, to 2.
		{"round half even", 4, 1, 10, 10, 2.5, 10, 2, 4, 0, 4, 0, 0, 3.75},
		// 4x3 into 10x10: height 7.5 rounds to 8.
		{"round half even up", 4, 3, 10, 10, 2.5, 10, 8, 1, 0, 1, 0, 0, 1.25},
		{"non-square input", 64, 48, 96, 64, 64.0 / 48, 85, 64, 0, 5, 0, 6, (96 - 64*(64.0/48)) / 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lb, err := Plan(tc.srcW, tc.srcH, tc.dstW, tc.dstH)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(lb.Gain-tc.gain) > 1e-12 || lb.NewW != tc.newW || lb.NewH != tc.newH ||
				lb.Top != tc.top || lb.Left != tc.left {
				t.Fatalf("got %+v, want gain %v new %dx%d top %d left %d", lb, tc.gain, tc.newW, tc.newH, tc.top, tc.left)
			}
			if b := lb.DstH - lb.Top - lb.NewH; b != tc.bottom {
				t.Errorf("bottom pad %d, want %d", b, tc.bottom)
			}
			if r := lb.DstW - lb.Left - lb.NewW; r != tc.right {
				t.Errorf("right pad %d, want %d", r, tc.right)
			}
			if math.Abs(lb.PadX-tc.padX) > 1e-9 || math.Abs(lb.PadY-tc.padY) > 1e-9 {
				t.Errorf("float pads %v,%v, want %v,%v", lb.PadX, lb.PadY, tc.padX, tc.padY)
			}
		})
	}
}

// TestPlanMatchesPython checks letterbox geometry against YOLOv5's letterbox() and
// scale-back formulas, evaluated with Python (round-half-even included).
func TestPlanMatchesPython(t *testing.T) {
	tests := []struct {
		w, h, size            int
		newW, newH, left, top int
		gain, padX, padY      float64
	}{
		{768, 576, 640, 640, 480, 0, 80, 0.8333333333333334, 0, 80},
		{576, 768, 640, 480, 640, 80, 0, 0.8333333333333334, 80, 0},
		{321, 239, 640, 640, 477, 0, 81, 1.9937694704049844, 0, 81.74454828660436},
		{1920, 1080, 640, 640, 360, 0, 140, 0.3333333333333333, 0, 140},
		{1080, 1920, 640, 360, 640, 140, 0, 0.3333333333333333, 140, 0},
		{100, 50, 640, 640, 320, 0, 160, 6.4, 0, 160},
		{333, 1000, 640, 213, 640, 213, 0, 0.64, 213.44, 0},
		{1280, 101, 640, 640, 50, 0, 295, 0.5, 0, 294.75}, // 50.5 rounds to even
		{1280, 103, 640, 640, 52, 0, 294, 0.5, 0, 294.25}, // 51.5 rounds to even
		{720, 528, 640, 640, 469, 0, 85, 0.8888888888888888, 0, 85.33333333333334},
		{640, 640, 640, 640, 640, 0, 0, 1, 0, 0},
		{1, 1, 640, 640, 640, 0, 0, 640, 0, 0},
		{7, 3, 5, 5, 2, 0, 1, 0.7142857142857143, 0, 1.4285714285714286},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d_%d", tt.w, tt.h, tt.size), func(t *testing.T) {
			p, err := Plan(tt.w, tt.h, tt.size, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			if p.NewW != tt.newW || p.NewH != tt.newH || p.Left != tt.left || p.Top != tt.top || p.Gain != tt.gain || p.PadX != tt.padX || p.PadY != tt.padY {
				t.Errorf("Plan = %+v, want new %dx%d left %d top %d gain %v pads %v,%v", p, tt.newW, tt.newH, tt.left, tt.top, tt.gain, tt.padX, tt.padY)
			}
		})
	}
}

func TestPlanRejectsBadSizes(t *testing.T) {
	for _, s := range [][4]int{{0, 10, 640, 640}, {10, -1, 640, 640}, {10, 10, 0, 640}, {10, 10, 640, -5}} {
		if _, err := Plan(s[0], s[1], s[2], s[3]); !errors.Is(err, ErrSize) {
			t.Errorf("Plan%v: err %v, want ErrSize", s, err)
		}
	}
}

func TestScaleBack(t *testing.T) {
	lb, err := Plan(768, 576, 640, 640) // gain 5/6, pad 0 x 80
	if err != nil {
		t.Fatal(err)
	}
	dets := []Detection{
		{Box: Box{100, 180, 200, 280}, Conf: 0.9, ClassID: 2},
		{Box: Box{-10, 50, 700, 700}, Conf: 0.5},
	}
	lb.ScaleBack(dets, 768, 576)
	want := []Box{{120, 120, 240, 240}, {0, 0, 768, 576}}
	for i, d := range dets {
		g, w := d.Box, want[i]
		if math.Abs(float64(g.X1-w.X1)) > 1e-3 || math.Abs(float64(g.Y1-w.Y1)) > 1e-3 ||
			math.Abs(float64(g.X2-w.X2)) > 1e-3 || math.Abs(float64(g.Y2-w.Y2)) > 1e-3 {
			t.Errorf("box %d: %v, want %v", i, g, w)
		}
	}
	if dets[0].Conf != 0.9 || dets[0].ClassID != 2 {
		t.Errorf("ScaleBack changed conf or class: %+v", dets[0])
	}
}

// testImage is a deterministic packed image with a gradient and noise.
func testImage(w, h, stride int) []byte {
	img := make([]byte, (h-1)*stride+3*w)
	s := uint32(12345)
	for y := range h {
		for x := range 3 * w {
			s = s*1664525 + 1013904223
			img[y*stride+x] = byte(x + 3*y + int(s>>28))
		}
	}
	return img
}

func TestResizerPadsAndOverwrites(t *testing.T) {
	lb, err := Plan(97, 61, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	z, err := NewResizer(lb, RGB24)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 3*64*64)
	for i := range dst {
		dst[i] = -1 // a reused batch slot holds the previous frame
	}
	if err := runFloat(z, dst, testImage(97, 61, 3*97), 3*97); err != nil {
		t.Fatal(err)
	}
	grey := float32(114) / 255
	for c := range 3 {
		for y := range 64 {
			for x := range 64 {
				v := dst[c*64*64+y*64+x]
				inside := y >= lb.Top && y < lb.Top+lb.NewH && x >= lb.Left && x < lb.Left+lb.NewW
				if !inside && v != grey {
					t.Fatalf("pad pixel c%d (%d,%d) = %v, want 114/255", c, x, y, v)
				}
				if v < 0 || v > 1 {
					t.Fatalf("pixel c%d (%d,%d) = %v outside [0, 1]", c, x, y, v)
				}
			}
		}
	}
}

func TestResizerConstantImageStaysConstant(t *testing.T) {
	for _, s := range [][2]int{{97, 61}, {33, 17}, {768, 576}, {1280, 720}} {
		lb, err := Plan(s[0], s[1], 64, 64)
		if err != nil {
			t.Fatal(err)
		}
		src := make([]byte, 3*s[0]*s[1])
		for i := range src {
			src[i] = []byte{7, 128, 250}[i%3]
		}
		dst := make([]float32, 3*64*64)
		if err := letterboxFloat(dst, src, 3*s[0], lb, RGB24); err != nil {
			t.Fatal(err)
		}
		at := lb.Top*64 + lb.Left
		for c, want := range []float32{7, 128, 250} {
			if got := dst[c*64*64+at] * 255; math.Abs(float64(got-want)) > 1e-3 {
				t.Errorf("%v: channel %d = %v, want %v", s, c, got, want)
			}
		}
	}
}

func TestResizerStrideAndFormat(t *testing.T) {
	const w, h = 50, 31
	lb, err := Plan(w, h, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	tight := testImage(w, h, 3*w)
	// Same pixels with 17 junk bytes after every row.
	stride := 3*w + 17
	padded := make([]byte, (h-1)*stride+3*w)
	for i := range padded {
		padded[i] = 0xEE
	}
	bgr := slices.Clone(tight)
	for y := range h {
		copy(padded[y*stride:], tight[y*3*w:(y+1)*3*w])
	}
	for i := 0; i < len(bgr); i += 3 {
		bgr[i], bgr[i+2] = bgr[i+2], bgr[i]
	}
	run := func(src []byte, stride int, f PixelFormat) []float32 {
		dst := make([]float32, 3*64*64)
		if err := letterboxFloat(dst, src, stride, lb, f); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	want := run(tight, 3*w, RGB24)
	if got := run(padded, stride, RGB24); !slices.Equal(got, want) {
		t.Error("row stride changed the output")
	}
	if got := run(bgr, 3*w, BGR24); !slices.Equal(got, want) {
		t.Error("BGR24 input does not give the RGB planes of the same image")
	}
}

// TestResizerErrors: the tables refuse a geometry or format they cannot
// serve; RunPacked's buffer errors are TestRunPackedErrors.
func TestResizerErrors(t *testing.T) {
	lb, _ := Plan(10, 10, 16, 16)
	if _, err := NewResizer(Letterbox{}, RGB24); !errors.Is(err, ErrSize) {
		t.Errorf("zero letterbox: %v, want ErrSize", err)
	}
	if _, err := NewResizer(lb, PixelFormat(9)); !errors.Is(err, ErrOption) {
		t.Errorf("bad format: %v, want ErrOption", err)
	}
}

// TestPlanarDividesAsTorch checks every level against YOLOv5's im /= 255:
// float32 division, not a multiplication by the reciprocal.
func TestPlanarDividesAsTorch(t *testing.T) {
	rgb := make([]byte, 3*256)
	for v := range 256 {
		rgb[3*v], rgb[3*v+1], rgb[3*v+2] = byte(v), byte(255-v), byte(v)
	}
	dst := make([]float32, len(rgb))
	Planar(dst, rgb)
	for v := range 256 {
		want := float32(v)
		want /= 255
		if dst[v] != want || dst[256+255-v] != want {
			t.Fatalf("level %d: %v and %v, want %v", v, dst[v], dst[256+255-v], want)
		}
	}
}

func TestPlanar(t *testing.T) {
	rgb := []byte{255, 0, 51, 0, 102, 255}
	dst := make([]float32, 6)
	Planar(dst, rgb)
	want := []float32{1, 0, 0, 0.4, 0.2, 1}
	for i := range want {
		if d := dst[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("Planar = %v, want %v", dst, want)
		}
	}
}

// runFloat is what the model sees of z's letterbox: RunPacked's levels as
// planar float32, each v/255, written over whatever dst held.
func runFloat(z *Resizer, dst []float32, src []byte, stride int) error {
	lb := z.Letterbox()
	if len(dst) < 3*lb.DstW*lb.DstH {
		return fmt.Errorf("letterbox destination of %d floats, needs %d: %w", len(dst), 3*lb.DstW*lb.DstH, ErrShortBuffer)
	}
	packed := make([]byte, 3*lb.DstW*lb.DstH)
	if err := z.RunPacked(packed, src, stride); err != nil {
		return err
	}
	Planar(dst, packed)
	return nil
}

// letterboxFloat is runFloat with a Resizer made for lb.
func letterboxFloat(dst []float32, src []byte, stride int, lb Letterbox, f PixelFormat) error {
	z, err := NewResizer(lb, f)
	if err != nil {
		return err
	}
	return runFloat(z, dst, src, stride)
}
