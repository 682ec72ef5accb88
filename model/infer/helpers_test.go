package infer

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// The test model: images [N,3,H,W] →
//
//	output0 = Relu(Conv(images, W[cout,3,3,3], B[cout], pads 1)) [N,cout,H,W]
//	output1 = GlobalAveragePool(images)                           [N,3,1,1]
//
// with weights from a fixed pseudo-random sequence, so that Go can compute
// the expected outputs by hand.
type testModel struct {
	batch      onnx.Dim
	h, w, cout int
	weights    []float32
	bias       []float32
}

func newTestModel(batch onnx.Dim, h, w, cout int) *testModel {
	r := lcg(1)
	m := &testModel{batch: batch, h: h, w: w, cout: cout}
	m.weights = r.floats(cout * 3 * 3 * 3)
	m.bias = r.floats(cout)
	return m
}

// dynamicBatch is a symbolic batch dimension, as torch.onnx.export writes it.
var dynamicBatch = onnx.Dim{Param: "batch"}

func (m *testModel) model() *onnx.Model {
	n, h, w := m.batch, onnx.Dim{Value: int64(m.h)}, onnx.Dim{Value: int64(m.w)}
	g := &onnx.Graph{
		Name: "test",
		Nodes: []*onnx.Node{
			{Name: "conv", OpType: "Conv", Inputs: []string{"images", "W", "B"}, Outputs: []string{"conv"},
				Attrs: []*onnx.Attribute{onnx.Ints("kernel_shape", 3, 3), onnx.Ints("pads", 1, 1, 1, 1)}},
			{Name: "relu", OpType: "Relu", Inputs: []string{"conv"}, Outputs: []string{"output0"}},
			{Name: "gap", OpType: "GlobalAveragePool", Inputs: []string{"images"}, Outputs: []string{"output1"}},
		},
		Initializers: []*onnx.Tensor{
			onnx.NewFloat("W", []int64{int64(m.cout), 3, 3, 3}, m.weights),
			onnx.NewFloat("B", []int64{int64(m.cout)}, m.bias),
		},
		Inputs: []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float, n, onnx.Dim{Value: 3}, h, w)},
		Outputs: []*onnx.ValueInfo{
			onnx.TensorValue("output0", onnx.Float, n, onnx.Dim{Value: int64(m.cout)}, h, w),
			onnx.TensorValue("output1", onnx.Float, n, onnx.Dim{Value: 3}, onnx.Dim{Value: 1}, onnx.Dim{Value: 1}),
		},
	}
	return &onnx.Model{IRVersion: 8, OpsetImports: []onnx.OpsetID{{Version: 17}}, ProducerName: "vidpipe-test", Graph: g}
}

func (m *testModel) bytes() []byte { return onnx.Encode(m.model()) }

// want computes output0 and output1 for a batch of images laid out NCHW.
func (m *testModel) want(images []float32, batch int) (out0, out1 []float32) {
	h, w := m.h, m.w
	out0 = make([]float32, batch*m.cout*h*w)
	out1 = make([]float32, batch*3)
	for n := range batch {
		img := images[n*3*h*w : (n+1)*3*h*w]
		for o := range m.cout {
			for y := range h {
				for x := range w {
					sum := float64(m.bias[o])
					for c := range 3 {
						for ky := range 3 {
							for kx := range 3 {
								iy, ix := y+ky-1, x+kx-1
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								sum += float64(m.weights[((o*3+c)*3+ky)*3+kx]) * float64(img[(c*h+iy)*w+ix])
							}
						}
					}
					out0[((n*m.cout+o)*h+y)*w+x] = float32(max(sum, 0))
				}
			}
		}
		for c := range 3 {
			var sum float64
			for _, v := range img[c*h*w : (c+1)*h*w] {
				sum += float64(v)
			}
			out1[n*3+c] = float32(sum / float64(h*w))
		}
	}
	return out0, out1
}

// lcg is a tiny deterministic generator of test values in [-1, 1).
type lcg uint64

func (r *lcg) float() float32 {
	*r = *r*6364136223846793005 + 1442695040888963407
	return float32(uint32(*r>>33))/float32(1<<31)*2 - 1
}

func (r *lcg) floats(n int) []float32 {
	v := make([]float32, n)
	r.fill(v)
	return v
}

func (r *lcg) fill(v []float32) {
	for i := range v {
		v[i] = r.float()
	}
}

// openTest opens model bytes, failing the test (with the setup hint that the
// error carries when the library is missing) on error, and closes it at the end.
func openTest(t testing.TB, model []byte, name string, opts Options) *Session {
	t.Helper()
	s, err := Open(context.Background(), model, name, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// writeModel writes b to a file called name in a fresh temporary directory.
func writeModel(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertClose fails unless got and want have the same length and agree to tol.
func assertClose(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("%s: [%d] = %g, want %g (|diff| %g > %g)", what, at, got[at], want[at], worst, tol)
	}
}
