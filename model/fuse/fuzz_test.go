package fuse

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// FuzzModel feeds arbitrary bytes through Decode and Model: Model must not
// panic, must leave the graph untouched when it fails, and must produce a
// model that decodes again when it succeeds.
func FuzzModel(f *testing.F) {
	// The small fixtures only: mutating the whole-network ones is slow.
	paths, _ := filepath.Glob(filepath.Join("testdata", "rep_*.onnx"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, build := range []func(b *builder) *onnx.Model{
		func(b *builder) *onnx.Model {
			return b.model(b.node("Sum", []string{b.conv3("x"), "x", b.bn(b.conv("x", 8, convOpts{k: 1}), 8)}))
		},
		func(b *builder) *onnx.Model {
			s := b.constant([]int64{8, 1, 1}, ones(8))
			return b.model(b.add(b.add(b.conv3("x"), b.node("Mul", []string{"x", s})), b.init("bias", 1, 1, 8, 1, 1)))
		},
	} {
		f.Add(onnx.Encode(build(newBuilder(8, 6))))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.Decode(data)
		if err != nil || m.Graph == nil {
			return
		}
		before := onnx.Encode(m)
		if _, err := Model(m); err != nil {
			if !bytes.Equal(onnx.Encode(m), before) {
				t.Fatalf("Model failed (%v) but changed the graph", err)
			}
			return
		}
		if _, err := onnx.Decode(onnx.Encode(m)); err != nil {
			t.Fatalf("fused model does not decode: %v", err)
		}
	})
}

// BenchmarkFuse fuses the largest fixture, the whole RepYOLOv5s training
// form when it is there.
func BenchmarkFuse(b *testing.B) {
	path := filepath.Join("testdata", "torch_repyolo_small_train.onnx")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("testdata", "rep_chain.onnx")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fusing %s", path)
	b.SetBytes(int64(len(raw)))
	nodes, runs := 0, 0
	for b.Loop() {
		runs++
		b.StopTimer()
		m, err := onnx.Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := Model(m)
		if err != nil {
			b.Fatal(err)
		}
		nodes = rep.NodesBefore
	}
	b.ReportMetric(float64(nodes)*float64(runs)/b.Elapsed().Seconds(), "nodes/s")
}
