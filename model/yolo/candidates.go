package yolo

import (
	"errors"
	"fmt"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// ErrNoCandidates: the model cannot be given a candidates output (not one
// [N, A, 5+nc] output, an opset before 11, or fewer rows than asked).
var ErrNoCandidates = errors.New("model cannot select candidates")

// WithCandidates rewrites a YOLOv5-format model so that its output0 holds
// only the k rows with the highest objectness, in their original row order:
// [N, k, 5+nc] instead of [N, A, 5+nc]. On a GPU that is what has to come
// back to the host: output0 of a 640 model is 8.6 MB per image, its 2,000
// best rows 0.7 MB.
//
// NMS on the selected rows gives exactly the detections NMS gives on all of
// them whenever fewer than k rows have an objectness above the confidence
// threshold, since only those rows can become detections and row order, the
// tie-break, is kept. A frame where all k rows pass the threshold may have
// lost candidates; the caller can tell, because every row then passes.
func WithCandidates(model []byte, k int) ([]byte, error) {
	m, err := onnx.Decode(model)
	if err != nil {
		return nil, err
	}
	g := m.Graph
	if len(g.Outputs) != 1 {
		return nil, fmt.Errorf("%w: %d outputs, want one [N, A, 5+nc]", ErrNoCandidates, len(g.Outputs))
	}
	out := g.Outputs[0]
	t := out.Type
	if t == nil || t.Tensor == nil || len(t.Tensor.Shape) != 3 || t.Tensor.ElemType != onnx.Float {
		return nil, fmt.Errorf("%w: output %s is not a float [N, A, 5+nc] tensor", ErrNoCandidates, out.Name)
	}
	shape := t.Tensor.Shape
	if rows := shape[1].Value; rows > 0 && int64(k) >= rows {
		return nil, fmt.Errorf("%w: %d candidates of %d rows", ErrNoCandidates, k, rows)
	}
	if k < 1 {
		return nil, fmt.Errorf("%w: %d candidates", ErrNoCandidates, k)
	}
	opset := int64(0)
	for _, o := range m.OpsetImports {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			opset = o.Version
		}
	}
	if opset < 11 {
		return nil, fmt.Errorf("%w: opset %d, GatherElements needs 11", ErrNoCandidates, opset)
	}

	// The full output becomes an inner value; the new output takes its name.
	full := out.Name + "_all_rows"
	for _, n := range g.Nodes {
		for i, o := range n.Outputs {
			if o == out.Name {
				n.Outputs[i] = full
			}
		}
		for i, in := range n.Inputs {
			if in == out.Name {
				n.Inputs[i] = full
			}
		}
	}
	c := candidateBuilder{g: g, prefix: "candidates/", opset: opset}
	i64 := func(name string, v ...int64) string {
		name = c.prefix + name
		g.Initializers = append(g.Initializers, onnx.NewInt64(name, []int64{int64(len(v))}, v))
		return name
	}
	obj := c.node("Slice", []string{full, i64("obj_start", 4), i64("obj_end", 5), i64("obj_axis", 2)})
	obj = c.squeeze(obj, 2, i64("axis2", 2))
	kk := i64("k", int64(k))
	_, best := c.node2("TopK", []string{obj, kk}, onnx.Int("axis", -1), onnx.Int("largest", 1), onnx.Int("sorted", 1))
	// Back to row order: TopK of the negated row numbers sorts them
	// ascending (row numbers are exact in float32 below 2^24).
	neg := c.node("Neg", []string{c.node("Cast", []string{best}, onnx.Int("to", int64(onnx.Float)))})
	asc, _ := c.node2("TopK", []string{neg, kk}, onnx.Int("axis", -1), onnx.Int("largest", 1), onnx.Int("sorted", 1))
	rows := c.node("Cast", []string{c.node("Neg", []string{asc})}, onnx.Int("to", int64(onnx.Int64)))
	rows = c.unsqueeze(rows, 2, i64("axis2u", 2))
	dims := c.node("Shape", []string{full})
	target := c.node("Concat", []string{
		c.node("Slice", []string{dims, i64("n_start", 0), i64("n_end", 1), i64("axis0", 0)}),
		kk,
		c.node("Slice", []string{dims, i64("c_start", 2), i64("c_end", 3), i64("axis0b", 0)}),
	}, onnx.Int("axis", 0))
	rows = c.node("Expand", []string{rows, target})
	g.Nodes = append(g.Nodes, &onnx.Node{
		Name: c.prefix + "GatherElements", OpType: "GatherElements",
		Inputs: []string{full, rows}, Outputs: []string{out.Name}, Attrs: []*onnx.Attribute{onnx.Int("axis", 1)},
	})
	g.Outputs[0] = onnx.TensorValue(out.Name, onnx.Float, shape[0], onnx.Dim{Value: int64(k)}, shape[2])
	m.Metadata = append(m.Metadata, onnx.StringPair{Key: "vidpipe_candidates", Value: fmt.Sprint(k)})
	return onnx.Encode(m), nil
}

// candidateBuilder appends the selection's nodes to g.
type candidateBuilder struct {
	g      *onnx.Graph
	prefix string
	opset  int64
	n      int
}

func (c *candidateBuilder) add(op string, inputs []string, nOut int, attrs ...*onnx.Attribute) []string {
	c.n++
	name := fmt.Sprintf("%s%s_%d", c.prefix, op, c.n)
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = fmt.Sprintf("%s:%d", name, i)
	}
	c.g.Nodes = append(c.g.Nodes, &onnx.Node{Name: name, OpType: op, Inputs: inputs, Outputs: outs, Attrs: attrs})
	return outs
}

func (c *candidateBuilder) node(op string, inputs []string, attrs ...*onnx.Attribute) string {
	return c.add(op, inputs, 1, attrs...)[0]
}

func (c *candidateBuilder) node2(op string, inputs []string, attrs ...*onnx.Attribute) (string, string) {
	o := c.add(op, inputs, 2, attrs...)
	return o[0], o[1]
}

// squeeze and unsqueeze take their axes as an input from opset 13 on, as an
// attribute before.
func (c *candidateBuilder) squeeze(x string, axis int64, axes string) string {
	if c.opset >= 13 {
		return c.node("Squeeze", []string{x, axes})
	}
	return c.node("Squeeze", []string{x}, onnx.Ints("axes", axis))
}

func (c *candidateBuilder) unsqueeze(x string, axis int64, axes string) string {
	if c.opset >= 13 {
		return c.node("Unsqueeze", []string{x, axes})
	}
	return c.node("Unsqueeze", []string{x}, onnx.Ints("axes", axis))
}
