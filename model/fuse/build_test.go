package fuse

import (
	"fmt"
	"math/rand/v2"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// builder assembles small ONNX graphs for the synthetic tests: one input
// "x" of [1, C, H, W], random weights, nodes named after their op.
type builder struct {
	g   *onnx.Graph
	r   *rand.Rand
	n   int
	ir  int64
	ops int64
	c   int64
	h   int64
}

func newBuilder(c, h int64) *builder {
	b := &builder{
		g:   &onnx.Graph{Name: "synthetic"},
		r:   rand.New(rand.NewPCG(uint64(c), uint64(h))),
		ir:  7,
		ops: 13,
		c:   c,
		h:   h,
	}
	b.g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("x", onnx.Float, onnx.Dim{Value: 1}, onnx.Dim{Value: c}, onnx.Dim{Value: h}, onnx.Dim{Value: h})}
	return b
}

func (b *builder) name(base string) string {
	b.n++
	return fmt.Sprintf("%s_%d", base, b.n)
}

// init adds an initializer of normal values times scale and returns its name.
func (b *builder) init(base string, scale float64, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(b.r.NormFloat64() * scale)
	}
	return b.initVals(base, dims, vals)
}

func (b *builder) initVals(base string, dims []int64, vals []float32) string {
	name := b.name(base)
	b.g.Initializers = append(b.g.Initializers, onnx.NewFloat(name, dims, vals))
	return name
}

// uniform adds an initializer of values in [lo, hi).
func (b *builder) uniform(base string, lo, hi float64, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(lo + (hi-lo)*b.r.Float64())
	}
	return b.initVals(base, dims, vals)
}

// constant adds a Constant node holding a tensor and returns its output.
func (b *builder) constant(dims []int64, vals []float32) string {
	return b.node("Constant", nil, &onnx.Attribute{Name: "value", Type: onnx.AttrTensor, T: onnx.NewFloat("", dims, vals)})
}

// node appends a node and returns its (first) output.
func (b *builder) node(op string, inputs []string, attrs ...*onnx.Attribute) string {
	name := b.name(op)
	b.g.Nodes = append(b.g.Nodes, &onnx.Node{Name: name, OpType: op, Inputs: inputs, Outputs: []string{name + "_out"}, Attrs: attrs})
	return name + "_out"
}

// last is the node appended last.
func (b *builder) last() *onnx.Node { return b.g.Nodes[len(b.g.Nodes)-1] }

// convOpts describes a Conv; zero values mean 1 (stride, group, dilation) or
// no padding, and k is the square kernel unless kh/kw are set.
type convOpts struct {
	cout, k, kh, kw, stride, group, dilation int64
	pads                                     []int64
	bias                                     bool
}

func (b *builder) conv(x string, cin int64, o convOpts) string {
	if o.stride == 0 {
		o.stride = 1
	}
	if o.group == 0 {
		o.group = 1
	}
	if o.dilation == 0 {
		o.dilation = 1
	}
	if o.kh == 0 {
		o.kh, o.kw = o.k, o.k
	}
	if o.cout == 0 {
		o.cout = cin
	}
	if o.pads == nil {
		o.pads = []int64{0, 0, 0, 0}
	}
	ins := []string{x, b.init("w", 0.3, o.cout, cin/o.group, o.kh, o.kw)}
	if o.bias {
		ins = append(ins, b.init("b", 0.2, o.cout))
	}
	return b.node("Conv", ins,
		onnx.Ints("dilations", o.dilation, o.dilation), onnx.Int("group", o.group),
		onnx.Ints("kernel_shape", o.kh, o.kw), onnx.Ints("pads", o.pads...), onnx.Ints("strides", o.stride, o.stride))
}

// conv3 and conv1 are the usual RepVGG branches with bias (BN already folded).
func (b *builder) conv3(x string) string {
	return b.conv(x, b.c, convOpts{k: 3, pads: []int64{1, 1, 1, 1}, bias: true})
}

func (b *builder) conv1(x string) string { return b.conv(x, b.c, convOpts{k: 1, bias: true}) }

// bn adds an inference-mode BatchNormalization with random statistics.
func (b *builder) bn(x string, c int64) string {
	return b.node("BatchNormalization", []string{
		x, b.uniform("gamma", 0.5, 1.5, c), b.init("beta", 0.2, c), b.init("mean", 0.5, c), b.uniform("var", 0.2, 2, c),
	}, onnx.FloatAttr("epsilon", 1e-3))
}

func (b *builder) add(a, c string) string { return b.node("Add", []string{a, c}) }

// model finishes the graph with y as its output.
func (b *builder) model(y string) *onnx.Model {
	b.g.Outputs = []*onnx.ValueInfo{anyNCHW(y)}
	return &onnx.Model{
		IRVersion:    b.ir,
		OpsetImports: []onnx.OpsetID{{Version: b.ops}},
		ProducerName: "fuse_test",
		Graph:        b.g,
		Metadata:     []onnx.StringPair{{Key: "stride", Value: "[8]"}},
	}
}

func ones(n int64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// anyNCHW is a float value of rank 4 with symbolic dims (the checker wants a
// shape on every graph output).
func anyNCHW(name string) *onnx.ValueInfo {
	return onnx.TensorValue(name, onnx.Float, onnx.Dim{Param: "n"}, onnx.Dim{Param: "c"}, onnx.Dim{Param: "h"}, onnx.Dim{Param: "w"})
}
