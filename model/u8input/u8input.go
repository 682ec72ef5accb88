// Package u8input makes a model take letterboxed uint8 RGB [N,H,W,3], the
// bytes frames travel as, and do the transpose, cast and /255 itself: a
// quarter of the bytes to the device, and no per-pixel float conversion on
// the host.
package u8input

import (
	"errors"
	"fmt"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// ErrInput means the model's input is not one float image tensor
// [N,3,H,W] that the rewrite can take over.
var ErrInput = errors.New("cannot give the model uint8 input")

// suffix names the float NCHW value the model read before as its input.
const suffix = "__float"

// Convert rewrites m in place: its image input, of the same name, becomes
// UINT8 [N,H,W,3], followed by Cast to FLOAT, Div by 255 and Transpose to
// NCHW. The division is IEEE float32 v/255, the value detect.Planar writes,
// so the model computes on the same floats bit for bit. A FLOAT16 input
// (a model converted by half.Convert) gets a Cast to FLOAT16 after the
// division.
func Convert(m *onnx.Model) error {
	g := m.Graph
	if g == nil {
		return fmt.Errorf("uint8 input: %w", onnx.ErrNoGraph)
	}
	vi, err := imageInput(g)
	if err != nil {
		return err
	}
	tt := vi.Type.Tensor
	s := tt.Shape
	name, float := vi.Name, vi.Name+suffix
	for _, o := range g.Outputs {
		if o.Name == name {
			return fmt.Errorf("%w: input %s is also an output", ErrInput, name)
		}
	}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == name {
				n.Inputs[i] = float
			}
		}
	}
	f32, scaled := name+"__f32", name+"__scaled"
	// out is the float NCHW image: the value the model read, or its
	// FLOAT16 cast's input.
	out := float
	if tt.ElemType == onnx.Float16 {
		out = name + "__nchw"
	}
	k := onnx.NewFloat(name+"__255", nil, []float32{255})
	nodes := []*onnx.Node{
		// Transposing floats last measured faster on ONNX Runtime's CPU
		// provider than transposing the bytes first (BenchmarkInputPrep).
		{Name: f32, OpType: "Cast", Inputs: []string{name}, Outputs: []string{f32}, Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float))}},
		{Name: scaled, OpType: "Div", Inputs: []string{f32, k.Name}, Outputs: []string{scaled}},
		{Name: out, OpType: "Transpose", Inputs: []string{scaled}, Outputs: []string{out}, Attrs: []*onnx.Attribute{onnx.Ints("perm", 0, 3, 1, 2)}},
	}
	if tt.ElemType == onnx.Float16 {
		nodes = append(nodes, &onnx.Node{Name: float, OpType: "Cast", Inputs: []string{out}, Outputs: []string{float},
			Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float16))}})
	}
	g.Nodes = append(nodes, g.Nodes...)
	g.Initializers = append(g.Initializers, k)
	for i, in := range g.Inputs {
		if in == vi {
			g.Inputs[i] = onnx.TensorValue(name, onnx.Uint8, s[0], s[2], s[3], onnx.Dim{Value: 3})
		}
	}
	return nil
}

// imageInput is the graph's one non-initializer input, FLOAT or FLOAT16
// [N,3,H,W].
func imageInput(g *onnx.Graph) (*onnx.ValueInfo, error) {
	inits := make(map[string]bool, len(g.Initializers))
	for _, t := range g.Initializers {
		inits[t.Name] = true
	}
	var in *onnx.ValueInfo
	for _, vi := range g.Inputs {
		if inits[vi.Name] {
			continue
		}
		if in != nil {
			return nil, fmt.Errorf("%w: inputs %s and %s, want one image input", ErrInput, in.Name, vi.Name)
		}
		in = vi
	}
	if in == nil {
		return nil, fmt.Errorf("%w: no image input", ErrInput)
	}
	if in.Type == nil || in.Type.Tensor == nil || !in.Type.Tensor.HasShape {
		return nil, fmt.Errorf("%w: input %s is not a tensor of known rank", ErrInput, in.Name)
	}
	tt := in.Type.Tensor
	if tt.ElemType == onnx.Uint8 {
		return nil, fmt.Errorf("%w: input %s is UINT8 already", ErrInput, in.Name)
	}
	if tt.ElemType != onnx.Float && tt.ElemType != onnx.Float16 {
		return nil, fmt.Errorf("%w: input %s is %s, want FLOAT or FLOAT16", ErrInput, in.Name, tt.ElemType)
	}
	if len(tt.Shape) != 4 {
		return nil, fmt.Errorf("%w: input %s has %d dims, want [N,3,H,W]", ErrInput, in.Name, len(tt.Shape))
	}
	if tt.Shape[1].Value != 3 {
		return nil, fmt.Errorf("%w: input %s has %d channels, want [N,3,H,W]", ErrInput, in.Name, tt.Shape[1].Value)
	}
	return in, nil
}
