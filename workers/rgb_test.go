package workers

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// jpegSample is a 640x640 picture with texture, JPEG-encoded at quality 90
// as ingest does, with the given chroma subsampling.
func jpegSample(tb testing.TB, gray bool) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, 640, 640))
		for i := range g.Pix {
			g.Pix[i] = byte(i/5%256) ^ byte(rng.IntN(16))
		}
		img = g
	} else {
		m := image.NewRGBA(image.Rect(0, 0, 640, 640))
		for i := range m.Pix {
			m.Pix[i] = byte(i/7%256) ^ byte(rng.IntN(16))
		}
		img = m
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestToRGBMatchesAt checks the YCbCr fast path against image.At, byte for
// byte, and the generic path on a grey picture.
func TestToRGBMatchesAt(t *testing.T) {
	for _, gray := range []bool{false, true} {
		img, err := jpeg.Decode(bytes.NewReader(jpegSample(t, gray)))
		if err != nil {
			t.Fatal(err)
		}
		if _, ycc := img.(*image.YCbCr); ycc == gray {
			t.Fatalf("gray %v decoded as %T", gray, img)
		}
		got := make([]byte, 640*640*3)
		toRGB(got, img)
		i := 0
		for y := 0; y < 640; y++ {
			for x := 0; x < 640; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				want := color.RGBA{byte(r >> 8), byte(g >> 8), byte(b >> 8), 0}
				if have := (color.RGBA{got[i], got[i+1], got[i+2], 0}); have != want {
					t.Fatalf("gray %v pixel %d,%d: %v, want %v", gray, x, y, have, want)
				}
				i += 3
			}
		}
	}
}

// BenchmarkDecodeJPEG is what a worker pays per 640 frame sent with
// --frame-codec jpeg.
func BenchmarkDecodeJPEG(b *testing.B) {
	data := jpegSample(b, false)
	w := &Worker{size: 640}
	for b.Loop() {
		if _, err := w.decodeJPEG(data); err != nil {
			b.Fatal(err)
		}
	}
}
