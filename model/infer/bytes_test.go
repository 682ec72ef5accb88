package infer

import (
	"context"
	"errors"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// bytesModel takes UINT8 [N,h,w,3] and gives output0 = float(images), the
// same layout.
func bytesModel(in []onnx.Dim) []byte {
	out := append([]onnx.Dim{dynamicBatch}, in[1:]...)
	g := &onnx.Graph{
		Name:    "bytes",
		Nodes:   []*onnx.Node{{Name: "cast", OpType: "Cast", Inputs: []string{"images"}, Outputs: []string{"output0"}, Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float))}}},
		Inputs:  []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Uint8, in...)},
		Outputs: []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float, out...)},
	}
	return onnx.Encode(&onnx.Model{IRVersion: 8, OpsetImports: []onnx.OpsetID{{Version: 17}}, ProducerName: "vidpipe-test", Graph: g})
}

// TestBytesInput: a UINT8 [N,H,W,3] model is fed through InputBytes, at
// every batch size, and Input refuses it; a UINT8 input in any other
// layout is refused at Open.
func TestBytesInput(t *testing.T) {
	h, w := onnx.Dim{Value: 2}, onnx.Dim{Value: 5}
	s := openTest(t, bytesModel([]onnx.Dim{dynamicBatch, h, w, {Value: 3}}), "bytes.onnx", Options{Threads: 1, MaxBatch: 3})
	if ih, iw := s.InputSize(); ih != 2 || iw != 5 || !s.Bytes() {
		t.Fatalf("input %dx%d bytes=%v, want 5x2 bytes", iw, ih, s.Bytes())
	}
	if _, err := s.Input(1); !errors.Is(err, ErrBadInput) {
		t.Errorf("Input of a uint8 model: %v, want ErrBadInput", err)
	}
	for _, b := range []int{2, 1, 3} {
		in, err := s.InputBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(in) != b*2*5*3 {
			t.Fatalf("batch %d: %d bytes", b, len(in))
		}
		for i := range in {
			in[i] = byte(i*7 + b)
		}
		outs, err := s.Run(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range outs[0].Data {
			if v != float32(in[i]) {
				t.Fatalf("batch %d value %d: %g, want %d", b, i, v, in[i])
			}
		}
	}
	_, err := Open(context.Background(), bytesModel([]onnx.Dim{dynamicBatch, {Value: 3}, h, w}), "nchw-bytes.onnx", Options{})
	if !errors.Is(err, ErrBadInput) {
		t.Errorf("UINT8 [N,3,H,W]: %v, want ErrBadInput", err)
	}
	t.Log(err)
}
