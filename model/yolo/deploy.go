package yolo

import (
	"fmt"
	"strings"

	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// DeployWeights returns the weights of a fused model, one this package built
// and model/fuse folded, under the names a fused ultralytics or YOLOv5-Lite
// state_dict uses: a Conv module's conv.weight and conv.bias with no BN (as
// ultralytics' Model.fuse() leaves it), a RepVGG block's rbr_reparam.weight
// and .bias, Detect's m.N.weight and .bias. Build takes them back and gives
// the same graph; anchors are not among them (the graph holds them decoded),
// so a caller that wants them carries model.N.anchors over from the
// training weights.
func DeployWeights(m *onnx.Model) (map[string]safetensors.Tensor, error) {
	inits := make(map[string]*onnx.Tensor, len(m.Graph.Initializers))
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = t
	}
	out := make(map[string]safetensors.Tensor)
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "BatchNormalization":
			return nil, fmt.Errorf("deploy weights: node %s: %w: the model is not fused", n.Name, ErrWeight)
		case "Conv":
		default:
			continue
		}
		scope, ok := strings.CutSuffix(strings.TrimPrefix(n.Name, "/"), "/Conv")
		if !ok || len(n.Inputs) != 3 {
			return nil, fmt.Errorf("deploy weights: conv %s: %w: not a fused conv of a built model", n.Name, ErrWeight)
		}
		if block, rep := strings.CutSuffix(scope, ".rbr_dense.conv"); rep {
			scope = block + ".rbr_reparam"
		}
		for i, suffix := range []string{".weight", ".bias"} {
			t, ok := inits[n.Inputs[1+i]]
			if !ok {
				return nil, fmt.Errorf("deploy weights: conv %s: %w: input %s is not an initializer", n.Name, ErrWeight, n.Inputs[1+i])
			}
			data, err := t.Floats()
			if err != nil {
				return nil, fmt.Errorf("deploy weights: conv %s: %w", n.Name, err)
			}
			shape := make([]int, len(t.Dims))
			for j, d := range t.Dims {
				shape[j] = int(d)
			}
			name := scope + suffix
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("deploy weights: %w: two convs map to %s", ErrWeight, name)
			}
			out[name] = safetensors.Tensor{Shape: shape, Data: data}
		}
	}
	return out, nil
}
