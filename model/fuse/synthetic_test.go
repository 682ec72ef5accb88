package fuse

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// TestSyntheticMerges covers forms torch does not emit for the fixtures:
// other associations, Sum nodes, Mul-only and plain identities, constants
// from Constant and Identity nodes, other kernel sizes and paddings. Each
// fused graph must match the original under ONNX Runtime.
func TestSyntheticMerges(t *testing.T) {
	type want struct {
		blocks  []string // blockShape of each RepVGG fusion, in graph order
		convBN  int      // standalone Conv+BN folds
		convs   int      // Conv nodes after
		skipped string   // substring of the only skip reason; "" for none
	}
	cases := []struct {
		name  string
		c, h  int64
		build func(b *builder) *onnx.Model
		want  want
	}{
		{"add chain right-nested, BN identity", 8, 10, func(b *builder) *onnx.Model {
			c1 := b.conv1("x")
			id := b.bn("x", 8)
			c3 := b.conv3("x")
			return b.model(b.node("Relu", []string{b.add(c1, b.add(id, c3))}))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"sum node with plain identity", 8, 10, func(b *builder) *onnx.Model {
			return b.model(b.node("Sum", []string{b.conv3("x"), "x", b.conv1("x")}))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"mul-only identity with a scalar", 8, 10, func(b *builder) *onnx.Model {
			s := b.initVals("s", nil, []float32{0.7})
			return b.model(b.add(b.add(b.conv3("x"), b.conv1("x")), b.node("Mul", []string{s, "x"})))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"mul/add identity from Constant nodes", 8, 10, func(b *builder) *onnx.Model {
			s := b.constant([]int64{8, 1, 1}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
			bias := b.constant([]int64{1, 8, 1, 1}, []float32{-1, 0, 1, 0, -1, 0, 1, 0.5})
			id := b.add(b.node("Mul", []string{"x", s}), bias)
			return b.model(b.add(b.add(b.conv3("x"), b.conv1("x")), id))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"constant bias on the sum", 8, 10, func(b *builder) *onnx.Model {
			return b.model(b.add(b.init("bias", 1, 1, 8, 1, 1), b.add(b.conv3("x"), b.conv1("x"))))
		}, want{blocks: []string{"3x3+1x1+bias"}, convs: 1}},
		{"3x3 plus x", 8, 10, func(b *builder) *onnx.Model {
			return b.model(b.add("x", b.conv3("x")))
		}, want{blocks: []string{"3x3+identity"}, convs: 1}},
		{"residual around a block without activation", 8, 10, func(b *builder) *onnx.Model {
			rep := b.add(b.add(b.conv3("x"), b.conv1("x")), b.bn("x", 8))
			return b.model(b.add("x", rep))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"training form with unbiased convs", 8, 10, func(b *builder) *onnx.Model {
			c3 := b.bn(b.conv("x", 8, convOpts{k: 3, pads: []int64{1, 1, 1, 1}}), 8)
			c1 := b.bn(b.conv("x", 8, convOpts{k: 1, bias: true}), 8)
			return b.model(b.node("Sigmoid", []string{b.add(c3, c1)}))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
		{"stride 2, 8 to 16 channels", 8, 11, func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{cout: 16, k: 3, stride: 2, pads: []int64{1, 1, 1, 1}, bias: true})
			c1 := b.conv("x", 8, convOpts{cout: 16, k: 1, stride: 2, bias: true})
			return b.model(b.add(c3, c1))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
		{"pad 2 3x3 with pad 1 1x1 (centres aligned)", 8, 10, func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, pads: []int64{2, 2, 2, 2}, bias: true})
			c1 := b.conv("x", 8, convOpts{k: 1, pads: []int64{1, 1, 1, 1}, bias: true})
			return b.model(b.add(c3, c1))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
		{"asymmetric pads, 1x1 at the window corner", 8, 10, func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, pads: []int64{0, 0, 2, 2}, bias: true})
			return b.model(b.add(c3, b.add(b.conv1("x"), "x")))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"5x5, 3x3, 1x1 and identity", 8, 10, func(b *builder) *onnx.Model {
			c5 := b.conv("x", 8, convOpts{k: 5, pads: []int64{2, 2, 2, 2}, bias: true})
			return b.model(b.node("Sum", []string{b.conv3("x"), b.conv1("x"), c5, b.bn("x", 8)}))
		}, want{blocks: []string{"5x5+3x3+1x1+identity"}, convs: 1}},
		{"ACNet 3x3, 1x3 and 3x1", 8, 10, func(b *builder) *onnx.Model {
			h := b.conv("x", 8, convOpts{kh: 1, kw: 3, pads: []int64{0, 1, 0, 1}, bias: true})
			v := b.conv("x", 8, convOpts{kh: 3, kw: 1, pads: []int64{1, 0, 1, 0}, bias: true})
			return b.model(b.add(b.add(h, b.conv3("x")), v))
		}, want{blocks: []string{"3x3+1x3+3x1"}, convs: 1}},
		{"groups 4 with identity", 8, 10, func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, group: 4, pads: []int64{1, 1, 1, 1}, bias: true})
			c1 := b.conv("x", 8, convOpts{k: 1, group: 4, bias: true})
			return b.model(b.add(b.add(c3, b.bn("x", 8)), c1))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"depthwise with identity", 8, 10, func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, group: 8, pads: []int64{1, 1, 1, 1}, bias: true})
			c1 := b.conv("x", 8, convOpts{k: 1, group: 8, bias: true})
			return b.model(b.add(b.add(c3, "x"), c1))
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"two blocks back to back, no activation", 8, 10, func(b *builder) *onnx.Model {
			y1 := b.add(b.add(b.conv3("x"), b.conv1("x")), b.bn("x", 8))
			y2 := b.add(b.add(b.conv3(y1), b.conv1(y1)), b.bn(y1, 8))
			return b.model(y2)
		}, want{blocks: []string{"3x3+1x1+identity", "3x3+1x1+identity"}, convs: 2}},
		{"weights behind Identity and Constant nodes", 8, 10, func(b *builder) *onnx.Model {
			c3 := b.conv3("x")
			conv := b.last()
			conv.Inputs[1] = b.node("Identity", []string{conv.Inputs[1]})
			c1 := b.conv1("x")
			b.last().Inputs[2] = b.constant([]int64{8}, ones(8))
			// Constants must precede their readers.
			n := len(b.g.Nodes)
			b.g.Nodes[n-1], b.g.Nodes[n-2] = b.g.Nodes[n-2], b.g.Nodes[n-1]
			return b.model(b.add(c3, c1))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
		{"BN after the branch sum (post-BN)", 8, 10, func(b *builder) *onnx.Model {
			return b.model(b.node("Relu", []string{b.bn(b.add(b.conv3("x"), b.conv1("x")), 8)}))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
		{"post-BN block as a branch of an outer block", 8, 10, func(b *builder) *onnx.Model {
			inner := b.bn(b.add(b.conv3("x"), b.conv1("x")), 8)
			return b.model(b.add(inner, b.bn(b.conv("x", 8, convOpts{k: 1}), 8)))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
		{"standalone Conv+BN on a conv with bias", 8, 10, func(b *builder) *onnx.Model {
			y := b.node("Relu", []string{b.bn(b.conv("x", 8, convOpts{cout: 4, k: 3, pads: []int64{1, 1, 1, 1}, bias: true}), 4)})
			return b.model(y)
		}, want{convBN: 1, convs: 1}},
		{"IR 3: initializers listed as graph inputs", 8, 10, func(b *builder) *onnx.Model {
			b.ir = 3
			b.ops = 8
			m := b.model(b.add(b.add(b.bn(b.conv("x", 8, convOpts{k: 3, pads: []int64{1, 1, 1, 1}}), 8), b.conv1("x")), b.bn("x", 8)))
			for _, t := range m.Graph.Initializers {
				dims := make([]onnx.Dim, len(t.Dims))
				for i, d := range t.Dims {
					dims[i].Value = d
				}
				m.Graph.Inputs = append(m.Graph.Inputs, onnx.TensorValue(t.Name, onnx.Float, dims...))
			}
			return m
		}, want{blocks: []string{"3x3+1x1+identity"}, convs: 1}},
		{"unsupported op on a branch beside a mergeable pair", 8, 10, func(b *builder) *onnx.Model {
			return b.model(b.add(b.add(b.conv3("x"), b.conv1("x")), b.node("Abs", []string{"x"})))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1, skipped: "unsupported op Abs"}},
		{"bias of the wrong shape beside a mergeable pair", 8, 10, func(b *builder) *onnx.Model {
			return b.model(b.add(b.add(b.conv3("x"), b.conv1("x")), b.init("bias", 1, 10)))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1, skipped: "not per-channel"}},
		{"block plus an unrelated tensor", 8, 10, func(b *builder) *onnx.Model {
			other := b.node("Neg", []string{b.node("Relu", []string{"x"})})
			return b.model(b.add(b.add(b.conv3("x"), b.conv1("x")), other))
		}, want{blocks: []string{"3x3+1x1"}, convs: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.build(newBuilder(tc.c, tc.h))
			orig := onnx.Encode(m)
			pristine, err := onnx.Decode(orig)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Model(m)
			if err != nil {
				t.Fatalf("Model: %v", err)
			}
			t.Log(rep)
			var blocks []string
			convBN := 0
			for _, f := range rep.Fusions {
				switch f.Kind {
				case KindRepVGG:
					blocks = append(blocks, blockShape(f.Branches))
				case KindConvBN:
					convBN++
				}
			}
			if !reflect.DeepEqual(blocks, tc.want.blocks) || convBN != tc.want.convBN {
				t.Errorf("fused blocks %v and %d Conv+BN, want %v and %d", blocks, convBN, tc.want.blocks, tc.want.convBN)
			}
			ops := countOps(m.Graph)
			if ops["Conv"] != tc.want.convs || ops["BatchNormalization"] != 0 {
				t.Errorf("ops after: %v, want %d Conv and no BatchNormalization", ops, tc.want.convs)
			}
			checkSkips(t, rep, tc.want.skipped)
			checkRewrite(t, pristine, m, rep)
			fused := roundTrip(t, m)
			shape := []int64{1, tc.c, tc.h, tc.h}
			d, scale := equivalence(t, orig, fused, "x", m.Graph.Outputs[0].Name, shape, nil)
			t.Logf("max abs diff fused vs unfused: %.3g (outputs up to %.3g)", d, scale)
			if d > 1e-4 {
				t.Errorf("fused output differs by %g (limit 1e-4)", d)
			}
		})
	}
}

// checkSkips checks the report skipped exactly one pattern whose reason
// holds want, or none when want is "".
func checkSkips(t *testing.T, rep Report, want string) {
	t.Helper()
	switch {
	case want == "" && len(rep.Skipped) != 0:
		t.Errorf("skipped %+v, want none", rep.Skipped)
	case want != "" && (len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0].Reason, want)):
		t.Errorf("skipped %+v, want one whose reason holds %q", rep.Skipped, want)
	}
}

// TestLeftUntouched covers graphs that must come out byte-identical: near
// misses that are reported, and look-alikes (residual adds, sums of
// unrelated tensors) that are not even candidates.
func TestLeftUntouched(t *testing.T) {
	cases := []struct {
		name    string
		build   func(b *builder) *onnx.Model
		skipped string // substring of the only skip reason; "" for none
		runs    bool   // the graph is valid, so compare outputs too
	}{
		{"unknown op on a branch", func(b *builder) *onnx.Model {
			return b.model(b.node("Sum", []string{b.conv3("x"), b.conv1("x"), b.node("Abs", []string{"x"})}))
		}, "unsupported op Abs", true},
		{"1x1 with pad 1 beside 3x3 with pad 1", func(b *builder) *onnx.Model {
			c1 := b.conv("x", 8, convOpts{k: 1, pads: []int64{1, 1, 1, 1}, bias: true})
			return b.model(b.add(b.conv3("x"), c1))
		}, "does not align", false},
		{"dilation 2", func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, dilation: 2, pads: []int64{2, 2, 2, 2}, bias: true})
			return b.model(b.add(c3, b.conv1("x")))
		}, "dilations [2 2]", true},
		{"stride mismatch", func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, stride: 2, pads: []int64{1, 1, 1, 1}, bias: true})
			return b.model(b.add(c3, b.conv1("x")))
		}, "stride [1 1]", false},
		{"groups mismatch", func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, group: 2, pads: []int64{1, 1, 1, 1}, bias: true})
			return b.model(b.add(c3, b.conv1("x")))
		}, "group 1", true},
		{"identity with stride 2", func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{k: 3, stride: 2, pads: []int64{1, 1, 1, 1}, bias: true})
			c1 := b.conv("x", 8, convOpts{k: 1, stride: 2, bias: true})
			return b.model(b.node("Sum", []string{c3, c1, b.bn("x", 8)}))
		}, "needs stride 1", false},
		{"identity with 8 to 16 channels", func(b *builder) *onnx.Model {
			c3 := b.conv("x", 8, convOpts{cout: 16, k: 3, pads: []int64{1, 1, 1, 1}, bias: true})
			return b.model(b.add(c3, "x"))
		}, "as many input as output channels", false},
		{"1x1 output shared with a graph output", func(b *builder) *onnx.Model {
			c1 := b.conv1("x")
			m := b.model(b.add(b.conv3("x"), c1))
			m.Graph.Outputs = append(m.Graph.Outputs, anyNCHW(c1))
			return m
		}, "shared intermediate value", true},
		{"1x1 output read by another node", func(b *builder) *onnx.Model {
			c1 := b.conv1("x")
			y := b.add(b.conv3("x"), c1)
			return b.model(b.node("Mul", []string{y, b.node("Sigmoid", []string{c1})}))
		}, "shared intermediate value", true},
		{"conv output read inside a subgraph", func(b *builder) *onnx.Model {
			c1 := b.conv1("x")
			y := b.add(b.conv3("x"), c1)
			body := &onnx.Graph{Name: "then",
				Nodes:   []*onnx.Node{{Name: "inner", OpType: "Identity", Inputs: []string{c1}, Outputs: []string{"inner_out"}}},
				Outputs: []*onnx.ValueInfo{anyNCHW("inner_out")}}
			cond := b.g.Initializers
			b.g.Initializers = append(cond, &onnx.Tensor{Name: "cond", DataType: onnx.Bool, RawData: []byte{1}})
			z := b.node("If", []string{"cond"},
				&onnx.Attribute{Name: "then_branch", Type: onnx.AttrGraph, G: body},
				&onnx.Attribute{Name: "else_branch", Type: onnx.AttrGraph, G: body})
			return b.model(b.add(y, z))
		}, "shared intermediate value", true},
		{"training-mode BN (running statistics out)", func(b *builder) *onnx.Model {
			y := b.bn(b.conv("x", 8, convOpts{k: 3, pads: []int64{1, 1, 1, 1}}), 8)
			b.last().Outputs = append(b.last().Outputs, "rm", "rv")
			return b.model(y)
		}, "training mode", false},
		{"training_mode=1 (opset 15)", func(b *builder) *onnx.Model {
			b.ops = 15
			y := b.bn(b.conv("x", 8, convOpts{k: 3, pads: []int64{1, 1, 1, 1}}), 8)
			b.last().Attrs = append(b.last().Attrs, onnx.Int("training_mode", 1))
			return b.model(y)
		}, "training_mode=1", false},
		{"conv weight is a graph input", func(b *builder) *onnx.Model {
			y := b.bn(b.conv("x", 8, convOpts{k: 3, pads: []int64{1, 1, 1, 1}}), 8)
			b.g.Inputs = append(b.g.Inputs, onnx.TensorValue("w", onnx.Float, onnx.Dim{Value: 8}, onnx.Dim{Value: 8}, onnx.Dim{Value: 3}, onnx.Dim{Value: 3}))
			b.g.Nodes[0].Inputs[1] = "w"
			b.g.Initializers = b.g.Initializers[1:]
			return b.model(y)
		}, `weight "w" is not a constant`, false},
		{"initializer also a graph input (IR 7)", func(b *builder) *onnx.Model {
			y := b.add(b.conv3("x"), b.conv1("x"))
			w := b.g.Nodes[0].Inputs[1]
			b.g.Inputs = append(b.g.Inputs, onnx.TensorValue(w, onnx.Float, onnx.Dim{Value: 8}, onnx.Dim{Value: 8}, onnx.Dim{Value: 3}, onnx.Dim{Value: 3}))
			return b.model(y)
		}, "graph input that can be fed at run time", true},
		{"conv weight of rank 2", func(b *builder) *onnx.Model {
			y := b.bn(b.node("Conv", []string{"x", b.init("w", 1, 8, 8)}), 8)
			return b.model(y)
		}, "rank 2", false},
		{"BN scale of the wrong length", func(b *builder) *onnx.Model {
			y := b.bn(b.conv("x", 8, convOpts{k: 3, pads: []int64{1, 1, 1, 1}}), 8)
			for i, t := range b.g.Initializers {
				if t.Name == b.last().Inputs[1] {
					b.g.Initializers[i] = onnx.NewFloat(t.Name, []int64{6}, ones(6))
				}
			}
			return b.model(y)
		}, "scale", false},
		{"auto_pad SAME_UPPER", func(b *builder) *onnx.Model {
			y := b.add(b.conv3("x"), b.conv1("x"))
			b.g.Nodes[0].Attrs = append(b.g.Nodes[0].Attrs[:3], onnx.StringAttr("auto_pad", "SAME_UPPER"), b.g.Nodes[0].Attrs[4])
			return b.model(y)
		}, "auto_pad SAME_UPPER", true},
		{"bottleneck residual Add(x, SiLU(conv))", func(b *builder) *onnx.Model {
			h := b.conv3(b.conv1("x"))
			silu := b.node("Mul", []string{h, b.node("Sigmoid", []string{h})})
			return b.model(b.add("x", silu))
		}, "", true},
		{"Add of two unrelated convs", func(b *builder) *onnx.Model {
			a := b.node("Relu", []string{"x"})
			return b.model(b.add(b.conv3(a), b.conv1("x")))
		}, "", true},
		{"lone conv plus a bias", func(b *builder) *onnx.Model {
			return b.model(b.add(b.conv3("x"), b.init("bias", 1, 8, 1, 1)))
		}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.build(newBuilder(8, 10))
			before := onnx.Encode(m)
			rep, err := Model(m)
			if err != nil {
				t.Fatalf("Model: %v", err)
			}
			t.Log(rep)
			if len(rep.Fusions) != 0 {
				t.Errorf("fused %+v", rep.Fusions)
			}
			checkSkips(t, rep, tc.skipped)
			if !bytes.Equal(onnx.Encode(m), before) {
				t.Errorf("graph changed")
			}
			if tc.runs {
				d, _ := equivalence(t, before, onnx.Encode(m), "x", m.Graph.Outputs[0].Name, []int64{1, 8, 10, 10}, nil)
				if d != 0 {
					t.Errorf("outputs differ by %g", d)
				}
			}
		})
	}
}

// TestInconsistentGraph checks that contradictory tensors are errors that
// name the tensor, and that the graph is left as it was.
func TestInconsistentGraph(t *testing.T) {
	b := newBuilder(8, 10)
	m := b.model(b.add(b.add(b.conv3("x"), b.conv1("x")), b.bn("x", 8)))
	w := b.g.Initializers[0]
	w.RawData = w.RawData[:len(w.RawData)-4]
	before := onnx.Encode(m)
	_, err := Model(m)
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), w.Name) {
		t.Fatalf("Model: %v, want ErrInconsistent naming %s", err, w.Name)
	}
	if !bytes.Equal(onnx.Encode(m), before) {
		t.Errorf("graph changed on error")
	}
	if _, err := Model(nil); !errors.Is(err, ErrNoGraph) {
		t.Errorf("Model(nil): %v", err)
	}
	if _, err := Model(&onnx.Model{}); !errors.Is(err, ErrNoGraph) {
		t.Errorf("Model without graph: %v", err)
	}
	if _, err := Model(&onnx.Model{Graph: &onnx.Graph{Nodes: []*onnx.Node{nil}}}); !errors.Is(err, ErrInconsistent) {
		t.Errorf("Model with a nil node: %v", err)
	}
	// Nodes without inputs: nothing to fold, and nothing may index past them.
	bare := &onnx.Model{Graph: &onnx.Graph{Nodes: []*onnx.Node{
		{OpType: "Conv", Outputs: []string{"c"}}, {OpType: "BatchNormalization", Inputs: []string{"c"}, Outputs: []string{"y"}},
		{OpType: "Add", Outputs: []string{"a"}}, {OpType: "BatchNormalization", Outputs: []string{"b"}},
	}, Outputs: []*onnx.ValueInfo{{Name: "y"}, {Name: "a"}, {Name: "b"}}}}
	if rep, err := Model(bare); err != nil || len(rep.Fusions) != 0 {
		t.Errorf("Model on input-less nodes: %+v, %v", rep, err)
	}
}

// TestConvBN1D folds a BatchNormalization into a 1-D conv: the fold works
// per output channel whatever the conv's rank.
func TestConvBN1D(t *testing.T) {
	b := newBuilder(4, 12)
	b.g.Inputs = []*onnx.ValueInfo{onnx.TensorValue("x", onnx.Float, onnx.Dim{Value: 1}, onnx.Dim{Value: 4}, onnx.Dim{Value: 12})}
	c := b.node("Conv", []string{"x", b.init("w", 0.3, 6, 4, 3)}, onnx.Ints("kernel_shape", 3), onnx.Ints("pads", 1, 1))
	y := b.node("Relu", []string{b.bn(c, 6)})
	m := b.model(y)
	m.Graph.Outputs = []*onnx.ValueInfo{onnx.TensorValue(y, onnx.Float, onnx.Dim{Param: "n"}, onnx.Dim{Param: "c"}, onnx.Dim{Param: "l"})}
	orig := onnx.Encode(m)
	rep, err := Model(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Fusions) != 1 || rep.Fusions[0].Kind != KindConvBN || rep.Fusions[0].Node != "Conv_2" || len(rep.Skipped) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if ops := countOps(m.Graph); ops["BatchNormalization"] != 0 || ops["Conv"] != 1 {
		t.Errorf("ops after: %v", ops)
	}
	fused := roundTrip(t, m)
	d, _ := equivalence(t, orig, fused, "x", y, []int64{1, 4, 12}, nil)
	t.Logf("max abs diff fused vs unfused: %.3g", d)
	if d > 1e-4 {
		t.Errorf("fused output differs by %g", d)
	}
}

func TestReportString(t *testing.T) {
	cases := []struct {
		name string
		rep  Report
		want string
	}{
		{"nothing", Report{NodesBefore: 3, NodesAfter: 3, ParamsBefore: 999, ParamsAfter: 999},
			"fused 0 RepVGG blocks, 0 Conv+BN; 0 skipped; nodes 3 -> 3; params 999 -> 999"},
		{"repyolo", Report{
			Fusions: append(append(append(
				repeat(Fusion{Kind: KindRepVGG, Branches: []string{"3x3", "1x1", "identity(bn)"}}, 10),
				Fusion{Kind: KindRepVGG, Branches: []string{"3x3", "1x1", "identity(mul/add)"}}),
				repeat(Fusion{Kind: KindRepVGG, Branches: []string{"3x3", "1x1"}}, 6)...),
				repeat(Fusion{Kind: KindConvBN}, 57)...),
			NodesBefore: 400, NodesAfter: 250, ParamsBefore: 7725885, ParamsAfter: 7225885},
			"fused 17 RepVGG blocks (3x3+1x1+identity: 11, 3x3+1x1: 6), 57 Conv+BN; 0 skipped; nodes 400 -> 250; params 7,725,885 -> 7,225,885"},
		{"one block, one skip", Report{
			Fusions:     []Fusion{{Kind: KindRepVGG, Branches: []string{"3x3", "1x1", "bias"}}},
			Skipped:     []Skip{{Kind: KindRepVGG, Node: "Add_7", Reason: "block over \"x\": dilations [2 2]"}},
			NodesBefore: 5, NodesAfter: 3, ParamsBefore: 1000, ParamsAfter: 584},
			"fused 1 RepVGG block (3x3+1x1+bias: 1), 0 Conv+BN; 1 skipped; nodes 5 -> 3; params 1,000 -> 584\n" +
				"  skipped repvgg at Add_7: block over \"x\": dilations [2 2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rep.String(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func repeat(f Fusion, n int) []Fusion {
	out := make([]Fusion, n)
	for i := range out {
		out[i] = f
	}
	return out
}
