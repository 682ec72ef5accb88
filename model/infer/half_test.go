package infer

import (
	"context"
	"errors"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// halfModel takes FLOAT16 images and gives output0 = Relu(float(images))
// as FLOAT and output1 = images as FLOAT16: both directions of the
// conversion at the session boundary.
func halfModel(batch onnx.Dim, size int64) []byte {
	c3, d4 := onnx.Dim{Value: 3}, onnx.Dim{Value: size}
	g := &onnx.Graph{
		Name: "half",
		Nodes: []*onnx.Node{
			{Name: "cast", OpType: "Cast", Inputs: []string{"images"}, Outputs: []string{"x"}, Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float))}},
			{Name: "relu", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"output0"}},
			{Name: "id", OpType: "Identity", Inputs: []string{"images"}, Outputs: []string{"output1"}},
		},
		Inputs: []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float16, batch, c3, d4, d4)},
		Outputs: []*onnx.ValueInfo{
			onnx.TensorValue("output0", onnx.Float, batch, c3, d4, d4),
			onnx.TensorValue("output1", onnx.Float16, batch, c3, d4, d4),
		},
	}
	return onnx.Encode(&onnx.Model{IRVersion: 8, OpsetImports: []onnx.OpsetID{{Version: 17}}, ProducerName: "vidpipe-test", Graph: g})
}

func TestFloat16Boundary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch onnx.Dim
		max   int
	}{{"dynamic batch", dynamicBatch, 3}, {"fixed batch padded", onnx.Dim{Value: 4}, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, halfModel(tc.batch, 4), "half.onnx", Options{Threads: 1, MaxBatch: tc.max})
			r := lcg(3)
			for _, b := range []int{1, 3, 2} {
				in, err := s.Input(b)
				if err != nil {
					t.Fatal(err)
				}
				r.fill(in)
				for i := range in {
					in[i] *= 100 // beyond half's 11 bits of precision
				}
				want0, want1 := make([]float32, len(in)), make([]float32, len(in))
				for i, v := range in {
					want1[i] = onnx.HalfToFloat(onnx.FloatToHalf(v))
					want0[i] = max(want1[i], 0)
				}
				outs, err := s.Run(context.Background(), b)
				if err != nil {
					t.Fatal(err)
				}
				assertClose(t, "output0", outs[0].Data, want0, 0)
				assertClose(t, "output1", outs[1].Data, want1, 0)
				if outs[1].Shape[0] != int64(b) {
					t.Errorf("output1 shape %v for batch %d", outs[1].Shape, b)
				}
			}
		})
	}
}

// TestImgSize opens a dynamic export (symbolic batch, height and width, as
// torch.onnx.export writes them with dynamic_axes) at Options.ImgSize: the
// probe run learns the output shapes at that size.
func TestImgSize(t *testing.T) {
	m := newTestModel(dynamicBatch, 8, 8, 4)
	om := m.model()
	h, w := onnx.Dim{Param: "height"}, onnx.Dim{Param: "width"}
	om.Graph.Inputs[0] = onnx.TensorValue("images", onnx.Float, dynamicBatch, onnx.Dim{Value: 3}, h, w)
	om.Graph.Outputs[0] = onnx.TensorValue("output0", onnx.Float, dynamicBatch, onnx.Dim{Value: 4}, h, w)
	b := onnx.Encode(om)
	s := openTest(t, b, "dynamic.onnx", Options{Threads: 1, MaxBatch: 2, ImgSize: 8})
	if ih, iw := s.InputSize(); ih != 8 || iw != 8 {
		t.Fatalf("input %dx%d, want 8x8", iw, ih)
	}
	if d := s.OutputDims(); len(d) != 2 || len(d[0]) != 3 || d[0][0] != 4 || d[0][1] != 8 || d[0][2] != 8 {
		t.Fatalf("output dims %v, want [4 8 8] first", d)
	}
	runAndCheck(t, s, m, 2, lcg(7))
	if _, err := Open(context.Background(), b, "dynamic.onnx", Options{ImgSize: -1}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("negative ImgSize: %v", err)
	}
}

// BenchmarkFloat16Boundary runs the FLOAT16 model on one 640x640 image:
// what its Casts at the boundary cost (two conversions of the image, a
// Relu and an Identity), against the same in Go: 18 ms.
func BenchmarkFloat16Boundary(b *testing.B) {
	s := openTest(b, halfModel(dynamicBatch, 640), "half.onnx", Options{Threads: 1})
	in, err := s.Input(1)
	if err != nil {
		b.Fatal(err)
	}
	r := lcg(1)
	r.fill(in)
	for b.Loop() {
		if _, err := s.Run(context.Background(), 1); err != nil {
			b.Fatal(err)
		}
	}
}
