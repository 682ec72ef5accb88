// Package half converts an ONNX model to float16, so that it is half the
// size and runs on float16 tensor cores: Mixed keeps float32 input, outputs
// and Detect decode, so callers and box coordinates do not change; Convert
// makes everything FLOAT16, input and outputs too, as ultralytics' export
// --half does; Twin rounds the weights Mixed would convert and keeps float32
// arithmetic, to check float16 weights where no float16 kernels run.
package half

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// ErrUnsupported means the graph has something the conversion cannot
// rewrite exactly (subgraphs, or a float value it cannot reach).
var ErrUnsupported = errors.New("cannot convert to float16")

// floatSlots are operator inputs that ONNX types as tensor(float) whatever
// the data type: they stay FLOAT.
var floatSlots = map[string][]int{
	"Resize": {1, 2}, // roi, scales
}

// Convert rewrites m in place: every FLOAT initializer, constant, value
// type and Cast target becomes FLOAT16, except the inputs ONNX requires
// to stay float. It returns how many initializer values it rounded.
func Convert(m *onnx.Model) (int64, error) {
	g := m.Graph
	if g == nil {
		return 0, fmt.Errorf("convert to float16: %w", onnx.ErrNoGraph)
	}
	keep := map[string]bool{}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.G != nil || len(a.Graphs) > 0 {
				return 0, fmt.Errorf("convert to float16: %w: node %s has a subgraph", ErrUnsupported, n.Name)
			}
		}
		for _, i := range floatSlots[n.OpType] {
			if i < len(n.Inputs) && n.Inputs[i] != "" {
				keep[n.Inputs[i]] = true
			}
		}
	}
	var values int64
	for _, t := range g.Initializers {
		if t.DataType != onnx.Float || keep[t.Name] {
			continue
		}
		n, err := toHalf(t)
		if err != nil {
			return 0, fmt.Errorf("convert to float16: %w", err)
		}
		values += n
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			switch {
			case n.OpType == "Constant" && a.T != nil && a.T.DataType == onnx.Float && !keep[n.Outputs[0]]:
				if _, err := toHalf(a.T); err != nil {
					return 0, fmt.Errorf("convert to float16: node %s: %w", n.Name, err)
				}
			case n.OpType == "Cast" && a.Name == "to" && a.I == int64(onnx.Float):
				a.I = int64(onnx.Float16)
			}
		}
	}
	for _, list := range [][]*onnx.ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, vi := range list {
			if vi.Type != nil && vi.Type.Tensor != nil && vi.Type.Tensor.ElemType == onnx.Float && !keep[vi.Name] {
				vi.Type.Tensor.ElemType = onnx.Float16
			}
		}
	}
	return values, nil
}

// toHalf rounds a FLOAT tensor to FLOAT16 (round to nearest even) in place.
func toHalf(t *onnx.Tensor) (int64, error) {
	v, err := t.Floats()
	if err != nil {
		return 0, err
	}
	raw := make([]byte, 2*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint16(raw[2*i:], onnx.FloatToHalf(f))
	}
	t.DataType, t.RawData, t.FloatData = onnx.Float16, raw, nil
	return int64(len(v)), nil
}
