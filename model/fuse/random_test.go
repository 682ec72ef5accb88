package fuse

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// TestRandomBlocks builds random RepVGG-style blocks (branch sets, kernel
// sizes, strides, groups, BN or folded forms, identity forms, sum shapes)
// and checks each against its unfused self under ONNX Runtime. A fifth of
// them are spoiled (dilation 2, or one branch with another group), which
// must be reported and may only be fused in part.
func TestRandomBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	worst := 0.0
	for i := range 30 {
		b := newBuilder(8, 9)
		b.r = rand.New(rand.NewPCG(uint64(i), 99))
		desc, spoiled, nonConst := randomBlock(r, b)
		m := b.model(b.g.Nodes[len(b.g.Nodes)-1].Outputs[0])
		t.Run(fmt.Sprintf("%02d %s", i, desc), func(t *testing.T) {
			orig := onnx.Encode(m)
			rep, err := Model(m)
			if err != nil {
				t.Fatalf("Model: %v", err)
			}
			t.Log(rep)
			switch {
			case spoiled && len(rep.Skipped) == 0:
				t.Errorf("spoiled block not reported")
			case !spoiled && nonConst >= 2:
				if len(rep.Skipped) != 0 || len(rep.Fusions) != 1 || rep.Fusions[0].Kind != KindRepVGG {
					t.Errorf("want one RepVGG fusion and no skip")
				}
				if ops := countOps(m.Graph); ops["Conv"] != 1 || ops["BatchNormalization"] != 0 {
					t.Errorf("ops after: %v", ops)
				}
			}
			d, _ := equivalence(t, orig, onnx.Encode(m), "x", m.Graph.Outputs[0].Name, []int64{1, 8, 9, 9}, nil)
			if d > 1e-4 {
				t.Errorf("fused output differs by %g", d)
			}
			worst = max(worst, d)
		})
	}
	t.Logf("largest difference: %.3g", worst)
}

// randomBlock appends one random block over "x" to b and describes it.
func randomBlock(r *rand.Rand, b *builder) (desc string, spoiled bool, nonConst int) {
	stride := int64(1 + r.IntN(2))
	group := []int64{1, 2, 8}[r.IntN(3)]
	cout := int64(8)
	if stride == 2 && r.IntN(2) == 0 {
		cout = 16
	}
	bnForm := r.IntN(2) == 0
	branch := func(kh, kw int64, opts convOpts) string {
		opts.kh, opts.kw, opts.stride, opts.cout = kh, kw, stride, cout
		if opts.group == 0 {
			opts.group = group
		}
		if opts.pads == nil {
			opts.pads = []int64{(kh - 1) / 2, (kw - 1) / 2, (kh - 1) / 2, (kw - 1) / 2}
		}
		if bnForm {
			return b.bn(b.conv("x", 8, opts), cout)
		}
		opts.bias = r.IntN(4) > 0
		return b.conv("x", 8, opts)
	}
	var terms []string
	add := func(name, v string) {
		terms = append(terms, v)
		desc += name + " "
		nonConst++
	}
	spoil := r.IntN(5) == 0
	if spoil && r.IntN(2) == 0 {
		add("3x3(dilation 2)", branch(3, 3, convOpts{dilation: 2, pads: []int64{2, 2, 2, 2}}))
		spoiled = true
	} else {
		add("3x3", branch(3, 3, convOpts{}))
	}
	if r.IntN(10) < 7 || spoil {
		if spoil && !spoiled {
			other := int64(1)
			if group == 1 {
				other = 2
			}
			add(fmt.Sprintf("1x1(group %d)", other), branch(1, 1, convOpts{group: other}))
			spoiled = true
		} else {
			add("1x1", branch(1, 1, convOpts{}))
		}
	}
	if r.IntN(5) == 0 {
		add("5x5", branch(5, 5, convOpts{}))
	}
	if r.IntN(5) == 0 {
		add("1x3+3x1", b.add(branch(1, 3, convOpts{}), branch(3, 1, convOpts{})))
		nonConst++
	}
	if stride == 1 && cout == 8 {
		switch r.IntN(5) {
		case 0:
			add("id(bn)", b.bn("x", 8))
		case 1:
			add("id", "x")
		case 2:
			add("id(mul)", b.node("Mul", []string{"x", b.uniform("s", 0.5, 1.5, 1, 8, 1, 1)}))
		case 3:
			s := b.constant([]int64{8, 1, 1}, ones(8))
			add("id(mul/add)", b.add(b.node("Mul", []string{s, "x"}), b.init("c", 0.3, 8, 1, 1)))
		}
	}
	if r.IntN(5) == 0 {
		terms = append(terms, b.init("bias", 0.3, cout, 1, 1))
		desc += "bias "
	}
	desc += fmt.Sprintf("stride %d group %d", stride, group)
	if bnForm {
		desc += " bn-form"
	}
	r.Shuffle(len(terms), func(i, j int) { terms[i], terms[j] = terms[j], terms[i] })
	var y string
	if len(terms) > 2 && r.IntN(3) == 0 {
		y = b.node("Sum", terms)
	} else {
		for len(terms) > 1 {
			i := r.IntN(len(terms))
			a := terms[i]
			terms = append(terms[:i], terms[i+1:]...)
			j := r.IntN(len(terms))
			terms[j] = b.add(a, terms[j])
		}
		y = terms[0]
	}
	if r.IntN(2) == 0 {
		b.node("Relu", []string{y})
	}
	return desc, spoiled, nonConst
}
