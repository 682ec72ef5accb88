package decode

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vidpipe/vidpipe/model/detect"
)

// TestBGRResizerIsDetectResizer checks the C kernel against the Go
// reference byte for byte: downscales, upscales, odd sizes, padded rows.
func TestBGRResizerIsDetectResizer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][2]int{{768, 576}, {1920, 1080}, {1280, 720}, {321, 239}, {320, 240}, {97, 61}, {61, 97}, {1080, 1920}, {7, 640}, {2000, 33}, {640, 480}} {
		t.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(t *testing.T) {
			w, h := s[0], s[1]
			stride := 3*w + 13
			src := make([]byte, (h-1)*stride+3*w)
			for i := range src {
				src[i] = byte(rng.IntN(256))
			}
			lb, err := detect.Plan(w, h, 640, 640)
			if err != nil {
				t.Fatal(err)
			}
			z, err := detect.NewResizer(lb, detect.BGR24)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 640*640*3)
			if err := z.RunPacked(want, src, stride); err != nil {
				t.Fatal(err)
			}
			r, err := newBGRResizer(lb)
			if err != nil {
				t.Fatal(err)
			}
			got := bytes.Repeat([]byte{detect.PadValue}, len(want))
			if err := r.run(got, src, stride); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				n := 0
				for i := range got {
					if got[i] != want[i] {
						n++
					}
				}
				t.Fatalf("%d of %d bytes differ from detect.Resizer", n, len(got))
			}
		})
	}
}

// BenchmarkBGRResize is the exact preprocessing's resize on the 768x576
// sample size, C kernel against the Go reference.
func BenchmarkBGRResize(b *testing.B) {
	lb, _ := detect.Plan(768, 576, 640, 640)
	src := make([]byte, 768*576*3)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, 640*640*3)
	b.Run("c", func(b *testing.B) {
		r, _ := newBGRResizer(lb)
		for b.Loop() {
			if err := r.run(dst, src, 768*3); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		z, _ := detect.NewResizer(lb, detect.BGR24)
		for b.Loop() {
			if err := z.RunPacked(dst, src, 768*3); err != nil {
				b.Fatal(err)
			}
		}
	})
}
