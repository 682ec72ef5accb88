package yolo

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// layer is one built row: its output value, channels and square side.
type layer struct {
	out  string
	ch   int
	side int
}

// Limits that keep a model file from asking for more than memory holds.
const (
	maxChannels = 1 << 14
	maxSide     = 1 << 14
	maxParams   = 1 << 28 // floats, 1 GiB; yolov5x has 87M
)

// netSpec is what network needs beyond the model file.
type netSpec struct {
	nc      int
	img     int
	gd, gw  float64
	anchors [][]float64 // the file's anchors, or nil
	na      int         // anchors per level the file declares
}

// network walks the model file's rows as parse_model does and emits each
// module; it fills the anchor and stride parts of rep.
func (b *builder) network(f *ModelFile, s netSpec, rep *Report) error {
	img := int64(s.img)
	b.g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float,
		onnx.Dim{Param: "batch"}, onnx.Dim{Value: 3}, onnx.Dim{Value: img}, onnx.Dim{Value: img})}
	input := layer{out: "images", ch: 3, side: s.img}
	var layers []layer
	for i, r := range f.Rows {
		mod := moduleName(r.Module)
		if mod == "Detect" && i != len(f.Rows)-1 {
			return fmt.Errorf("layer %d (%s): %w: Detect must be the last row", i, r.where(), ErrModelFile)
		}
		ins := make([]layer, len(r.From))
		for j, from := range r.From {
			idx := from
			if from < 0 {
				idx = i + from
			}
			switch {
			case from == -1 && i == 0:
				ins[j] = input
			case idx < 0 || idx >= i:
				return fmt.Errorf("layer %d (%s): %w: from %d names no earlier layer", i, r.where(), ErrModelFile, from)
			default:
				ins[j] = layers[idx]
			}
		}
		b.missing, b.misfit = "", ""
		out, err := b.row(i, r, mod, ins, s, rep)
		if err == nil {
			err = b.err
		}
		if err != nil {
			return b.explain(i, r, mod, err)
		}
		layers = append(layers, out)
	}
	if moduleName(f.Rows[len(f.Rows)-1].Module) != "Detect" {
		return fmt.Errorf("%w: the last row is %s, not Detect", ErrModelFile, f.Rows[len(f.Rows)-1].Module)
	}
	return nil
}

// explain wraps a row's error with the layer and, when the weights lack a
// tensor the file needs, what the weights hold for that layer instead.
func (b *builder) explain(i int, r Row, mod string, err error) error {
	if b.misfit != "" {
		// Same module, other sizes: usually the multiples or nc differ from training.
		return fmt.Errorf("layer %d (%s, %s): these weights have %s (are width_multiple, depth_multiple and nc those the weights were trained with?): %w",
			i, r.Module, r.where(), b.misfit, err)
	}
	if b.missing == "" {
		return fmt.Errorf("layer %d (%s, %s): %w", i, r.Module, r.where(), err)
	}
	return fmt.Errorf("layer %d is %s in this file (%s), which needs %s; these weights have %s: %w",
		i, mod, r.where(), b.missing, describeWeights(b.src, fmt.Sprintf("model.%d.", i)), err)
}

// describeWeights says what module a layer's tensors look like, by the
// state_dict names each upstream module produces.
func describeWeights(src Source, prefix string) string {
	ls, ok := src.(lister)
	sh, ok2 := src.(shaper)
	if !ok || !ok2 {
		return "other tensors"
	}
	var names []string
	for _, n := range ls.Names() {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "no tensors under " + prefix
	}
	sort.Strings(names)
	has := func(s string) bool { _, ok := slices.BinarySearch(names, prefix+s); return ok }
	show := func(s string) string {
		shape, _ := sh.Shape(prefix + s)
		return fmt.Sprintf("%s%s %v", prefix, s, shape)
	}
	switch {
	case has("conv.conv.weight"):
		return "a Focus layer (" + show("conv.conv.weight") + ")"
	case has("conv.weight"):
		shape, _ := sh.Shape(prefix + "conv.weight")
		if len(shape) == 4 {
			return fmt.Sprintf("a %dx%d conv (%s)", shape[2], shape[3], show("conv.weight"))
		}
	case has("rbr_dense.conv.weight"):
		return "a RepVGGBlock (" + show("rbr_dense.conv.weight") + ")"
	case has("rbr_reparam.weight"):
		return "a RepVGGBlock in deploy form (" + show("rbr_reparam.weight") + ")"
	case has("cv4.conv.weight"):
		return "a BottleneckCSP (" + show("cv4.conv.weight") + ")"
	case has("cv3.conv.weight") && has("m.0.cv2.rbr_dense.conv.weight"):
		return "a C3 with RepVGG bottlenecks (" + show("cv3.conv.weight") + ")"
	case has("cv3.conv.weight"):
		return "a C3 (" + show("cv3.conv.weight") + ")"
	case has("cv1.conv.weight") && has("cv2.conv.weight"):
		return "an SPP, SPPF or Bottleneck (" + show("cv2.conv.weight") + ")"
	case has("m.0.weight"):
		return "a Detect head (" + show("m.0.weight") + ")"
	}
	return fmt.Sprintf("%d other tensors, first %s", len(names), show(strings.TrimPrefix(names[0], prefix)))
}

// args reads a row's args (as written, before parse_model inserts c1) with
// upstream's defaults, keeping the first error.
type args struct {
	r   Row
	mod string
	a   []any
	err error
}

func (a *args) fail(format string, v ...any) {
	if a.err == nil {
		a.err = fmt.Errorf("%w: %s %s", ErrModelFile, a.mod, fmt.Sprintf(format, v...))
	}
}

// atMost refuses args past the ones vidpipe implements.
func (a *args) atMost(n int, names string) {
	if len(a.a) > n {
		a.fail("takes at most %d args here (%s), the row has %d: %v", n, names, len(a.a), a.a)
	}
}

func (a *args) int(i int, name string, def int) int {
	if i >= len(a.a) || a.a[i] == nil && def >= 0 {
		return def
	}
	switch v := a.a[i].(type) {
	case int:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<31 {
			return int(v)
		}
	case bool:
		if v {
			return 1
		}
		return 0
	}
	a.fail("arg %s is %v, want an integer", name, a.a[i])
	return def
}

func (a *args) bool(i int, name string, def bool) bool {
	if i >= len(a.a) {
		return def
	}
	switch v := a.a[i].(type) {
	case bool:
		return v
	case int:
		return v != 0
	}
	a.fail("arg %s is %v, want True or False", name, a.a[i])
	return def
}

func (a *args) float(i int, name string, def float64) float64 {
	if i >= len(a.a) {
		return def
	}
	switch v := a.a[i].(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	a.fail("arg %s is %v, want a number", name, a.a[i])
	return def
}

// ints reads a list of ints, or one int as a list of one.
func (a *args) ints(i int, name string, def []int) []int {
	if i >= len(a.a) {
		return def
	}
	switch v := a.a[i].(type) {
	case int:
		return []int{v}
	case []any:
		out := make([]int, 0, len(v))
		for _, e := range v {
			n, ok := e.(int)
			if !ok {
				a.fail("arg %s is %v, want a list of integers", name, a.a[i])
				return def
			}
			out = append(out, n)
		}
		return out
	}
	a.fail("arg %s is %v, want a list of integers", name, a.a[i])
	return def
}

// is checks that an arg vidpipe does not implement keeps its default.
func (a *args) is(i int, name string, want any) {
	// Python's True == 1, and parse_model passes args on as they are.
	norm := func(v any) any {
		if b, ok := v.(bool); ok {
			if b {
				return 1
			}
			return 0
		}
		return v
	}
	if i < len(a.a) && norm(a.a[i]) != norm(want) {
		a.fail("arg %s = %v is not supported (only %v)", name, a.a[i], want)
	}
}

// row emits one row's module(s) and returns the layer it makes.
func (b *builder) row(i int, r Row, mod string, ins []layer, s netSpec, rep *Report) (layer, error) {
	scope := fmt.Sprintf("model.%d", i)
	a := &args{r: r, mod: mod, a: slices.Clone(r.Args)}
	for j, v := range a.a {
		if v == "nc" {
			a.a[j] = s.nc
		}
	}
	n := r.Number
	if n > 1 {
		n = max(int(math.RoundToEven(float64(n)*s.gd)), 1)
	}
	single := func() (layer, error) {
		if r.Multi || len(ins) != 1 {
			return layer{}, fmt.Errorf("%w: %s takes one input, from is %v", ErrModelFile, mod, r.From)
		}
		return ins[0], nil
	}
	// width is parse_model's c2: make_divisible(c2·gw, 8) unless c2 is
	// the Detect output size.
	width := func() int {
		c2 := a.int(0, "c2", 0)
		if a.err == nil && (c2 < 1 || c2 > maxChannels) {
			a.fail("c2 %d is not a channel count (1 to %d)", c2, maxChannels)
		}
		if c2 != s.na*(s.nc+5) {
			c2 = int(math.Ceil(float64(c2)*s.gw/8)) * 8
		}
		if a.err == nil && c2 > maxChannels {
			a.fail("c2 %d after width_multiple is over %d channels", c2, maxChannels)
		}
		return c2
	}
	// repeat runs a module n times in sequence, as nn.Sequential does, with
	// the .k scopes torch gives its children.
	repeat := func(in layer, c2 int, emit func(scope string, x layer) layer) (layer, error) {
		if a.err != nil {
			return layer{}, a.err
		}
		if n > 1 && in.ch != c2 {
			return layer{}, fmt.Errorf("%w: %d repeats of %s need c1 == c2, have %d and %d", ErrModelFile, n, mod, in.ch, c2)
		}
		x := in
		for k := range n {
			sc := scope
			if n > 1 {
				sc = fmt.Sprintf("%s.%d", scope, k)
			}
			x = emit(sc, x)
			if x.side < 1 {
				return layer{}, fmt.Errorf("%w: %s leaves no pixels at input size %d", ErrConfig, mod, s.img)
			}
			if x.side > maxSide {
				return layer{}, fmt.Errorf("%w: %s makes %dx%d maps (at most %d)", ErrModelFile, mod, x.side, x.side, maxSide)
			}
		}
		return x, b.err
	}
	convSide := func(side, k, st, p int) int { return (side+2*p-k)/st + 1 }

	switch mod {
	case "Conv", "Focus":
		in, err := single()
		if err != nil {
			return layer{}, err
		}
		c2 := width()
		k, st := a.int(1, "k", 1), a.int(2, "s", 1)
		p := k / 2
		if len(a.a) > 3 && a.a[3] != nil {
			p = a.int(3, "p", 0)
		}
		g := a.int(4, "g", 1)
		if mod == "Conv" {
			a.is(5, "d", 1) // v7.0 Conv(c1, c2, k, s, p, g, d, act); v5.0's sixth is act=True, also 1
			a.is(6, "act", true)
			a.atMost(7, "c2, k, s, p, g, d, act")
		} else {
			a.is(5, "act", true)
			a.atMost(6, "c2, k, s, p, g, act")
		}
		if a.err == nil && (k < 1 || st < 1 || p < 0 || g < 1 || in.ch%g != 0 || c2%g != 0 || (mod == "Focus" && (4*in.ch)%g != 0)) {
			a.fail("k=%d s=%d p=%d g=%d do not fit %d→%d channels", k, st, p, g, in.ch, c2)
		}
		return repeat(in, c2, func(sc string, x layer) layer {
			if mod == "Focus" {
				if x.side%2 != 0 {
					b.err = fmt.Errorf("%w: Focus needs an even side, has %d", ErrConfig, x.side)
				}
				return layer{b.focus(sc, x.out, x.ch, c2, k, st, p, g), c2, convSide(x.side/2, k, st, p)}
			}
			return layer{b.convG(sc, x.out, x.ch, c2, k, st, p, g), c2, convSide(x.side, k, st, p)}
		})

	case "Bottleneck":
		in, err := single()
		if err != nil {
			return layer{}, err
		}
		c2 := width()
		shortcut, g, e := a.bool(1, "shortcut", true), a.int(2, "g", 1), a.float(3, "e", 0.5)
		a.atMost(4, "c2, shortcut, g, e")
		if a.err == nil && (g < 1 || int(float64(c2)*e) < 1 || c2%g != 0 || int(float64(c2)*e)%g != 0) {
			a.fail("g=%d e=%g do not fit %d channels", g, e, c2)
		}
		return repeat(in, c2, func(sc string, x layer) layer {
			return layer{b.bottleneck(sc, x.out, x.ch, c2, shortcut, g, e, false), c2, x.side}
		})

	case "C3", "C3RepVGG", "BottleneckCSP":
		in, err := single()
		if err != nil {
			return layer{}, err
		}
		c2 := width()
		shortcut, g, e := a.bool(1, "shortcut", true), a.int(2, "g", 1), a.float(3, "e", 0.5)
		a.atMost(4, "c2, shortcut, g, e")
		c := int(float64(c2) * e)
		if a.err == nil && (g < 1 || c < 1 || c%g != 0) {
			a.fail("g=%d e=%g do not fit %d channels", g, e, c2)
		}
		if mod == "C3RepVGG" && g != 1 {
			a.fail("g=%d: RepVGG bottlenecks take g=1 only", g)
		}
		reps := n
		n = 1 // parse_model moves the repeats into the module
		return repeat(in, c2, func(sc string, x layer) layer {
			if mod == "BottleneckCSP" {
				return layer{b.bottleneckCSP(sc, x.out, x.ch, c2, reps, shortcut, g, e), c2, x.side}
			}
			return layer{b.c3(sc, x.out, x.ch, c2, reps, shortcut, g, e, mod == "C3RepVGG"), c2, x.side}
		})

	case "SPP", "SPPF":
		in, err := single()
		if err != nil {
			return layer{}, err
		}
		c2 := width()
		a.atMost(2, "c2, k")
		if mod == "SPP" {
			ks := a.ints(1, "k", []int{5, 9, 13})
			for _, k := range ks {
				if k < 1 || k%2 == 0 {
					a.fail("kernel %d: want odd sizes", k)
				}
			}
			if len(ks) == 0 {
				a.fail("no kernels")
			}
			return repeat(in, c2, func(sc string, x layer) layer {
				return layer{b.spp(sc, x.out, x.ch, c2, ks), c2, x.side}
			})
		}
		k := a.int(1, "k", 5)
		if k < 1 || k%2 == 0 {
			a.fail("kernel %d: want an odd size", k)
		}
		return repeat(in, c2, func(sc string, x layer) layer {
			return layer{b.sppf(sc, x.out, x.ch, c2, k), c2, x.side}
		})

	case "RepVGGBlock":
		in, err := single()
		if err != nil {
			return layer{}, err
		}
		c2 := width()
		// RepVGGBlock(c1, c2, kernel_size=3, stride=1, padding=1, dilation=1,
		// groups=1, padding_mode='zeros', deploy=False, use_se=False)
		a.is(1, "kernel_size", 3)
		st := a.int(2, "stride", 1)
		a.is(3, "padding", 1)
		a.is(4, "dilation", 1)
		a.is(5, "groups", 1)
		a.is(6, "padding_mode", "zeros")
		deploy := a.bool(7, "deploy", false)
		a.is(8, "use_se", false)
		a.atMost(9, "c2, kernel_size, stride, padding, dilation, groups, padding_mode, deploy, use_se")
		if st < 1 {
			a.fail("stride %d", st)
		}
		return repeat(in, c2, func(sc string, x layer) layer {
			return layer{b.repVGG(sc, x.out, x.ch, c2, st, b.repDeploy(sc, deploy)), c2, convSide(x.side, 3, st, 1)}
		})

	case "Upsample":
		in, err := single()
		if err != nil {
			return layer{}, err
		}
		a.is(0, "size", nil)
		f := a.int(1, "scale_factor", 2)
		a.is(2, "mode", "nearest")
		a.atMost(3, "size, scale_factor, mode")
		if f < 1 || f > 8 {
			a.fail("scale_factor %d (want an integer 1 to 8)", f)
		}
		return repeat(in, in.ch, func(sc string, x layer) layer {
			return layer{b.upsample(sc, x.out, f), x.ch, x.side * f}
		})

	case "Concat":
		a.is(0, "dimension", 1)
		a.atMost(1, "dimension")
		if a.err != nil {
			return layer{}, a.err
		}
		if n != 1 {
			return layer{}, fmt.Errorf("%w: Concat takes number 1, has %d", ErrModelFile, r.Number)
		}
		out := layer{side: ins[0].side}
		var xs []string
		for j, in := range ins {
			if in.side != out.side {
				return layer{}, fmt.Errorf("%w: Concat of %dx%d (from %d) and %dx%d (from %d) maps", ErrModelFile, out.side, out.side, r.From[0], in.side, in.side, r.From[j])
			}
			out.ch += in.ch
			xs = append(xs, in.out)
		}
		out.out = b.concat(scope, 1, xs...)
		return out, b.err

	case "Detect":
		return layer{}, b.detectRow(scope, r, a, n, ins, s, rep)
	}
	return layer{}, fmt.Errorf("%w: unknown module %s", ErrModelFile, r.Module)
}

// detectRow resolves the Detect head's classes, strides and anchors, then
// emits it.
func (b *builder) detectRow(scope string, r Row, a *args, n int, ins []layer, s netSpec, rep *Report) error {
	if n != 1 {
		return fmt.Errorf("%w: Detect takes number 1, has %d", ErrModelFile, r.Number)
	}
	nc := a.int(0, "nc", s.nc)
	a.atMost(2, "nc, anchors")
	if a.err != nil {
		return a.err
	}
	if nc != s.nc {
		return fmt.Errorf("%w: Detect row has nc %d, the model %d classes", ErrModelFile, nc, s.nc)
	}
	fileAnchors, na := s.anchors, s.na
	if len(a.a) > 1 && a.a[1] != "anchors" {
		switch v := a.a[1].(type) {
		case int:
			fileAnchors, na = nil, v
		case []any:
			fileAnchors = nil
			for _, lv := range v {
				l, ok := lv.([]any)
				if !ok {
					return fmt.Errorf("%w: Detect anchors %v: want per-level lists", ErrModelFile, v)
				}
				var px []float64
				for _, e := range l {
					switch x := e.(type) {
					case int:
						px = append(px, float64(x))
					case float64:
						px = append(px, x)
					default:
						return fmt.Errorf("%w: Detect anchors %v: want numbers", ErrModelFile, v)
					}
				}
				fileAnchors = append(fileAnchors, px)
			}
			if len(fileAnchors) > 0 {
				na = len(fileAnchors[0]) / 2
			}
		default:
			return fmt.Errorf("%w: Detect anchors arg %v", ErrModelFile, a.a[1])
		}
	}
	nl := len(ins)
	if fileAnchors != nil && len(fileAnchors) != nl {
		return fmt.Errorf("%w: %d anchor levels for %d Detect inputs", ErrModelFile, len(fileAnchors), nl)
	}
	levels := make([]detectLevel, nl)
	for i, in := range ins {
		if in.side < 1 || s.img%in.side != 0 {
			return fmt.Errorf("%w: Detect input %d is %dx%d, which does not divide the %d input", ErrConfig, i, in.side, in.side, s.img)
		}
		levels[i] = detectLevel{x: in.out, ch: in.ch, side: in.side, stride: s.img / in.side}
		rep.Strides = append(rep.Strides, levels[i].stride)
	}
	anchors, from, err := b.anchors(scope, nl, na, levels, fileAnchors)
	if err != nil {
		return err
	}
	rep.Anchors, rep.AnchorsFrom = anchors, from
	b.detect(scope, s.nc, levels, anchors)
	return b.err
}

// anchors returns the anchors in pixels per level, and where they came
// from. The weights win: training (AutoAnchor) changes them, and a model
// file's defaults would then give boxes scaled by the wrong ratio.
func (b *builder) anchors(scope string, nl, na int, levels []detectLevel, file [][]float64) ([][]float32, string, error) {
	// The buffers Detect keeps: anchors [nl, na, 2] in grid units (pixels /
	// stride), and YOLOv5 v5.0's anchor_grid [nl, 1, na, 1, 1, 2] in pixels.
	buffers := []struct {
		suffix, want string
		naDim        int
		ok           func([]int) bool
		gridUnits    bool
	}{
		{".anchors", fmt.Sprintf("[%d %d 2]", nl, na), 1,
			func(sh []int) bool { return len(sh) == 3 && sh[0] == nl && sh[1] >= 1 && sh[2] == 2 }, true},
		{".anchor_grid", fmt.Sprintf("[%d 1 %d 1 1 2]", nl, na), 2,
			func(sh []int) bool {
				return len(sh) == 6 && sh[0] == nl && sh[2] >= 1 && sh[5] == 2 && sh[1]*sh[3]*sh[4] == 1
			}, false},
	}
	if sh, ok := b.src.(shaper); ok {
		for _, buf := range buffers {
			name := scope + buf.suffix
			shape, have := sh.Shape(name)
			if !have {
				continue
			}
			if !buf.ok(shape) {
				return nil, "", fmt.Errorf("%w: %s is %v, want %s", ErrWeight, name, shape, buf.want)
			}
			per := shape[buf.naDim]
			if file != nil && per != na {
				return nil, "", fmt.Errorf("%w: %s holds %d anchors per level, the model file %d", ErrWeight, name, per, na)
			}
			v, err := b.src.Tensor(name, shape)
			if err != nil {
				return nil, "", fmt.Errorf("load anchors: %w", err)
			}
			b.used[name] = true
			out := make([][]float32, nl)
			for l := range nl {
				scale := float32(1)
				if buf.gridUnits {
					scale = float32(levels[l].stride)
				}
				for _, g := range v[l*per*2 : (l+1)*per*2] {
					out[l] = append(out[l], g*scale)
				}
			}
			return out, "weights " + name, nil
		}
	}
	if file == nil {
		return nil, "", fmt.Errorf("%w: the model file gives only the anchor count (%d per level) and the weights hold no %s.anchors", ErrConfig, na, scope)
	}
	out := make([][]float32, nl)
	for l, px := range file {
		for _, x := range px {
			out[l] = append(out[l], float32(x))
		}
	}
	// check_anchor_order: anchors listed largest first are flipped so they
	// follow the strides, as Detect's constructor does with a model file.
	area := func(l []float32) float64 {
		var s float64
		for j := 0; j+1 < len(l); j += 2 {
			s += float64(l[j]) * float64(l[j+1])
		}
		return s / float64(len(l)/2)
	}
	da := area(out[nl-1]) - area(out[0])
	ds := levels[nl-1].stride - levels[0].stride
	if da != 0 && ds != 0 && (da > 0) != (ds > 0) {
		slices.Reverse(out)
	}
	return out, "model file", nil
}
