package yolo

import (
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
)

func countOps(m *onnx.Model, op string) int {
	n := 0
	for _, node := range m.Graph.Nodes {
		if node.OpType == op {
			n++
		}
	}
	return n
}

// TestSeedParams checks the seed's RepYOLOv5s (v5.0 topology) against the
// counts measured with the upstream code: 7,535,293 in training form and
// 7,266,973 after fusion, at 80 classes.
func TestSeedParams(t *testing.T) {
	m, rep, err := BuildReport(Config{Arch: ArchRepYOLOv5sV5})
	if err != nil {
		t.Fatal(err)
	}
	if got := onnx.Params(m.Graph); got != 7_535_293 {
		t.Errorf("training form: %d params, want 7,535,293", got)
	}
	if got := countOps(m, "BatchNormalization"); got == 0 {
		t.Error("training form has no BatchNormalization")
	}
	if _, err := fuse.Model(m); err != nil {
		t.Fatal(err)
	}
	if got := onnx.Params(m.Graph); got != 7_266_973 {
		t.Errorf("fused: %d params, want 7,266,973", got)
	}
	if got := countOps(m, "BatchNormalization"); got != 0 {
		t.Errorf("fused: %d BatchNormalization nodes left", got)
	}
	if !slices.Equal(rep.Strides, []int{8, 16, 32}) || rep.AnchorsFrom != "model file" || !rep.Seeded || rep.Layers != 25 {
		t.Errorf("report %+v", rep)
	}
	if s := m.Graph.Outputs[0].Type.Tensor.Shape; s[1].Value != 25200 || s[2].Value != 85 {
		t.Errorf("output0 %v", s)
	}
}
