package detect

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestRunPackedOverwritesEverything checks that a reused frame buffer ends
// up exactly as a fresh one, padding included, for downscales, upscales, the
// unscaled copy and both source orders.
func TestRunPackedOverwritesEverything(t *testing.T) {
	for _, s := range [][4]int{{97, 61, 64, 64}, {768, 576, 640, 640}, {320, 240, 640, 640}, {640, 480, 640, 640}, {33, 170, 96, 64}} {
		for _, f := range []PixelFormat{RGB24, BGR24} {
			t.Run(fmt.Sprintf("%dx%d_to_%dx%d_%d", s[0], s[1], s[2], s[3], f), func(t *testing.T) {
				lb, err := Plan(s[0], s[1], s[2], s[3])
				if err != nil {
					t.Fatal(err)
				}
				z, err := NewResizer(lb, f)
				if err != nil {
					t.Fatal(err)
				}
				stride := 3*s[0] + 5
				src := testImage(s[0], s[1], stride)
				fresh := make([]byte, 3*s[2]*s[3])
				if err := z.RunPacked(fresh, src, stride); err != nil {
					t.Fatal(err)
				}
				packed := make([]byte, 3*s[2]*s[3])
				for i := range packed {
					packed[i] = 0xEE // a reused frame buffer holds the previous frame
				}
				if err := z.RunPacked(packed, src, stride); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(packed, fresh) {
					t.Fatal("a reused buffer differs from a fresh one")
				}
			})
		}
	}
}

func TestRunPackedErrors(t *testing.T) {
	lb, _ := Plan(10, 10, 16, 16)
	z, err := NewResizer(lb, RGB24)
	if err != nil {
		t.Fatal(err)
	}
	src := make([]byte, 300)
	dst := make([]byte, 3*16*16)
	for _, tc := range []struct {
		name     string
		dst, src []byte
		stride   int
		want     error
	}{
		{"stride below row", dst, src, 29, ErrSize},
		{"short source", dst, src[:299], 30, ErrShortBuffer},
		{"short destination", dst[:3*16*16-1], src, 30, ErrShortBuffer},
	} {
		if err := z.RunPacked(tc.dst, tc.src, tc.stride); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestRunPackedDoesNotAllocate(t *testing.T) {
	lb, _ := Plan(768, 576, 640, 640)
	z, err := NewResizer(lb, BGR24)
	if err != nil {
		t.Fatal(err)
	}
	src := testImage(768, 576, 3*768)
	dst := make([]byte, 3*640*640)
	if n := testing.AllocsPerRun(3, func() {
		if err := z.RunPacked(dst, src, 3*768); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("RunPacked allocates %v times per call", n)
	}
}

// BenchmarkRunPacked is the exact preprocessing's resize on the 768x576
// sample size: BGR24 in, 640x640 packed RGB out.
func BenchmarkRunPacked(b *testing.B) {
	lb, _ := Plan(768, 576, 640, 640)
	z, err := NewResizer(lb, BGR24)
	if err != nil {
		b.Fatal(err)
	}
	src := testImage(768, 576, 3*768)
	dst := make([]byte, 3*640*640)
	for b.Loop() {
		if err := z.RunPacked(dst, src, 3*768); err != nil {
			b.Fatal(err)
		}
	}
}
