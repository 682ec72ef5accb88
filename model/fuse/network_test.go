package fuse

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// TestRepYOLONetwork fuses the whole-network RepYOLOv5s fixtures (training
// form with BN nodes, and torch's folded export) and compares each with its
// unfused self under ONNX Runtime. All 17 3x3 convs are RepVGG blocks: 6
// stride-2 downsamplers and 11 Bottleneck convs with an identity branch.
func TestRepYOLONetwork(t *testing.T) {
	params := map[string]int64{}
	for _, form := range []string{"train", "folded"} {
		t.Run(form, func(t *testing.T) {
			path := filepath.Join("testdata", "torch_repyolo_small_"+form+".onnx")
			raw, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				t.Skipf("%s is not there yet (model/yolo/testdata/gen_reference.py writes it)", path)
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnx.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			pristine, err := onnx.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Model(m)
			if err != nil {
				t.Fatalf("Model: %v", err)
			}
			t.Log(rep)
			ops := countOps(m.Graph)
			if ops["BatchNormalization"] != 0 {
				t.Errorf("%d BatchNormalization nodes left", ops["BatchNormalization"])
			}
			blocks := map[string]int{}
			for _, f := range rep.Fusions {
				if f.Kind == KindRepVGG {
					blocks[blockShape(f.Branches)]++
				}
			}
			if blocks["3x3+1x1+identity"] != 11 || blocks["3x3+1x1"] != 6 || len(blocks) != 2 {
				t.Errorf("RepVGG blocks %v, want 11 with identity and 6 without", blocks)
			}
			if len(rep.Skipped) != 0 {
				t.Errorf("skipped: %v", rep.Skipped)
			}
			ix := onnx.NewIndex(m.Graph)
			for _, n := range m.Graph.Nodes {
				if n.OpType != "Conv" {
					continue
				}
				if w := ix.Initializers[n.Inputs[1]]; w != nil && len(w.Dims) == 4 && w.Dims[2] == 1 && len(ix.Consumers[n.Outputs[0]]) == 1 &&
					ix.Consumers[n.Outputs[0]][0].OpType == "Add" {
					t.Errorf("1x1 conv %s still feeds an Add", n.Name)
				}
			}
			params[form] = rep.ParamsAfter
			checkRewrite(t, pristine, m, rep)
			fused := roundTrip(t, m)

			shape := []int64{1, 3, 64, 64}
			// Decoded boxes are in input pixels, so bound the error relative
			// to the output's scale (MODEL.md: ~1e-3 on raw head outputs).
			d, scale := equivalence(t, raw, fused, "images", "output0", shape, nil)
			t.Logf("output0 max abs diff fused vs unfused: %.3g (output scale %.3g)", d, scale)
			if d > 1e-3*max(1, scale) {
				t.Errorf("fused output differs by %g", d)
			}
			// The raw head outputs: the last three convs (Detect), before decoding.
			var heads []string
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Conv" {
					heads = append(heads, n.Outputs[0])
				}
			}
			for _, h := range heads[len(heads)-3:] {
				d, scale := equivalence(t, withOutput(t, raw, h), withOutput(t, fused, h), "images", h, shape, nil)
				t.Logf("head %s max abs diff fused vs unfused: %.3g (values up to %.3g)", h, d, scale)
				// 1e-3 absolute, or float32 rounding relative to large heads.
				if limit := max(1e-3, 1e-5*scale); d > limit {
					t.Errorf("head %s differs by %g (limit %g)", h, d, limit)
				}
			}
		})
	}
	if params["train"] != 0 && params["train"] != params["folded"] {
		t.Errorf("deploy params differ: train form fuses to %d, folded form to %d", params["train"], params["folded"])
	}
}

// withOutput returns the model with value exposed as an extra graph output.
func withOutput(t *testing.T, model []byte, value string) []byte {
	t.Helper()
	m, err := onnx.Decode(model)
	if err != nil {
		t.Fatal(err)
	}
	m.Graph.Outputs = append(m.Graph.Outputs, &onnx.ValueInfo{Name: value, Type: &onnx.Type{Tensor: &onnx.TensorType{ElemType: onnx.Float}}})
	return onnx.Encode(m)
}
