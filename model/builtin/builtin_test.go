package builtin

import (
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// TestSameGraphAsBefore: the shipped weights build the graph the untrained
// built-in model had (seeded RepYOLOv5s, fused): the same ops in the same
// order and 7,225,885 parameters, so the same speed; float32 throughout,
// with COCO's names and the weights' anchors.
func TestSameGraphAsBefore(t *testing.T) {
	const size = 320
	m, err := Build(size)
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := Seeded(size)
	if err != nil {
		t.Fatal(err)
	}
	ops := func(m *onnx.Model) []string {
		var s []string
		for _, n := range m.Graph.Nodes {
			s = append(s, n.OpType)
		}
		return s
	}
	if !slices.Equal(ops(m), ops(seeded)) {
		t.Errorf("ops differ from the seeded fused graph's:\n got %v\nwant %v", ops(m), ops(seeded))
	}
	if got := onnx.Params(m.Graph); got != 7_225_885 {
		t.Errorf("params %d, want 7,225,885", got)
	}
	for _, in := range m.Graph.Initializers {
		if in.DataType != onnx.Float && in.DataType != onnx.Int64 {
			t.Errorf("initializer %s is %v, want float32", in.Name, in.DataType)
		}
	}
	names, err := yolo.ClassNames(m)
	if err != nil || !slices.Equal(names, detect.COCO80) {
		t.Errorf("names %v (%v), want COCO's 80", names, err)
	}
	w, err := Weights()
	if err != nil {
		t.Fatal(err)
	}
	if w.Metadata()["form"] != "deploy" {
		t.Errorf("weights form %q, want deploy", w.Metadata()["form"])
	}
}
