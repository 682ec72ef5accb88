package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
)

// BenchmarkModels is the go test form of `vidpipe model bench`: ms per
// image for each model, input size and batch. Compare the three models of a
// size with benchstat, or run `vidpipe model bench` for the interleaved
// ratios.
func BenchmarkModels(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{320, 640} {
		y, train, fused, err := Models(size, "all")
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range []int{1, 8} {
			images := make([]float32, batch*3*size*size)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range images {
				images[i] = rng.Float32()
			}
			for _, c := range []struct {
				name string
				m    *onnx.Model
			}{{"yolov5s", y}, {"rep-train", train}, {"rep-fused", fused}} {
				b.Run(fmt.Sprintf("%d/b%d/%s", size, batch, c.name), func(b *testing.B) {
					s, err := infer.Open(ctx, onnx.Encode(c.m), c.name, infer.Options{MaxBatch: batch})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					in, _ := s.Input(batch)
					copy(in, images)
					if _, err := s.Run(ctx, batch); err != nil { // warm up
						b.Fatal(err)
					}
					for b.Loop() {
						if _, err := s.Run(ctx, batch); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*batch), "ms/img")
				})
			}
		}
	}
}

// TestBenchRunSmall runs the whole comparison at a small size, so the
// command's plumbing (models, sessions, interleaving, ratios) is tested;
// the speed figures themselves come from `vidpipe model bench`.
func TestBenchRunSmall(t *testing.T) {
	res, err := Run(context.Background(), Options{Sizes: []int{128}, Batches: []int{1, 2}, Runs: 2, Warmup: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 || len(res.TrainOverFused) != 2 {
		t.Fatalf("result: %+v", res)
	}
	for _, r := range res.Rows {
		if r.Params <= 0 || r.GFLOPs <= 0 || len(r.Latency) != 2 || r.Latency[0].MedianMS <= 0 {
			t.Errorf("row %+v", r)
		}
	}
	if res.Rows[1].Params <= res.Rows[2].Params || res.Rows[0].Params != res.Rows[2].Params {
		t.Errorf("params: yolov5s %d, train %d, fused %d", res.Rows[0].Params, res.Rows[1].Params, res.Rows[2].Params)
	}
}
