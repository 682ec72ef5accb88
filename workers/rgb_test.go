package workers

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
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
	var scratch []byte
	for b.Loop() {
		if _, err := w.decodeJPEG(data, &scratch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBatch is a worker's CPU work before a model run: 8 frames
// at 640 decoded into the batch input, raw or JPEG, one at a time and as
// many at a time as there are cores.
func BenchmarkReadBatch(b *testing.B) {
	for _, tc := range []struct {
		codec   bus.Codec
		readers int
	}{{bus.Raw, 1}, {bus.Raw, runtime.GOMAXPROCS(0)}, {bus.JPEG, 1}, {bus.JPEG, runtime.GOMAXPROCS(0)}} {
		codec := tc.codec
		b.Run(fmt.Sprintf("%s/readers=%d", codec, tc.readers), func(b *testing.B) {
			_, js := bustest.Start(b, bus.DefaultStreamOptions())
			ctx := context.Background()
			const n, side = 8, 640
			rng := rand.New(rand.NewPCG(9, 9))
			for seq := range n {
				f := &bus.Frame{Job: "j", Video: "v", Seq: seq, Width: side, Height: side, Size: side, Gain: 1, Codec: codec}
				if codec == bus.JPEG {
					f.Pixels = jpegSample(b, false)
				} else {
					f.Pixels = make([]byte, side*side*3)
					for i := range f.Pixels {
						f.Pixels[i] = byte(rng.IntN(256))
					}
				}
				if _, err := js.Publish(ctx, bus.FrameSubject("j", "v"), bus.AppendFrame(nil, f)); err != nil {
					b.Fatal(err)
				}
			}
			cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
			if err != nil {
				b.Fatal(err)
			}
			batch, err := cons.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if len(msgs) != n {
				b.Fatalf("fetched %d frames", len(msgs))
			}
			w := &Worker{size: side, frames: make([]bus.Frame, n), scratch: make([][]byte, n), readers: tc.readers}
			input := make([]float32, n*3*side*side)
			for b.Loop() {
				for i, err := range w.readBatch(msgs, frameInput{f: input, per: 3 * side * side}) {
					if err != nil {
						b.Fatalf("frame %d: %v", i, err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/frame")
		})
	}
}
