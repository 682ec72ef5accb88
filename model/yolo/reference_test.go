package yolo

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// smallConfig must match WIDTH, DEPTH, IMGSZ, NC and REP in testdata/gen_reference.py.
func smallConfig(weights Source) Config {
	return Config{Arch: ArchRepYOLOv5s, Rep: RepAll, Width: 0.03125, Depth: 0.33, ImgSize: 64, Classes: 3, Weights: weights}
}

const (
	smallWeights = "testdata/repyolo_small.safetensors"
	smallIO      = "testdata/repyolo_small_io.safetensors"
	smallBatch   = 2
	// smallParams is what the generator prints for sum(p.numel() for p in model.parameters()).
	smallParams = 34312
)

// TestTorchReference runs the builder's graph, loaded with a torch
// state_dict, in ONNX Runtime and compares it with torch on the same input:
// the raw Detect logits (names, shapes, concat orders, every branch, BN eps)
// and the decoded output0 (grid, strides, anchors, layout).
func TestTorchReference(t *testing.T) {
	w, err := safetensors.Open(smallWeights)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(smallConfig(w))
	if err != nil {
		t.Fatal(err)
	}
	if got := onnx.Params(m.Graph); got != smallParams {
		t.Errorf("Params = %d, torch counts %d", got, smallParams)
	}
	// Expose the Detect convs' outputs to compare logits before the decode.
	names := []string{"output0"}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" && strings.HasPrefix(n.Name, "/model.24.m.") {
			names = append(names, n.Outputs[0])
			m.Graph.Outputs = append(m.Graph.Outputs, &onnx.ValueInfo{Name: n.Outputs[0], Type: &onnx.Type{Tensor: &onnx.TensorType{ElemType: onnx.Float}}})
		}
	}
	if len(names) != 4 {
		t.Fatalf("found %d Detect convs, want 3", len(names)-1)
	}
	ref, err := safetensors.Open(smallIO)
	if err != nil {
		t.Fatal(err)
	}
	const img, no = 64, 5 + 3
	in, err := ref.Tensor("images", []int{smallBatch, 3, img, img})
	if err != nil {
		t.Fatal(err)
	}
	got := runORT(t, onnx.Encode(m), in, []int64{smallBatch, 3, img, img}, names...)

	for i := range 3 {
		side := img >> (3 + i)
		want, err := ref.Tensor(fmt.Sprintf("raw%d", i), []int{smallBatch, 3 * no, side, side})
		if err != nil {
			t.Fatal(err)
		}
		d := maxAbsDiff(t, got[1+i].data, want)
		t.Logf("Detect level %d logits: max abs diff %.3g", i, d)
		if d > 1e-4 {
			t.Errorf("Detect level %d logits: max abs diff %.3g > 1e-4", i, d)
		}
	}

	const anchors = 3 * (8*8 + 4*4 + 2*2)
	want, err := ref.Tensor("output0", []int{smallBatch, anchors, no})
	if err != nil {
		t.Fatal(err)
	}
	if s := got[0].shape; len(s) != 3 || s[0] != smallBatch || s[1] != anchors || s[2] != no {
		t.Fatalf("output0 shape %v, want [%d %d %d]", s, smallBatch, anchors, no)
	}
	// Boxes are in pixels, up to 4x an anchor (1492 px), where the fp32
	// rounding left in the logits (~1e-5 relative) alone exceeds 1e-3 px; so
	// boxes are held to the logits' relative bound and the [0,1] scores to 1e-3.
	var boxAbs, boxRel, scoreAbs float64
	for i := range want {
		d := math.Abs(float64(got[0].data[i] - want[i]))
		if i%no < 4 {
			boxAbs = max(boxAbs, d)
			boxRel = max(boxRel, d/max(1, math.Abs(float64(want[i]))))
		} else {
			scoreAbs = max(scoreAbs, d)
		}
	}
	t.Logf("output0: scores max abs diff %.3g; boxes max abs diff %.3g px, max relative diff %.3g", scoreAbs, boxAbs, boxRel)
	if scoreAbs > 1e-3 {
		t.Errorf("output0 scores: max abs diff %.3g > 1e-3", scoreAbs)
	}
	if boxRel > 1e-4 {
		t.Errorf("output0 boxes: max relative diff %.3g > 1e-4", boxRel)
	}
}

func maxAbsDiff(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	var d float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i]-want[i])))
	}
	return d
}

// TestTorchExportAgrees checks the counters against torch's own ONNX export
// of the same model (the fuser's fixture): same parameter count and conv FLOPs.
func TestTorchExportAgrees(t *testing.T) {
	torchModel, err := onnx.ReadFile(filepath.Join("..", "fuse", "testdata", "torch_repyolo_small_train.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(smallConfig(Seeded(1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := onnx.Params(m.Graph), onnx.Params(torchModel.Graph); got != want || got != smallParams {
		t.Errorf("Params: builder %d, torch export %d, torch module %d", got, want, smallParams)
	}
	shape := []int64{1, 3, 64, 64}
	got, err := onnx.ConvFLOPs(m.Graph, shape)
	if err != nil {
		t.Fatal(err)
	}
	want, err := onnx.ConvFLOPs(torchModel.Graph, shape)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ConvFLOPs: builder %d, torch export %d", got, want)
	}
}
