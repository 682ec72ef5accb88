package onnx

import (
	"math"
	"testing"
)

// TestFloatToHalf checks the conversion against HalfToFloat over every
// half value: each converts back to itself, and each midpoint between two
// neighbours rounds to the one with an even mantissa, as IEEE 754 and
// torch's .half() do.
func TestFloatToHalf(t *testing.T) {
	for h := range 1 << 16 {
		h := uint16(h)
		f := HalfToFloat(h)
		if f != f {
			if g := FloatToHalf(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x converts to %#04x, not a NaN", h, g)
			}
			continue
		}
		if g := FloatToHalf(f); g != h {
			t.Fatalf("half %#04x = %v converts back to %#04x", h, f, g)
		}
		if h&0x7fff >= 0x7bff { // the largest finite and the infinities
			continue
		}
		next := HalfToFloat(h + 1)
		mid := float32((float64(f) + float64(next)) / 2)
		want := h
		if h&1 == 1 {
			want = h + 1
		}
		if g := FloatToHalf(mid); g != want {
			t.Fatalf("midpoint %v of %#04x and %#04x converts to %#04x, want %#04x", mid, h, h+1, g, want)
		}
		if g := FloatToHalf(math.Nextafter32(mid, next)); g != h+1 {
			t.Fatalf("just above the midpoint of %#04x and %#04x: %#04x", h, h+1, g)
		}
	}
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{65520, 0x7c00}, // halfway past the largest finite half rounds to infinity
		{1e10, 0x7c00}, {-1e10, 0xfc00},
		{float32(math.Inf(1)), 0x7c00},
		{1e-10, 0}, {-1e-10, 0x8000},
		{float32(math.Pow(2, -25)), 0},        // a tie with zero: even
		{float32(math.Pow(2, -25)) * 1.01, 1}, // above it: the smallest subnormal
	} {
		if g := FloatToHalf(tc.f); g != tc.want {
			t.Errorf("FloatToHalf(%v) = %#04x, want %#04x", tc.f, g, tc.want)
		}
	}
}
