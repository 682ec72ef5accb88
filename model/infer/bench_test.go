package infer

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkRun measures Run alone (the input is filled once) on a small
// conv model at 128x128, per batch size, and reports milliseconds per image.
func BenchmarkRun(b *testing.B) {
	m := newTestModel(dynamicBatch, 128, 128, 16)
	s := openTest(b, m.bytes(), "bench.onnx", Options{MaxBatch: 8})
	ctx := context.Background()
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			in, err := s.Input(batch)
			if err != nil {
				b.Fatal(err)
			}
			seed := lcg(1)
			seed.fill(in)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Run(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			ms := float64(b.Elapsed().Microseconds()) / 1000
			b.ReportMetric(ms/float64(b.N*batch), "ms/img")
		})
	}
}
