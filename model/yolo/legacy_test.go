package yolo

// This file freezes the hard-coded v6 builder that the model-file builder
// replaced, so TestLegacyIdentical can prove the YAML path emits the same
// bytes for yolov5s and both repyolov5s variants. Test-only: do not extend.

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// legacyConfig is the old Config after withDefaults.
type legacyConfig struct {
	Arch, Rep    string
	Width, Depth float64
	ImgSize      int
	Classes      int
	Names        []string
	Weights      Source
}

func (c legacyConfig) width(ch int) int {
	return int(math.Ceil(float64(ch)*c.Width/8)) * 8
}

func (c legacyConfig) depth(n int) int {
	if n <= 1 {
		return n
	}
	return max(int(math.RoundToEven(float64(n)*c.Depth)), 1)
}

// legacyBuild is the old Build.
func legacyBuild(cfg legacyConfig) (*onnx.Model, error) {
	b := newLegacyBuilder(cfg)
	b.network()
	if b.err != nil {
		return nil, fmt.Errorf("build %s: %w", cfg.Arch, b.err)
	}
	return &onnx.Model{
		IRVersion:    7,
		OpsetImports: []onnx.OpsetID{{Version: 13}},
		ProducerName: "vidpipe",
		Graph:        b.g,
		Metadata: []onnx.StringPair{
			{Key: "stride", Value: "32"},
			{Key: "names", Value: pyDict(cfg.Names)},
		},
	}, nil
}

// legacyBuilder appends nodes and initializers to a graph. The first error sticks
// in err and turns later calls into no-ops, so the network reads linearly.
type legacyBuilder struct {
	cfg   legacyConfig
	g     *onnx.Graph
	err   error
	names map[string]int // node names used, for unique suffixes
}

func newLegacyBuilder(cfg legacyConfig) *legacyBuilder {
	return &legacyBuilder{cfg: cfg, g: &onnx.Graph{Name: cfg.Arch}, names: make(map[string]int)}
}

// add appends an op node under scope and returns its nOut output names.
// Node names follow the torch exporter ("/model.2.cv1.conv/Conv") so a
// graph can be read against its PyTorch module tree.
func (b *legacyBuilder) add(op, scope string, inputs []string, nOut int, attrs ...*onnx.Attribute) []string {
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

func (b *legacyBuilder) op(op, scope string, inputs []string, attrs ...*onnx.Attribute) string {
	return b.add(op, scope, inputs, 1, attrs...)[0]
}

// param loads a weight from the Source and adds it as an initializer.
func (b *legacyBuilder) param(name string, shape ...int) string {
	if b.err != nil {
		return name
	}
	data, err := b.cfg.Weights.Tensor(name, shape)
	if err != nil {
		b.err = fmt.Errorf("load weight %s: %w", name, err)
		return name
	}
	n := 1
	dims := make([]int64, len(shape))
	for i, d := range shape {
		n *= d
		dims[i] = int64(d)
	}
	if len(data) != n {
		b.err = fmt.Errorf("load weight %s: %w: %d values for shape %v", name, ErrWeight, len(data), shape)
		return name
	}
	b.g.Initializers = append(b.g.Initializers, onnx.NewFloat(name, dims, data))
	return name
}

// constant adds a float initializer that is not a weight (decode tables).
func (b *legacyBuilder) constant(name string, dims []int64, data []float32) string {
	b.g.Initializers = append(b.g.Initializers, onnx.NewFloat(name, dims, data))
	return name
}

func (b *legacyBuilder) constInt64(name string, data ...int64) string {
	b.g.Initializers = append(b.g.Initializers, onnx.NewInt64(name, []int64{int64(len(data))}, data))
	return name
}

// convBN is Conv2d (no bias) + BatchNorm2d, named scope.conv.* and scope.bn.*
// as in ultralytics' Conv and YOLOv5-Lite's conv_bn.
func (b *legacyBuilder) convBN(scope, x string, c1, c2, k, s, p int) string {
	w := b.param(scope+".conv.weight", c2, c1, k, k)
	y := b.op("Conv", scope+".conv", []string{x, w},
		onnx.Ints("dilations", 1, 1), onnx.Int("group", 1), onnx.Ints("kernel_shape", int64(k), int64(k)),
		onnx.Ints("pads", int64(p), int64(p), int64(p), int64(p)), onnx.Ints("strides", int64(s), int64(s)))
	return b.batchNorm(scope+".bn", y, c2)
}

// batchNorm is an inference-mode BatchNorm2d; ONNX's momentum is the keep
// ratio, so ultralytics' 0.03 becomes 0.97.
func (b *legacyBuilder) batchNorm(scope, x string, c int) string {
	return b.op("BatchNormalization", scope, []string{x,
		b.param(scope+".weight", c), b.param(scope+".bias", c),
		b.param(scope+".running_mean", c), b.param(scope+".running_var", c)},
		onnx.FloatAttr("epsilon", 1e-3), onnx.FloatAttr("momentum", 0.97))
}

// silu is x·sigmoid(x), as the torch exporter writes it for opset 13.
func (b *legacyBuilder) silu(scope, x string) string {
	return b.op("Mul", scope, []string{x, b.op("Sigmoid", scope, []string{x})})
}

// conv is ultralytics' Conv: conv + BN + SiLU.
func (b *legacyBuilder) conv(scope, x string, c1, c2, k, s, p int) string {
	return b.silu(scope+".act", b.convBN(scope, x, c1, c2, k, s, p))
}

// repVGG is YOLOv5-Lite's RepVGGBlock in training form: a 3x3 conv+BN, a 1x1
// conv+BN with the same stride, and (when shapes allow) a BN-only identity,
// summed and then activated.
func (b *legacyBuilder) repVGG(scope, x string, c1, c2, s int) string {
	y := b.op("Add", scope, []string{
		b.convBN(scope+".rbr_dense", x, c1, c2, 3, s, 1),
		b.convBN(scope+".rbr_1x1", x, c1, c2, 1, s, 0),
	})
	if c1 == c2 && s == 1 {
		y = b.op("Add", scope, []string{y, b.batchNorm(scope+".rbr_identity", x, c1)})
	}
	return b.silu(scope+".act", y)
}

// conv3 is a 3x3 Conv, or a RepVGG block in its place.
func (b *legacyBuilder) conv3(scope, x string, c1, c2, s int, rep bool) string {
	if rep {
		return b.repVGG(scope, x, c1, c2, s)
	}
	return b.conv(scope, x, c1, c2, 3, s, 1)
}

// bottleneck is ultralytics' Bottleneck with e=1.0, as C3 uses it.
func (b *legacyBuilder) bottleneck(scope, x string, c1, c2 int, shortcut, rep bool) string {
	y := b.conv(scope+".cv1", x, c1, c2, 1, 1, 0)
	y = b.conv3(scope+".cv2", y, c2, c2, 1, rep)
	if shortcut && c1 == c2 {
		y = b.op("Add", scope, []string{x, y})
	}
	return y
}

// c3 is ultralytics' C3: cv3(concat(m(cv1(x)), cv2(x))). The concat order
// (bottlenecks first) is part of the weight layout of cv3.
func (b *legacyBuilder) c3(scope, x string, c1, c2, n int, shortcut, rep bool) string {
	c := c2 / 2
	y := b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	for k := range n {
		y = b.bottleneck(fmt.Sprintf("%s.m.%d", scope, k), y, c, c, shortcut, rep)
	}
	z := b.conv(scope+".cv2", x, c1, c, 1, 1, 0)
	return b.conv(scope+".cv3", b.concat(scope, 1, y, z), 2*c, c2, 1, 1, 0)
}

// sppf is ultralytics' SPPF with k=5: three chained max pools.
func (b *legacyBuilder) sppf(scope, x string, c1, c2 int) string {
	c := c1 / 2
	x = b.conv(scope+".cv1", x, c1, c, 1, 1, 0)
	pool := func(in string) string {
		return b.op("MaxPool", scope+".m", []string{in}, onnx.Int("ceil_mode", 0), onnx.Ints("dilations", 1, 1),
			onnx.Ints("kernel_shape", 5, 5), onnx.Ints("pads", 2, 2, 2, 2), onnx.Ints("strides", 1, 1))
	}
	y1 := pool(x)
	y2 := pool(y1)
	y3 := pool(y2)
	return b.conv(scope+".cv2", b.concat(scope, 1, x, y1, y2, y3), 4*c, c2, 1, 1, 0)
}

func (b *legacyBuilder) concat(scope string, axis int64, xs ...string) string {
	return b.op("Concat", scope, xs, onnx.Int("axis", axis))
}

// upsample is nn.Upsample(scale_factor=2, mode="nearest") as exported at opset 13.
func (b *legacyBuilder) upsample(scope, x string) string {
	scales := "const.upsample_scales"
	if !b.hasInit(scales) {
		b.constant(scales, []int64{4}, []float32{1, 1, 2, 2})
	}
	return b.op("Resize", scope, []string{x, "", scales},
		onnx.StringAttr("coordinate_transformation_mode", "asymmetric"), onnx.FloatAttr("cubic_coeff_a", -0.75),
		onnx.StringAttr("mode", "nearest"), onnx.StringAttr("nearest_mode", "floor"))
}

func (b *legacyBuilder) hasInit(name string) bool {
	for _, t := range b.g.Initializers {
		if t.Name == name {
			return true
		}
	}
	return false
}

// network emits the yolov5s.yaml (v6.0+) layers 0-24.
func (b *legacyBuilder) network() {
	cfg := b.cfg
	c1, c2, c3, c4, c5 := cfg.width(64), cfg.width(128), cfg.width(256), cfg.width(512), cfg.width(1024)
	down := cfg.Arch == ArchRepYOLOv5s // the six stride-2 3x3 convs
	bott := down && cfg.Rep == RepAll  // the bottleneck 3x3 convs
	img := int64(cfg.ImgSize)
	b.g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float,
		onnx.Dim{Param: "batch"}, onnx.Dim{Value: 3}, onnx.Dim{Value: img}, onnx.Dim{Value: img})}
	l := make([]string, 25)
	l[0] = b.conv("model.0", "images", 3, c1, 6, 2, 2)
	l[1] = b.conv3("model.1", l[0], c1, c2, 2, down)
	l[2] = b.c3("model.2", l[1], c2, c2, cfg.depth(3), true, bott)
	l[3] = b.conv3("model.3", l[2], c2, c3, 2, down)
	l[4] = b.c3("model.4", l[3], c3, c3, cfg.depth(6), true, bott)
	l[5] = b.conv3("model.5", l[4], c3, c4, 2, down)
	l[6] = b.c3("model.6", l[5], c4, c4, cfg.depth(9), true, bott)
	l[7] = b.conv3("model.7", l[6], c4, c5, 2, down)
	l[8] = b.c3("model.8", l[7], c5, c5, cfg.depth(3), true, bott)
	l[9] = b.sppf("model.9", l[8], c5, c5)
	l[10] = b.conv("model.10", l[9], c5, c4, 1, 1, 0)
	l[11] = b.upsample("model.11", l[10])
	l[12] = b.concat("model.12", 1, l[11], l[6])
	l[13] = b.c3("model.13", l[12], 2*c4, c4, cfg.depth(3), false, bott)
	l[14] = b.conv("model.14", l[13], c4, c3, 1, 1, 0)
	l[15] = b.upsample("model.15", l[14])
	l[16] = b.concat("model.16", 1, l[15], l[4])
	l[17] = b.c3("model.17", l[16], 2*c3, c3, cfg.depth(3), false, bott)
	l[18] = b.conv3("model.18", l[17], c3, c3, 2, down)
	l[19] = b.concat("model.19", 1, l[18], l[14])
	l[20] = b.c3("model.20", l[19], 2*c3, c4, cfg.depth(3), false, bott)
	l[21] = b.conv3("model.21", l[20], c4, c4, 2, down)
	l[22] = b.concat("model.22", 1, l[21], l[10])
	l[23] = b.c3("model.23", l[22], 2*c4, c5, cfg.depth(3), false, bott)
	b.detect("model.24", []string{l[17], l[20], l[23]}, []int{c3, c4, c5})
}

// anchors are yolov5s' default anchors in input pixels, per level (P3/8, P4/16, P5/32).
var legacyAnchors = [3][6]float32{
	{10, 13, 16, 30, 33, 23},
	{30, 61, 62, 45, 59, 119},
	{116, 90, 156, 198, 373, 326},
}

const legacyNumAnchors = 3

// detect is ultralytics' Detect head with its export-mode decode: per level,
// a 1x1 conv to 3·(5+nc) channels (anchor-major), reshaped to
// [N,3,ny,nx,5+nc], sigmoid, xy = (2s + grid - 0.5)·stride and
// wh = (2s)²·anchor, flattened to [N,3·ny·nx,5+nc] and concatenated.
func (b *legacyBuilder) detect(scope string, xs []string, chans []int) {
	nc := b.cfg.Classes
	no := 5 + nc
	two := b.constant("const.two", nil, []float32{2})
	split := b.constInt64("const.detect_split", 2, 2, int64(nc+1))
	var levels []string
	anchorsTotal := int64(0)
	for i, x := range xs {
		stride := 8 << i
		ny, nx := b.cfg.ImgSize/stride, b.cfg.ImgSize/stride
		m := fmt.Sprintf("%s.m.%d", scope, i)
		w := b.param(m+".weight", legacyNumAnchors*no, chans[i], 1, 1)
		bias := b.param(m+".bias", legacyNumAnchors*no)
		y := b.op("Conv", m, []string{x, w, bias},
			onnx.Ints("dilations", 1, 1), onnx.Int("group", 1), onnx.Ints("kernel_shape", 1, 1),
			onnx.Ints("pads", 0, 0, 0, 0), onnx.Ints("strides", 1, 1))
		y = b.op("Reshape", scope, []string{y, b.constInt64(fmt.Sprintf("%s.shape_in.%d", scope, i), -1, legacyNumAnchors, int64(no), int64(ny), int64(nx))})
		y = b.op("Transpose", scope, []string{y}, onnx.Ints("perm", 0, 1, 3, 4, 2))
		y = b.op("Sigmoid", scope, []string{y})
		parts := b.add("Split", scope, []string{y, split}, 3, onnx.Int("axis", 4))
		xy, wh, conf := parts[0], parts[1], parts[2]

		grid := b.constant(fmt.Sprintf("%s.grid.%d", scope, i), []int64{1, 1, int64(ny), int64(nx), 2}, legacyGridTable(ny, nx))
		strideT := b.constant(fmt.Sprintf("%s.stride.%d", scope, i), nil, []float32{float32(stride)})
		xy = b.op("Mul", scope, []string{xy, two})
		xy = b.op("Add", scope, []string{xy, grid})
		xy = b.op("Mul", scope, []string{xy, strideT})

		anchorGrid := b.constant(fmt.Sprintf("%s.anchor_grid.%d", scope, i), []int64{1, legacyNumAnchors, 1, 1, 2}, legacyAnchors[i][:])
		wh = b.op("Mul", scope, []string{wh, two})
		wh = b.op("Pow", scope, []string{wh, two})
		wh = b.op("Mul", scope, []string{wh, anchorGrid})

		y = b.concat(scope, 4, xy, wh, conf)
		n := int64(legacyNumAnchors * ny * nx)
		anchorsTotal += n
		levels = append(levels, b.op("Reshape", scope, []string{y, b.constInt64(fmt.Sprintf("%s.shape_out.%d", scope, i), -1, n, int64(no))}))
	}
	b.concat(scope, 1, levels...)
	if b.err != nil {
		return
	}
	// That concat is the last node; its value takes the name ultralytics exports.
	b.g.Nodes[len(b.g.Nodes)-1].Outputs[0] = "output0"
	b.g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float,
		onnx.Dim{Param: "batch"}, onnx.Dim{Value: anchorsTotal}, onnx.Dim{Value: int64(no)})}
}

// legacyGridTable holds (x-0.5, y-0.5) per cell, laid out [ny][nx][2]; it
// broadcasts over the anchor axis.
func legacyGridTable(ny, nx int) []float32 {
	g := make([]float32, 0, ny*nx*2)
	for y := range ny {
		for x := range nx {
			g = append(g, float32(x)-0.5, float32(y)-0.5)
		}
	}
	return g
}

// TestLegacyIdentical builds yolov5s and both repyolov5s variants from the
// built-in model files and from the frozen hard-coded builder, and compares
// the encoded models byte for byte (the YAML path adds two metadata keys,
// strides and anchors, which are compared separately).
func TestLegacyIdentical(t *testing.T) {
	file, err := safetensors.Open(smallWeights)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		old  legacyConfig
	}{
		{"yolov5s", Config{}, legacyConfig{Arch: ArchYOLOv5s, Width: 0.5, Depth: 0.33, ImgSize: 640, Classes: 80}},
		{"repyolov5s downsample", Config{Arch: ArchRepYOLOv5s}, legacyConfig{Arch: ArchRepYOLOv5s, Rep: RepDownsample, Width: 0.5, Depth: 0.33, ImgSize: 640, Classes: 80}},
		{"repyolov5s all", Config{Arch: ArchRepYOLOv5s, Rep: RepAll, Seed: 5}, legacyConfig{Arch: ArchRepYOLOv5s, Rep: RepAll, Width: 0.5, Depth: 0.33, ImgSize: 640, Classes: 80, Weights: Seeded(5)}},
		{"yolov5s narrow deep 320", Config{Width: 0.25, Depth: 0.67, ImgSize: 320, Classes: 7}, legacyConfig{Arch: ArchYOLOv5s, Width: 0.25, Depth: 0.67, ImgSize: 320, Classes: 7}},
		{"repyolov5s all torch weights", smallConfig(file), legacyConfig{Arch: ArchRepYOLOv5s, Rep: RepAll, Width: 0.03125, Depth: 0.33, ImgSize: 64, Classes: 3, Weights: file}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.old.Weights == nil {
				tt.old.Weights = Seeded(0)
			}
			if tt.old.Names == nil {
				tt.old.Names = COCO80()
				if tt.old.Classes != 80 {
					tt.old.Names = make([]string, tt.old.Classes)
					for i := range tt.old.Names {
						tt.old.Names[i] = fmt.Sprintf("class%d", i)
					}
				}
			}
			old, err := legacyBuild(tt.old)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Build(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			meta := map[string]string{}
			for _, kv := range m.Metadata {
				meta[kv.Key] = kv.Value
			}
			if meta["strides"] != "[8, 16, 32]" || meta["anchors"] != "[[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]" {
				t.Errorf("strides %q, anchors %q", meta["strides"], meta["anchors"])
			}
			m.Metadata = m.Metadata[:2]
			a, b := onnx.Encode(old), onnx.Encode(m)
			if !bytes.Equal(a, b) {
				t.Errorf("encodings differ: legacy %d bytes (%d nodes, %d initializers), model file %d bytes (%d nodes, %d initializers)",
					len(a), len(old.Graph.Nodes), len(old.Graph.Initializers), len(b), len(m.Graph.Nodes), len(m.Graph.Initializers))
				for i := range min(len(old.Graph.Nodes), len(m.Graph.Nodes)) {
					if o, n := old.Graph.Nodes[i], m.Graph.Nodes[i]; o.Name != n.Name || !slices.Equal(o.Inputs, n.Inputs) {
						t.Fatalf("first differing node %d: legacy %s %v, model file %s %v", i, o.Name, o.Inputs, n.Name, n.Inputs)
					}
				}
			}
			t.Logf("%d bytes identical", len(a))
		})
	}
}
