package fuse

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// branch is one term of a block as a 2-D convolution over x: a kernel of
// kh x kw with pads (top, left, bottom, right), or a 1x1 identity kernel
// scale[o] on channel o with no padding.
type branch struct {
	label  string
	node   *onnx.Node
	kh, kw int64
	pads   [4]int64
	weight []float64 // conv: [cout, cpg, kh, kw]; nil for an identity
	scale  []float64 // identity: per output channel
	bias   []float64 // per output channel, nil when none
}

// maxPad bounds the pads accepted, so window arithmetic cannot overflow.
const maxPad = 1 << 20

// convGeom is what every conv branch of a block must share.
type convGeom struct {
	cout, cpg, group int64
	strides          [2]int64
}

// buildBlock verifies that every term of t is a mergeable branch over x and
// returns the plan that replaces the tree with one Conv, or why it cannot.
func (w *rewriter) buildBlock(t sumTree, x string) (*plan, string, error) {
	var (
		convs, ids []branch
		geom       convGeom
		consts     []string
		remove     = slices.Clone(t.sums[1:])
	)
	for _, tm := range t.terms {
		if tm.kind != termConv {
			continue
		}
		b, g, why, err := w.convBranch(tm.node)
		if b == nil {
			return nil, why, err
		}
		if len(convs) > 0 && g != geom {
			return nil, fmt.Sprintf("conv branches differ: %s has %s, %s has %s",
				label(convs[0].node), geom, label(tm.node), g), nil
		}
		geom = g
		convs = append(convs, *b)
		remove = append(remove, tm.node)
	}
	cin := geom.cpg * geom.group
	hasScale := false
	for _, tm := range t.terms {
		var b branch
		switch tm.kind {
		case termConst:
			consts = append(consts, tm.value)
			continue
		case termConv:
			continue
		}
		if geom.strides != [2]int64{1, 1} {
			return nil, fmt.Sprintf("identity branch %q needs stride 1, the convs have stride %v", tm.value, geom.strides), nil
		}
		if cin != geom.cout {
			return nil, fmt.Sprintf("identity branch %q needs as many input as output channels, the convs map %d to %d", tm.value, cin, geom.cout), nil
		}
		b = branch{node: tm.node, kh: 1, kw: 1}
		var why string
		var err error
		switch tm.kind {
		case termBN:
			b.label = "identity(bn)"
			b.scale, b.bias, why, err = w.bnAffine(tm.node, cin)
			remove = append(remove, tm.node)
		case termScale:
			hasScale = true
			s := tm.node.Inputs[1]
			if s == x {
				s = tm.node.Inputs[0]
			}
			b.scale, why, err = w.perChannel(tm.node, s, cin)
			if why != "" {
				why = fmt.Sprintf("Mul %s scale %s", label(tm.node), why)
			}
			remove = append(remove, tm.node)
		case termPlain:
			b.label = "identity"
			b.scale = make([]float64, cin)
			for i := range b.scale {
				b.scale[i] = 1
			}
		}
		if b.scale == nil {
			return nil, why, err
		}
		ids = append(ids, b)
	}
	var bias []float64
	for _, c := range consts {
		v, why, err := w.perChannel(t.root, c, geom.cout)
		if v == nil {
			if why != "" {
				why = "added constant " + why
			}
			return nil, why, err
		}
		bias = addInto(bias, v)
	}
	for i := range ids {
		if ids[i].label == "" { // a Mul: name it by whether a constant is added too
			ids[i].label = "identity(mul)"
			if len(consts) > 0 {
				ids[i].label = "identity(mul/add)"
			}
		}
	}
	// The fused kernel is the largest conv's; every other branch must sit
	// inside its window with the same output size.
	slices.SortStableFunc(convs, func(a, b branch) int { return cmp.Compare(b.kh*b.kw, a.kh*a.kw) })
	main := convs[0]
	all := append(slices.Clone(convs), ids...)
	for _, b := range all[1:] {
		if why := aligned(main, b); why != "" {
			return nil, why, nil
		}
	}
	kernel := make([]float64, geom.cout*geom.cpg*main.kh*main.kw)
	for _, b := range all {
		offH, offW := main.pads[0]-b.pads[0], main.pads[1]-b.pads[1]
		for o := range geom.cout {
			if b.weight == nil {
				i := o % geom.cpg
				kernel[((o*geom.cpg+i)*main.kh+offH)*main.kw+offW] += b.scale[o]
				continue
			}
			for i := range geom.cpg {
				for y := range b.kh {
					dst := ((o*geom.cpg+i)*main.kh+y+offH)*main.kw + offW
					src := ((o*geom.cpg+i)*b.kh + y) * b.kw
					for xx := range b.kw {
						kernel[dst+xx] += b.weight[src+xx]
					}
				}
			}
		}
		bias = addInto(bias, b.bias)
	}
	if bias == nil {
		bias = make([]float64, geom.cout)
	}
	base := main.node.Name
	if base == "" {
		base = t.root.Outputs[0]
	}
	fused := *main.node
	fused.Inputs = []string{
		x,
		w.addTensor(base+".weight_rep", []int64{geom.cout, geom.cpg, main.kh, main.kw}, kernel),
		w.addTensor(base+".bias_rep", []int64{geom.cout}, bias),
	}
	fused.Outputs = []string{t.root.Outputs[0]}
	labels := make([]string, 0, len(all)+1)
	for _, b := range all {
		labels = append(labels, b.label)
	}
	if len(consts) > 0 && !hasScale {
		labels = append(labels, "bias")
	}
	return &plan{
		root:   t.root,
		fused:  &fused,
		remove: remove,
		fusion: &Fusion{Kind: KindRepVGG, Node: fused.Name, Branches: labels},
	}, "", nil
}

func (g convGeom) String() string {
	return fmt.Sprintf("%d->%d channels, group %d, stride %v", g.cpg*g.group, g.cout, g.group, g.strides)
}

// addInto adds v to acc element-wise, allocating acc on first use.
func addInto(acc, v []float64) []float64 {
	if v == nil {
		return acc
	}
	if acc == nil {
		acc = make([]float64, len(v))
	}
	for i := range v {
		acc[i] += v[i]
	}
	return acc
}

// aligned checks that branch b's window lies inside main's and that both
// give the same output size, so b's kernel can be placed inside main's at
// offset (main.pads[0]-b.pads[0], main.pads[1]-b.pads[1]).
func aligned(main, b branch) string {
	for d, k := range [2][2]int64{{main.kh, b.kh}, {main.kw, b.kw}} {
		mk, bk := k[0], k[1]
		off := main.pads[d] - b.pads[d]
		if off < 0 || off+bk > mk || main.pads[d]+main.pads[d+2]-mk != b.pads[d]+b.pads[d+2]-bk {
			return fmt.Sprintf("branch %s (%dx%d, pads %v) does not align with %s (%dx%d, pads %v): the window centres or output sizes differ",
				b.label, b.kh, b.kw, b.pads, main.label, main.kh, main.kw, main.pads)
		}
	}
	return ""
}

// convBranch reads a 2-D Conv branch: its weight, bias, pads and geometry.
func (w *rewriter) convBranch(conv *onnx.Node) (*branch, convGeom, string, error) {
	var g convGeom
	wt, why := w.convWeight(conv, 4)
	if wt == nil {
		return nil, g, why, nil
	}
	if len(wt.Dims) != 4 {
		return nil, g, fmt.Sprintf("Conv %s is not 2-D (weight dims %v)", label(conv), wt.Dims), nil
	}
	b := &branch{node: conv, kh: wt.Dims[2], kw: wt.Dims[3]}
	b.label = fmt.Sprintf("%dx%d", b.kh, b.kw)
	g.cout, g.cpg = wt.Dims[0], wt.Dims[1]
	g.group = conv.AttrInt("group", 1)
	if g.group <= 0 || g.cout%g.group != 0 {
		return nil, g, fmt.Sprintf("Conv %s has group %d for %d output channels", label(conv), g.group, g.cout), nil
	}
	if ks := conv.AttrInts("kernel_shape", nil); ks != nil && !slices.Equal(ks, wt.Dims[2:]) {
		return nil, g, fmt.Sprintf("Conv %s kernel_shape %v does not match weight dims %v", label(conv), ks, wt.Dims), nil
	}
	strides := conv.AttrInts("strides", []int64{1, 1})
	if len(strides) != 2 || strides[0] <= 0 || strides[1] <= 0 {
		return nil, g, fmt.Sprintf("Conv %s has strides %v", label(conv), strides), nil
	}
	g.strides = [2]int64{strides[0], strides[1]}
	if dil := conv.AttrInts("dilations", []int64{1, 1}); !slices.Equal(dil, []int64{1, 1}) {
		return nil, g, fmt.Sprintf("Conv %s has dilations %v; only 1 is merged", label(conv), dil), nil
	}
	switch ap := conv.AttrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		pads := conv.AttrInts("pads", []int64{0, 0, 0, 0})
		if len(pads) != 4 || slices.ContainsFunc(pads, func(p int64) bool { return p < 0 || p > maxPad }) {
			return nil, g, fmt.Sprintf("Conv %s has pads %v", label(conv), pads), nil
		}
		b.pads = [4]int64(pads)
	case "VALID":
	default:
		return nil, g, fmt.Sprintf("Conv %s has auto_pad %s; only explicit pads are merged", label(conv), ap), nil
	}
	var err error
	b.weight, why, err = w.floats(conv, conv.Inputs[1], wt)
	if b.weight == nil {
		return nil, g, why, err
	}
	b.bias, why, err = w.convBias(conv, g.cout)
	if why != "" || err != nil {
		return nil, g, why, err
	}
	return b, g, "", nil
}
