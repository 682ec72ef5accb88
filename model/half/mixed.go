package half

import (
	"fmt"
	"slices"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// suffix names the FLOAT16 twin of a value that stays FLOAT where it is
// read by the float32 part of the graph (the input, a shared constant) or
// written for it (a last convolution's output).
const suffix = "__fp16"

// Report says what Mixed or Twin did.
type Report struct {
	// Rounded counts the initializer and constant values rounded to float16.
	Rounded int64
	// Float32 are the nodes kept in float32: the Detect decode after the
	// last convolutions, and anything else between them and the outputs.
	Float32 []string
	// Casts counts the Cast nodes added at the boundaries.
	Casts int
}

func (r *Report) String() string {
	return fmt.Sprintf("%d values rounded to float16, %d nodes kept float32, %d casts added", r.Rounded, len(r.Float32), r.Casts)
}

// plan splits a graph into the float16 part and the float32 tail.
type plan struct {
	g      *onnx.Graph
	ix     *onnx.Index
	tail   map[*onnx.Node]bool // kept float32
	inputs map[string]bool     // graph inputs that are not initializers
	keep   map[string]bool     // values ONNX types tensor(float) whatever the data type
}

// newPlan finds the float32 tail: every node reached walking back from the
// graph outputs without crossing a Conv. In a YOLO graph these are the
// Detect decode (reshape, sigmoid, grid and anchor arithmetic, concat)
// behind the last convolutions; a raw-heads model has none. Their inputs
// stay FLOAT: the decode multiplies by strides and anchors to pixel
// coordinates, where float16's 11 bits would cost a quarter pixel at 640.
func newPlan(g *onnx.Graph) (*plan, error) {
	p := &plan{g: g, ix: onnx.NewIndex(g), tail: map[*onnx.Node]bool{}, inputs: map[string]bool{}, keep: map[string]bool{}}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.G != nil || len(a.Graphs) > 0 {
				return nil, fmt.Errorf("%w: node %s has a subgraph", ErrUnsupported, n.Name)
			}
		}
		for _, i := range floatSlots[n.OpType] {
			if i < len(n.Inputs) && n.Inputs[i] != "" {
				p.keep[n.Inputs[i]] = true
			}
		}
	}
	for _, vi := range g.Inputs {
		if p.ix.Initializers[vi.Name] == nil {
			p.inputs[vi.Name] = true
		}
	}
	var stack []*onnx.Node
	for _, o := range g.Outputs {
		if n := p.ix.Producer[o.Name]; n != nil && n.OpType != "Conv" {
			stack = append(stack, n)
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.tail[n] {
			continue
		}
		p.tail[n] = true
		for _, in := range n.Inputs {
			if q := p.ix.Producer[in]; q != nil && q.OpType != "Conv" && !p.tail[q] {
				stack = append(stack, q)
			}
		}
	}
	// A float16 node must not read a float value the tail computes: only
	// shapes and sizes (integers) may cross that way.
	for _, n := range g.Nodes {
		if p.tail[n] {
			continue
		}
		for _, in := range n.Inputs {
			if q := p.ix.Producer[in]; q != nil && p.tail[q] && q.OpType != "Shape" && q.OpType != "Size" {
				return nil, fmt.Errorf("%w: node %s reads %s from the float32 decode (%s %s)", ErrUnsupported, n.Name, in, q.OpType, q.Name)
			}
		}
	}
	return p, nil
}

// halfReaders splits the readers of value v into float16 nodes and the rest.
func (p *plan) halfReaders(v string) (half, full []*onnx.Node) {
	for _, n := range p.ix.Consumers[v] {
		if p.tail[n] {
			full = append(full, n)
		} else {
			half = append(half, n)
		}
	}
	return half, full
}

func (p *plan) tailNames() []string {
	var names []string
	for _, n := range p.g.Nodes {
		if p.tail[n] {
			names = append(names, n.Name)
		}
	}
	return names
}

// rename makes nodes read to where they read from.
func rename(nodes []*onnx.Node, from, to string) {
	for _, n := range nodes {
		for i, in := range n.Inputs {
			if in == from {
				n.Inputs[i] = to
			}
		}
	}
}

// Mixed converts m in place to float16 weights and activations while its
// inputs, outputs and Detect decode stay float32: a Cast to FLOAT16 after
// each float input, and one back to FLOAT after each last convolution that
// feeds the decode or an output. Callers see the model they had; a GPU
// runs the convolutions, nearly all of the work, on float16 tensor cores.
// Convert is the all-float16 form (ultralytics' export --half).
func Mixed(m *onnx.Model) (*Report, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("convert to float16: %w", onnx.ErrNoGraph)
	}
	g := m.Graph
	p, err := newPlan(g)
	if err != nil {
		return nil, fmt.Errorf("convert to float16: %w", err)
	}
	rep := &Report{Float32: p.tailNames()}
	if err := p.eachHalfInitializer(g, func(t *onnx.Tensor) error {
		n, err := toHalf(t)
		rep.Rounded += n
		return err
	}); err != nil {
		return nil, fmt.Errorf("convert to float16: %w", err)
	}
	var nodes []*onnx.Node
	for _, vi := range g.Inputs {
		if !p.inputs[vi.Name] || elemType(vi) != onnx.Float {
			continue
		}
		half, _ := p.halfReaders(vi.Name)
		if len(half) == 0 {
			continue
		}
		rename(half, vi.Name, vi.Name+suffix)
		nodes = append(nodes, cast(vi.Name, vi.Name+suffix, onnx.Float16))
		rep.Casts++
	}
	halfValues := map[string]bool{}
	for _, n := range g.Nodes {
		nodes = append(nodes, n)
		if p.tail[n] {
			continue
		}
		for _, a := range n.Attrs {
			switch {
			case n.OpType == "Constant" && a.T != nil && a.T.DataType == onnx.Float && !p.keep[n.Outputs[0]]:
				k, err := toHalf(a.T)
				if err != nil {
					return nil, fmt.Errorf("convert to float16: node %s: %w", n.Name, err)
				}
				rep.Rounded += k
			case n.OpType == "Cast" && a.Name == "to" && a.I == int64(onnx.Float):
				a.I = int64(onnx.Float16)
			}
		}
		for i, o := range n.Outputs {
			if o == "" {
				continue
			}
			half, full := p.halfReaders(o)
			if len(full) == 0 && !p.ix.GraphOutputs[o] {
				halfValues[o] = true
				continue
			}
			// A last convolution: it writes float16, the tail reads float32.
			n.Outputs[i] = o + suffix
			rename(half, o, o+suffix)
			halfValues[o+suffix] = true
			nodes = append(nodes, cast(o+suffix, o, onnx.Float))
			rep.Casts++
		}
	}
	g.Nodes = nodes
	for _, vi := range g.ValueInfo {
		if halfValues[vi.Name] && elemType(vi) == onnx.Float && !p.keep[vi.Name] {
			vi.Type.Tensor.ElemType = onnx.Float16
		}
	}
	return rep, nil
}

// Twin rounds, in place, every float initializer and constant that Mixed
// would convert, to float16 and back, leaving m float32 throughout: the
// float32 twin of Mixed's model. It runs wherever float32 does (ONNX
// Runtime's CPU provider has few float16 kernels), and what it changes in
// the detections is what float16 weights change; float16 activations add
// the rest.
func Twin(m *onnx.Model) (*Report, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("round weights to float16: %w", onnx.ErrNoGraph)
	}
	g := m.Graph
	p, err := newPlan(g)
	if err != nil {
		return nil, fmt.Errorf("round weights to float16: %w", err)
	}
	rep := &Report{Float32: p.tailNames()}
	round := func(t *onnx.Tensor) error {
		v, err := t.Floats()
		if err != nil {
			return err
		}
		for i, f := range v {
			v[i] = onnx.HalfToFloat(onnx.FloatToHalf(f))
		}
		*t = *onnx.NewFloat(t.Name, t.Dims, v)
		rep.Rounded += int64(len(v))
		return nil
	}
	if err := p.eachHalfInitializer(g, round); err != nil {
		return nil, fmt.Errorf("round weights to float16: %w", err)
	}
	for _, n := range g.Nodes {
		if p.tail[n] || n.OpType != "Constant" || p.keep[n.Outputs[0]] {
			continue
		}
		for _, a := range n.Attrs {
			if a.T != nil && a.T.DataType == onnx.Float {
				if err := round(a.T); err != nil {
					return nil, fmt.Errorf("round weights to float16: node %s: %w", n.Name, err)
				}
			}
		}
	}
	return rep, nil
}

// eachHalfInitializer calls fn on every float initializer the float16 part
// reads. One that the float32 part reads too is split first: the float16
// part gets its own copy, which fn receives, and the original stays.
func (p *plan) eachHalfInitializer(g *onnx.Graph, fn func(*onnx.Tensor) error) error {
	for _, t := range slices.Clone(g.Initializers) {
		if t.DataType != onnx.Float || p.keep[t.Name] {
			continue
		}
		half, full := p.halfReaders(t.Name)
		if len(half) == 0 {
			continue
		}
		if len(full) > 0 {
			c := *t
			c.Name = t.Name + suffix
			rename(half, t.Name, c.Name)
			t = &c
			g.Initializers = append(g.Initializers, t)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

func cast(from, to string, typ onnx.DataType) *onnx.Node {
	return &onnx.Node{Name: to, OpType: "Cast", Inputs: []string{from}, Outputs: []string{to},
		Attrs: []*onnx.Attribute{onnx.Int("to", int64(typ))}}
}

func elemType(vi *onnx.ValueInfo) onnx.DataType {
	if vi.Type == nil || vi.Type.Tensor == nil {
		return onnx.Undefined
	}
	return vi.Type.Tensor.ElemType
}
