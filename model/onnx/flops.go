package onnx

import (
	"errors"
	"fmt"
	"math"
)

// ErrShapeUnknown means a shape needed for a computation could not be inferred.
var ErrShapeUnknown = errors.New("shape unknown")

// ConvFLOPs counts the floating-point operations of g's Conv nodes as
// 2·Cout·(Cin/group)·kh·kw·Hout·Wout·N (multiply and add, no bias), the way
// ultralytics reports GFLOPs. inputShape is the shape of g's first input that
// is not an initializer. Shapes are propagated only through the ops that feed
// convs in conv nets; a Conv whose input shape cannot be inferred is an error
// naming the node.
func ConvFLOPs(g *Graph, inputShape []int64) (int64, error) {
	shapes := make(map[string][]int64)
	inits := make(map[string]*Tensor, len(g.Initializers))
	for _, t := range g.Initializers {
		inits[t.Name] = t
		shapes[t.Name] = t.Dims
	}
	for _, in := range g.Inputs {
		if _, ok := inits[in.Name]; !ok {
			shapes[in.Name] = inputShape
			break
		}
	}
	var total int64
	for _, n := range g.Nodes {
		// Exporters put Resize scales in Constant nodes rather than initializers.
		if a := n.Attr("value"); n.OpType == "Constant" && n.Domain == "" && a != nil && a.T != nil && len(n.Outputs) == 1 {
			inits[n.Outputs[0]] = a.T
			shapes[n.Outputs[0]] = a.T.Dims
			continue
		}
		out, err := inferShape(n, shapes, inits)
		if n.OpType == "Conv" && n.Domain == "" {
			if err != nil {
				return 0, fmt.Errorf("count flops of conv %s: %w", n.Name, err)
			}
			f, err := convFLOPs(n, shapes, out)
			if err != nil {
				return 0, fmt.Errorf("count flops of conv %s: %w", n.Name, err)
			}
			if total > math.MaxInt64-f {
				return 0, fmt.Errorf("count flops of conv %s: total overflows int64", n.Name)
			}
			total += f
		}
		if err == nil && len(n.Outputs) > 0 {
			shapes[n.Outputs[0]] = out
			if t := foldConcat(n, inits); t != nil {
				inits[n.Outputs[0]] = t
			}
		}
	}
	return total, nil
}

func convFLOPs(n *Node, shapes map[string][]int64, out []int64) (int64, error) {
	w := shapes[n.Inputs[1]]
	f := int64(2)
	for _, d := range []int64{w[0], w[1], out[0]} {
		f = mulCap(f, d)
	}
	for _, d := range w[2:] {
		f = mulCap(f, d)
	}
	for _, d := range out[2:] {
		f = mulCap(f, d)
	}
	if f < 0 {
		return 0, fmt.Errorf("flops overflow int64 (weight %v, output %v)", w, out)
	}
	return f, nil
}

// mulCap multiplies non-negative a and b, returning -1 on overflow or a negative input.
func mulCap(a, b int64) int64 {
	if a < 0 || b < 0 || (b != 0 && a > math.MaxInt64/b) {
		return -1
	}
	return a * b
}

// inferShape returns the shape of n's first output, or an error wrapping
// ErrShapeUnknown when an input shape is unknown or the op is not modelled.
func inferShape(n *Node, shapes map[string][]int64, inits map[string]*Tensor) ([]int64, error) {
	in := func(i int) ([]int64, error) {
		if i >= len(n.Inputs) || n.Inputs[i] == "" {
			return nil, fmt.Errorf("%w: %s has no input %d", ErrShapeUnknown, n.OpType, i)
		}
		s, ok := shapes[n.Inputs[i]]
		if !ok {
			return nil, fmt.Errorf("%w: input %s", ErrShapeUnknown, n.Inputs[i])
		}
		return s, nil
	}
	if n.Domain != "" {
		return nil, fmt.Errorf("%w: op %s.%s is not modelled", ErrShapeUnknown, n.Domain, n.OpType)
	}
	switch n.OpType {
	case "Conv", "MaxPool", "AveragePool":
		x, err := in(0)
		if err != nil {
			return nil, err
		}
		var kernel []int64
		outC := int64(-1)
		if n.OpType == "Conv" {
			w, err := in(1)
			if err != nil {
				return nil, err
			}
			if len(w) != len(x) || len(x) < 3 {
				return nil, fmt.Errorf("%w: weight %v does not fit input %v", ErrShapeUnknown, w, x)
			}
			g := n.AttrInt("group", 1)
			if g <= 0 || x[1] != w[1]*g || w[0]%g != 0 {
				return nil, fmt.Errorf("%w: weight %v, group %d do not fit input %v", ErrShapeUnknown, w, g, x)
			}
			kernel, outC = w[2:], w[0]
		} else {
			kernel = n.AttrInts("kernel_shape", nil)
		}
		return poolShape(n, x, kernel, outC)
	case "BatchNormalization", "Sigmoid", "Relu", "LeakyRelu", "Identity", "Tanh", "Clip",
		"HardSigmoid", "HardSwish", "Elu", "Selu", "Softplus", "Neg", "Abs", "Exp", "Sqrt", "Erf", "Cast":
		return in(0)
	case "Add", "Mul", "Sub", "Div", "Pow", "Max", "Min", "Sum":
		out, err := in(0)
		if err != nil {
			return nil, err
		}
		for i := 1; i < len(n.Inputs); i++ {
			s, err := in(i)
			if err != nil {
				return nil, err
			}
			if out, err = broadcast(out, s); err != nil {
				return nil, err
			}
		}
		return out, nil
	case "Concat":
		out, err := in(0)
		if err != nil {
			return nil, err
		}
		out = append([]int64(nil), out...)
		axis, err := normAxis(n.AttrInt("axis", 0), len(out))
		if err != nil {
			return nil, err
		}
		for i := 1; i < len(n.Inputs); i++ {
			s, err := in(i)
			if err != nil {
				return nil, err
			}
			if len(s) != len(out) {
				return nil, fmt.Errorf("%w: concat of ranks %d and %d", ErrShapeUnknown, len(out), len(s))
			}
			out[axis] += s[axis]
		}
		return out, nil
	case "Resize", "Upsample":
		return resizeShape(n, in, inits)
	}
	return nil, fmt.Errorf("%w: op %s is not modelled", ErrShapeUnknown, n.OpType)
}

// poolShape computes a Conv or pool output: [N, C, spatial...].
func poolShape(n *Node, x, kernel []int64, outC int64) ([]int64, error) {
	sp := len(x) - 2
	if len(kernel) != sp || sp < 1 {
		return nil, fmt.Errorf("%w: kernel %v does not fit input %v", ErrShapeUnknown, kernel, x)
	}
	strides := n.AttrInts("strides", nil)
	dil := n.AttrInts("dilations", nil)
	pads := n.AttrInts("pads", nil)
	ceil := n.AttrInt("ceil_mode", 0) != 0
	autoPad := n.AttrString("auto_pad", "NOTSET")
	out := []int64{x[0], x[1]}
	if outC >= 0 {
		out[1] = outC
	}
	for i := range sp {
		s, d := int64(1), int64(1)
		if i < len(strides) {
			s = strides[i]
		}
		if i < len(dil) {
			d = dil[i]
		}
		if s <= 0 || d <= 0 || kernel[i] <= 0 {
			return nil, fmt.Errorf("%w: bad kernel %v, strides %v or dilations %v", ErrShapeUnknown, kernel, strides, dil)
		}
		ek := d*(kernel[i]-1) + 1
		var o int64
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			o = (x[2+i] + s - 1) / s
		case "VALID":
			o = (x[2+i]-ek)/s + 1
		default:
			var p int64
			if len(pads) == 2*sp {
				p = pads[i] + pads[i+sp]
			}
			num := x[2+i] + p - ek
			if ceil {
				o = (num+s-1)/s + 1
			} else {
				o = num/s + 1
			}
		}
		if o <= 0 {
			return nil, fmt.Errorf("%w: input %v too small for kernel %v", ErrShapeUnknown, x, kernel)
		}
		out = append(out, o)
	}
	return out, nil
}

// resizeShape handles Resize with constant scales or sizes (and Upsample's scales).
func resizeShape(n *Node, in func(int) ([]int64, error), inits map[string]*Tensor) ([]int64, error) {
	x, err := in(0)
	if err != nil {
		return nil, err
	}
	scalesAt, sizesAt := 2, 3
	if n.OpType == "Upsample" {
		scalesAt, sizesAt = 1, -1
	}
	if sizesAt > 0 && sizesAt < len(n.Inputs) && n.Inputs[sizesAt] != "" {
		t, ok := inits[n.Inputs[sizesAt]]
		if !ok {
			return nil, fmt.Errorf("%w: resize sizes %s is not constant", ErrShapeUnknown, n.Inputs[sizesAt])
		}
		sizes, err := t.Int64s()
		if err != nil || len(sizes) != len(x) {
			return nil, fmt.Errorf("%w: resize sizes %v for input %v", ErrShapeUnknown, sizes, x)
		}
		return sizes, nil
	}
	if scalesAt >= len(n.Inputs) || n.Inputs[scalesAt] == "" {
		return nil, fmt.Errorf("%w: resize without scales or sizes", ErrShapeUnknown)
	}
	t, ok := inits[n.Inputs[scalesAt]]
	if !ok {
		return nil, fmt.Errorf("%w: resize scales %s is not constant", ErrShapeUnknown, n.Inputs[scalesAt])
	}
	scales, err := t.Floats()
	if err != nil || len(scales) != len(x) {
		return nil, fmt.Errorf("%w: resize scales %v for input %v", ErrShapeUnknown, scales, x)
	}
	out := make([]int64, len(x))
	for i := range x {
		out[i] = int64(math.Floor(float64(x[i]) * float64(scales[i])))
	}
	return out, nil
}

// broadcast applies numpy-style multidirectional broadcasting.
func broadcast(a, b []int64) ([]int64, error) {
	if len(a) < len(b) {
		a, b = b, a
	}
	out := append([]int64(nil), a...)
	off := len(a) - len(b)
	for i, d := range b {
		switch o := out[off+i]; {
		case o == d || d == 1:
		case o == 1:
			out[off+i] = d
		default:
			return nil, fmt.Errorf("%w: cannot broadcast %v with %v", ErrShapeUnknown, a, b)
		}
	}
	return out, nil
}

func normAxis(axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, fmt.Errorf("%w: axis %d out of range for rank %d", ErrShapeUnknown, axis, rank)
	}
	return int(axis), nil
}

// foldConcat evaluates a Concat of 1-D float constants, the form an export
// without constant folding gives Resize scales ([1, 1] ++ [2, 2]).
func foldConcat(n *Node, inits map[string]*Tensor) *Tensor {
	if n.OpType != "Concat" {
		return nil
	}
	var vals []float32
	for _, in := range n.Inputs {
		t, ok := inits[in]
		if !ok || t.DataType != Float || len(t.Dims) != 1 {
			return nil
		}
		v, err := t.Floats()
		if err != nil {
			return nil
		}
		vals = append(vals, v...)
	}
	return NewFloat(n.Outputs[0], []int64{int64(len(vals))}, vals)
}
