package fuse

import (
	"errors"
	"fmt"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// maxIdentityHops bounds how many Identity nodes are followed to reach a
// constant; torch's exporter uses one to share de-duplicated parameters.
const maxIdentityHops = 8

// constant finds the tensor behind value: an initializer that cannot be fed
// at run time, a Constant node, or either through Identity nodes. When value
// is not a constant, why says so in words for a skip reason.
func (w *rewriter) constant(value string) (t *onnx.Tensor, why string) {
	name := value
	for range maxIdentityHops + 1 {
		if name == "" {
			return nil, "is absent"
		}
		if t, ok := w.ix.Initializers[name]; ok {
			if w.ir >= 4 && w.isGraphInput(name) {
				return nil, fmt.Sprintf("%q is a graph input that can be fed at run time", value)
			}
			return t, ""
		}
		p := w.ix.Producer[name]
		switch {
		case isOp(p, "Constant"):
			return constantNode(p, value)
		case isOp(p, "Identity") && len(p.Inputs) == 1:
			name = p.Inputs[0]
		default:
			return nil, fmt.Sprintf("%q is not a constant (initializer or Constant node)", value)
		}
	}
	return nil, fmt.Sprintf("%q is behind more than %d Identity nodes", value, maxIdentityHops)
}

func (w *rewriter) isGraphInput(name string) bool {
	for _, v := range w.g.Inputs {
		if v.Name == name {
			return true
		}
	}
	return false
}

// constantNode reads the float value a Constant node holds.
func constantNode(n *onnx.Node, value string) (*onnx.Tensor, string) {
	if len(n.Attrs) != 1 || n.Attrs[0] == nil {
		return nil, fmt.Sprintf("Constant %q does not hold exactly one value", value)
	}
	a := n.Attrs[0]
	switch {
	case a.Name == "value" && a.Type == onnx.AttrTensor && a.T != nil:
		return a.T, ""
	case a.Name == "value_float" && a.Type == onnx.AttrFloat:
		return onnx.NewFloat(value, nil, []float32{a.F}), ""
	case a.Name == "value_floats" && a.Type == onnx.AttrFloats:
		return onnx.NewFloat(value, []int64{int64(len(a.Floats))}, a.Floats), ""
	}
	return nil, fmt.Sprintf("Constant %q holds %s, not a float tensor", value, a.Name)
}

// isConstant reports whether value is a constant.
func (w *rewriter) isConstant(value string) bool {
	t, _ := w.constant(value)
	return t != nil
}

// floats returns a constant's values in float64. A tensor that is not of a
// float type gives a skip reason; one whose data contradicts its dims is an
// error naming the node that reads it.
func (w *rewriter) floats(n *onnx.Node, value string, t *onnx.Tensor) (vals []float64, why string, err error) {
	if v, ok := w.exact[t]; ok {
		return v, "", nil
	}
	switch t.DataType {
	case onnx.Float, onnx.Float16, onnx.Double:
	default:
		return nil, fmt.Sprintf("%q is %s, not a float tensor", value, t.DataType), nil
	}
	f, err := t.Floats()
	if errors.Is(err, onnx.ErrTensorData) {
		return nil, "", fmt.Errorf("read tensor %q of node %s: %w: %w", value, label(n), ErrInconsistent, err)
	}
	if err != nil {
		return nil, fmt.Sprintf("read %q: %v", value, err), nil
	}
	vals = make([]float64, len(f))
	for i, v := range f {
		vals[i] = float64(v)
	}
	return vals, "", nil
}

// perChannel reads a constant that broadcasts along axis 1 of an NCHW tensor
// without changing its shape (dims [], [1], [C,1,1], [1,C,1,1] and the like)
// and returns it expanded to c values.
func (w *rewriter) perChannel(n *onnx.Node, value string, c int64) (vals []float64, why string, err error) {
	t, why := w.constant(value)
	if t == nil {
		return nil, why, nil
	}
	if len(t.Dims) > 4 {
		return nil, fmt.Sprintf("%q has rank %d, more than the activation's 4", value, len(t.Dims)), nil
	}
	dims := make([]int64, 4)
	for i := range dims {
		dims[i] = 1
	}
	copy(dims[4-len(t.Dims):], t.Dims)
	if dims[0] != 1 || dims[2] != 1 || dims[3] != 1 || (dims[1] != 1 && dims[1] != c) {
		return nil, fmt.Sprintf("%q has dims %v, not per-channel for %d channels", value, t.Dims, c), nil
	}
	v, why, err := w.floats(n, value, t)
	if v == nil {
		return nil, why, err
	}
	if int64(len(v)) == c {
		return v, "", nil
	}
	out := make([]float64, c)
	for i := range out {
		out[i] = v[0]
	}
	return out, "", nil
}

// vector reads a constant of dims [c], as BatchNormalization parameters and
// Conv biases are.
func (w *rewriter) vector(n *onnx.Node, value string, c int64) (vals []float64, why string, err error) {
	t, why := w.constant(value)
	if t == nil {
		return nil, why, nil
	}
	if len(t.Dims) != 1 || t.Dims[0] != c {
		return nil, fmt.Sprintf("%q has dims %v, want [%d]", value, t.Dims, c), nil
	}
	return w.floats(n, value, t)
}
