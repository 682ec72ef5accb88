package workers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/media/jpeg"
)

// jpegFrame is a 640x640 picture with texture as ingest sends it with
// --frame-codec jpeg.
func jpegFrame(tb testing.TB) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	px := make([]byte, 3*640*640)
	for i := range px {
		px[i] = byte(i/7%256) ^ byte(rng.IntN(16))
	}
	enc, err := jpeg.NewEncoder(90)
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	b, err := enc.Encode(nil, px, 640, 640)
	if err != nil {
		tb.Fatal(err)
	}
	return b
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
					f.Pixels = jpegFrame(b)
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
			defer w.closeDecoders()
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
