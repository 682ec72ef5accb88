package yolo

import (
	"fmt"
	"math"
	"slices"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// builder appends nodes and initializers to a graph. The first error sticks
// in err and turns later calls into no-ops, so a module reads linearly.
type builder struct {
	g       *onnx.Graph
	err     error
	names   map[string]int // node names used, for unique suffixes
	src     Source
	eps     float32
	used    map[string]bool // weight names read from src
	missing string          // the first weight src did not have, for diagnostics
	misfit  string          // the first weight src has in another shape
	params  int64           // weight values loaded so far
	leaky   bool            // BottleneckCSP's activation is LeakyReLU(0.1)
}

func newBuilder(name string, src Source, eps float64) *builder {
	return &builder{g: &onnx.Graph{Name: name}, names: make(map[string]int), src: src, eps: float32(eps), used: make(map[string]bool)}
}

// add appends an op node under scope and returns its nOut output names.
// Node names follow the torch exporter ("/model.2.cv1.conv/Conv") so a
// graph can be read against its PyTorch module tree.
func (b *builder) add(op, scope string, inputs []string, nOut int, attrs ...*onnx.Attribute) []string {
	outs := make([]string, nOut)
	if b.err != nil {
		return outs
	}
	name := "/" + scope + "/" + op
	if k := b.names[name]; k > 0 {
		b.names[name]++
		name = fmt.Sprintf("%s_%d", name, k)
	} else {
		b.names[name] = 1
	}
	for i := range outs {
		outs[i] = fmt.Sprintf("%s_output_%d", name, i)
	}
	b.g.Nodes = append(b.g.Nodes, &onnx.Node{Name: name, OpType: op, Inputs: inputs, Outputs: outs, Attrs: attrs})
	return outs
}

func (b *builder) op(op, scope string, inputs []string, attrs ...*onnx.Attribute) string {
	return b.add(op, scope, inputs, 1, attrs...)[0]
}

// param loads a weight from the Source and adds it as an initializer.
func (b *builder) param(name string, shape ...int) string {
	if b.err != nil {
		return name
	}
	n := int64(1)
	for _, d := range shape {
		n *= int64(max(d, 0))
		if n > maxParams {
			break
		}
	}
	if b.params += n; b.params > maxParams {
		b.err = fmt.Errorf("load weight %s: %w: the model file asks for more than %d weights", name, ErrModelFile, int64(maxParams))
		return name
	}
	if sh, ok := b.src.(shaper); ok {
		have, ok := sh.Shape(name)
		switch {
		case !ok && b.missing == "":
			b.missing = name
		case ok && !slices.Equal(have, shape) && b.misfit == "":
			b.misfit = fmt.Sprintf("%s %v where this file needs %v", name, have, shape)
		}
	}
	data, err := b.src.Tensor(name, shape)
	if err != nil {
		b.err = fmt.Errorf("load weight %s: %w", name, err)
		return name
	}
	b.used[name] = true
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	if int64(len(data)) != n {
		b.err = fmt.Errorf("load weight %s: %w: %d values for shape %v", name, ErrWeight, len(data), shape)
		return name
	}
	b.g.Initializers = append(b.g.Initializers, onnx.NewFloat(name, dims, data))
	return name
}

// has says whether the Source holds a tensor, when it can tell.
func (b *builder) has(name string) bool {
	sh, ok := b.src.(shaper)
	if !ok {
		return false
	}
	_, have := sh.Shape(name)
	return have
}

// constant adds a float initializer that is not a weight (decode tables).
func (b *builder) constant(name string, dims []int64, data []float32) string {
	b.g.Initializers = append(b.g.Initializers, onnx.NewFloat(name, dims, data))
	return name
}

func (b *builder) constInt64(name string, data ...int64) string {
	b.g.Initializers = append(b.g.Initializers, onnx.NewInt64(name, []int64{int64(len(data))}, data))
	return name
}

func (b *builder) hasInit(name string) bool {
	for _, t := range b.g.Initializers {
		if t.Name == name {
			return true
		}
	}
	return false
}

// conv2d is a bare Conv node, with a bias input when bias is set.
func (b *builder) conv2d(scope, x, w, bias string, k, s, p, g int) string {
	in := []string{x, w}
	if bias != "" {
		in = append(in, bias)
	}
	return b.op("Conv", scope, in,
		onnx.Ints("dilations", 1, 1), onnx.Int("group", int64(g)), onnx.Ints("kernel_shape", int64(k), int64(k)),
		onnx.Ints("pads", int64(p), int64(p), int64(p), int64(p)), onnx.Ints("strides", int64(s), int64(s)))
}

// convBN is Conv2d (no bias) + BatchNorm2d, named scope.conv.* and scope.bn.*
// as in ultralytics' Conv and YOLOv5-Lite's conv_bn. Weights that hold the
// conv with a bias and no BN (a fused model's state_dict, as ultralytics'
// Model.fuse() leaves each Conv) give the conv with its bias alone.
func (b *builder) convBN(scope, x string, c1, c2, k, s, p, g int) string {
	w := b.param(scope+".conv.weight", c2, c1/g, k, k)
	if b.has(scope+".conv.bias") && !b.has(scope+".bn.weight") {
		return b.conv2d(scope+".conv", x, w, b.param(scope+".conv.bias", c2), k, s, p, g)
	}
	return b.batchNorm(scope+".bn", b.conv2d(scope+".conv", x, w, "", k, s, p, g), c2)
}

// batchNorm is an inference-mode BatchNorm2d; ONNX's momentum is the keep
// ratio, so ultralytics' 0.03 becomes 0.97.
func (b *builder) batchNorm(scope, x string, c int) string {
	return b.op("BatchNormalization", scope, []string{x,
		b.param(scope+".weight", c), b.param(scope+".bias", c),
		b.param(scope+".running_mean", c), b.param(scope+".running_var", c)},
		onnx.FloatAttr("epsilon", b.eps), onnx.FloatAttr("momentum", 0.97))
}

// silu is x·sigmoid(x), as the torch exporter writes it for opset 13.
func (b *builder) silu(scope, x string) string {
	return b.op("Mul", scope, []string{x, b.op("Sigmoid", scope, []string{x})})
}

// conv is ultralytics' Conv: conv + BN + SiLU.
func (b *builder) conv(scope, x string, c1, c2, k, s, p int) string {
	return b.convG(scope, x, c1, c2, k, s, p, 1)
}

func (b *builder) convG(scope, x string, c1, c2, k, s, p, g int) string {
	return b.silu(scope+".act", b.convBN(scope, x, c1, c2, k, s, p, g))
}

// repVGG is YOLOv5-Lite's RepVGGBlock. Training form: a 3x3 conv+BN, a 1x1
// conv+BN with the same stride, and (when shapes allow) a BN-only identity,
// summed and then activated. Deploy form: one 3x3 conv with bias
// (rbr_reparam), as RepVGGBlock(deploy=True) holds it.
func (b *builder) repVGG(scope, x string, c1, c2, s int, deploy bool) string {
	if deploy {
		w := b.param(scope+".rbr_reparam.weight", c2, c1, 3, 3)
		bias := b.param(scope+".rbr_reparam.bias", c2)
		return b.silu(scope+".act", b.conv2d(scope+".rbr_reparam", x, w, bias, 3, s, 1, 1))
	}
	y := b.op("Add", scope, []string{
		b.convBN(scope+".rbr_dense", x, c1, c2, 3, s, 1, 1),
		b.convBN(scope+".rbr_1x1", x, c1, c2, 1, s, 0, 1),
	})
	if c1 == c2 && s == 1 {
		y = b.op("Add", scope, []string{y, b.batchNorm(scope+".rbr_identity", x, c1)})
	}
	return b.silu(scope+".act", y)
}

// repDeploy says whether a RepVGG block's weights are in deploy form: the
// row says so, or the weights hold rbr_reparam and no training branches.
func (b *builder) repDeploy(scope string, row bool) bool {
	return row || (b.has(scope+".rbr_reparam.weight") && !b.has(scope+".rbr_dense.conv.weight"))
}

// bottleneck is ultralytics' Bottleneck(c1, c2, shortcut, g, e): cv1 1x1 to
// c2·e, cv2 3x3 (or a RepVGG block, in vidpipe's C3RepVGG) back to c2.
func (b *builder) bottleneck(scope, x string, c1, c2 int, shortcut bool, g int, e float64, rep bool) string {
	c := int(float64(c2) * e)
	y := b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	if rep {
		y = b.repVGG(scope+".cv2", y, c, c2, 1, b.repDeploy(scope+".cv2", false))
	} else {
		y = b.convG(scope+".cv2", y, c, c2, 3, 1, 1, g)
	}
	if shortcut && c1 == c2 {
		y = b.op("Add", scope, []string{x, y})
	}
	return y
}

// c3 is ultralytics' C3: cv3(concat(m(cv1(x)), cv2(x))). The concat order
// (bottlenecks first) is part of the weight layout of cv3.
func (b *builder) c3(scope, x string, c1, c2, n int, shortcut bool, g int, e float64, rep bool) string {
	c := int(float64(c2) * e)
	y := b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	for k := range n {
		y = b.bottleneck(fmt.Sprintf("%s.m.%d", scope, k), y, c, c, shortcut, g, 1.0, rep)
	}
	z := b.conv(scope+".cv2", x, c1, c, 1, 1, 0)
	return b.conv(scope+".cv3", b.concat(scope, 1, y, z), 2*c, c2, 1, 1, 0)
}

// bottleneckCSP is YOLOv5's BottleneckCSP: cv4(act(bn(concat(cv3(m(cv1(x))),
// cv2(x))))), where cv2 and cv3 are bare 1x1 convs. The activation after
// the shared BN is SiLU, as in YOLOv5 v6.0 and later, or LeakyReLU(0.1) as
// in v4.0-v5.0 when the model file says so.
func (b *builder) bottleneckCSP(scope, x string, c1, c2, n int, shortcut bool, g int, e float64) string {
	c := int(float64(c2) * e)
	y := b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	for k := range n {
		y = b.bottleneck(fmt.Sprintf("%s.m.%d", scope, k), y, c, c, shortcut, g, 1.0, false)
	}
	y = b.conv2d(scope+".cv3", y, b.param(scope+".cv3.weight", c, c, 1, 1), "", 1, 1, 0, 1)
	z := b.conv2d(scope+".cv2", x, b.param(scope+".cv2.weight", c, c1, 1, 1), "", 1, 1, 0, 1)
	y = b.batchNorm(scope+".bn", b.concat(scope, 1, y, z), 2*c)
	if b.leaky {
		y = b.op("LeakyRelu", scope+".act", []string{y}, onnx.FloatAttr("alpha", 0.1))
	} else {
		y = b.silu(scope+".act", y)
	}
	return b.conv(scope+".cv4", y, 2*c, c2, 1, 1, 0)
}

// sppf is ultralytics' SPPF: three chained max pools of kernel k.
func (b *builder) sppf(scope, x string, c1, c2, k int) string {
	c := c1 / 2
	x = b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	y1 := b.maxPool(scope+".m", x, k)
	y2 := b.maxPool(scope+".m", y1, k)
	y3 := b.maxPool(scope+".m", y2, k)
	return b.conv(scope+".cv2", b.concat(scope, 1, x, y1, y2, y3), 4*c, c2, 1, 1, 0)
}

// spp is YOLOv5's SPP: parallel max pools of kernels ks on cv1's output.
func (b *builder) spp(scope, x string, c1, c2 int, ks []int) string {
	c := c1 / 2
	x = b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	parts := []string{x}
	for i, k := range ks {
		parts = append(parts, b.maxPool(fmt.Sprintf("%s.m.%d", scope, i), x, k))
	}
	return b.conv(scope+".cv2", b.concat(scope, 1, parts...), c*(len(ks)+1), c2, 1, 1, 0)
}

func (b *builder) maxPool(scope, x string, k int) string {
	p := int64(k / 2)
	return b.op("MaxPool", scope, []string{x}, onnx.Int("ceil_mode", 0), onnx.Ints("dilations", 1, 1),
		onnx.Ints("kernel_shape", int64(k), int64(k)), onnx.Ints("pads", p, p, p, p), onnx.Ints("strides", 1, 1))
}

// focus is YOLOv5's Focus: space-to-depth by four strided slices
// (x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]),
// concatenated on channels, then a Conv named scope.conv.
func (b *builder) focus(scope, x string, c1, c2, k, s, p, g int) string {
	if !b.hasInit("const.focus_axes") {
		b.constInt64("const.focus_axes", 2, 3)
		b.constInt64("const.focus_steps", 2, 2)
		b.constInt64("const.focus_ends", math.MaxInt64, math.MaxInt64)
		for _, st := range [][2]int64{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
			b.constInt64(fmt.Sprintf("const.focus_starts_%d%d", st[0], st[1]), st[0], st[1])
		}
	}
	var parts []string
	for _, st := range [][2]int64{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
		parts = append(parts, b.op("Slice", scope, []string{x, fmt.Sprintf("const.focus_starts_%d%d", st[0], st[1]),
			"const.focus_ends", "const.focus_axes", "const.focus_steps"}))
	}
	return b.convG(scope+".conv", b.concat(scope, 1, parts...), 4*c1, c2, k, s, p, g)
}

func (b *builder) concat(scope string, axis int64, xs ...string) string {
	return b.op("Concat", scope, xs, onnx.Int("axis", axis))
}

// upsample is nn.Upsample(scale_factor=f, mode="nearest") as exported at opset 13.
func (b *builder) upsample(scope, x string, f int) string {
	scales := "const.upsample_scales"
	if f != 2 {
		scales = fmt.Sprintf("const.upsample_scales_%d", f)
	}
	if !b.hasInit(scales) {
		b.constant(scales, []int64{4}, []float32{1, 1, float32(f), float32(f)})
	}
	return b.op("Resize", scope, []string{x, "", scales},
		onnx.StringAttr("coordinate_transformation_mode", "asymmetric"), onnx.FloatAttr("cubic_coeff_a", -0.75),
		onnx.StringAttr("mode", "nearest"), onnx.StringAttr("nearest_mode", "floor"))
}
