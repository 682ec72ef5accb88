package detect

import (
	"math"
	"math/rand/v2"
	"testing"
)

// benchPredictions makes a realistic output0 for one image: most rows are
// background with low obj, a few hundred sit on clustered objects.
func benchPredictions(rows, nc int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	cols := 5 + nc
	pred := make([]float32, rows*cols)
	type object struct {
		cx, cy, w, h float64
		cls          int
	}
	objs := make([]object, 25)
	for i := range objs {
		objs[i] = object{rng.Float64() * 640, rng.Float64() * 640, 10 + rng.Float64()*250, 10 + rng.Float64()*250, rng.IntN(nc)}
	}
	sig := func(x float64) float32 { return float32(1 / (1 + math.Exp(-x))) }
	for r := range rows {
		row := pred[r*cols : (r+1)*cols]
		for j := 5; j < cols; j++ {
			row[j] = sig(rng.NormFloat64() - 6)
		}
		if rng.IntN(50) == 0 { // ~2% of rows see an object
			o := objs[rng.IntN(len(objs))]
			row[0] = float32(o.cx + rng.NormFloat64()*0.05*o.w)
			row[1] = float32(o.cy + rng.NormFloat64()*0.05*o.h)
			row[2] = float32(o.w * (0.85 + 0.3*rng.Float64()))
			row[3] = float32(o.h * (0.85 + 0.3*rng.Float64()))
			row[4] = sig(rng.NormFloat64()*1.5 + 0.5)
			row[5+o.cls] = sig(rng.NormFloat64() + 2)
			continue
		}
		row[0], row[1] = float32(rng.Float64()*640), float32(rng.Float64()*640)
		row[2], row[3] = float32(4+rng.Float64()*200), float32(4+rng.Float64()*200)
		row[4] = sig(rng.NormFloat64()*1.5 - 6)
	}
	return pred
}

func BenchmarkNMS(b *testing.B) {
	pred := benchPredictions(25200, 80, 1)
	for _, tc := range []struct {
		name string
		opt  NMSOptions
	}{{"default", DefaultNMSOptions()}, {"eval_multilabel", EvalNMSOptions()}} {
		b.Run(tc.name, func(b *testing.B) {
			p, err := NewPostprocessor(tc.opt)
			if err != nil {
				b.Fatal(err)
			}
			var dets []Detection
			b.ReportAllocs()
			for b.Loop() {
				dets, _ = p.NMS(dets, pred, 25200, 85)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/img")
			b.ReportMetric(float64(len(dets)), "dets")
		})
	}
}

func BenchmarkLetterbox(b *testing.B) {
	for _, s := range [][2]int{{768, 576}, {1280, 720}, {1920, 1080}} {
		b.Run(itoa(s[0])+"x"+itoa(s[1])+"_to_640", func(b *testing.B) {
			lb, err := Plan(s[0], s[1], 640, 640)
			if err != nil {
				b.Fatal(err)
			}
			z, err := NewResizer(lb, BGR24)
			if err != nil {
				b.Fatal(err)
			}
			src := testImage(s[0], s[1], 3*s[0])
			dst := make([]byte, 3*640*640)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if err := z.RunPacked(dst, src, 3*s[0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
		})
	}
}

func BenchmarkDecodeHeads(b *testing.B) {
	levels, err := YOLOv5Levels(640, 640)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	heads := make([][]float32, len(levels))
	for i, l := range levels {
		heads[i] = make([]float32, 3*85*l.NY*l.NX)
		for j := range heads[i] {
			heads[i][j] = float32(rng.NormFloat64() * 3)
		}
	}
	var out []float32
	b.ReportAllocs()
	for b.Loop() {
		out, _ = DecodeHeads(out, heads, levels, 80, LayoutConv)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/img")
}

// BenchmarkPlanar is a worker's per-frame input preparation at 640.
func BenchmarkPlanar(b *testing.B) {
	rgb := make([]byte, 640*640*3)
	for i := range rgb {
		rgb[i] = byte(i)
	}
	dst := make([]float32, len(rgb))
	for b.Loop() {
		Planar(dst, rgb)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/img")
}
