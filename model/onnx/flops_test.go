package onnx

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// convNet is input [N,8,32,32] → Conv 3x3 s2 p1 (16 out) → BN → Sigmoid·x →
// Resize x2 → Concat with itself → MaxPool 5 s1 p2 → grouped Conv 1x1 (g=4, 8 out).
func convNet() *Graph {
	w1 := NewFloat("w1", []int64{16, 8, 3, 3}, make([]float32, 16*8*9))
	w2 := NewFloat("w2", []int64{8, 8, 1, 1}, make([]float32, 64))
	bn := func(n string) *Tensor { return NewFloat(n, []int64{16}, make([]float32, 16)) }
	return &Graph{
		Inputs:       []*ValueInfo{TensorValue("x", Float)},
		Initializers: []*Tensor{w1, w2, bn("s"), bn("b"), bn("m"), bn("v"), NewFloat("scales", []int64{4}, []float32{1, 1, 2, 2})},
		Nodes: []*Node{
			{Name: "c1", OpType: "Conv", Inputs: []string{"x", "w1"}, Outputs: []string{"y1"},
				Attrs: []*Attribute{Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)}},
			{Name: "bn", OpType: "BatchNormalization", Inputs: []string{"y1", "s", "b", "m", "v"}, Outputs: []string{"y2"}},
			{Name: "sig", OpType: "Sigmoid", Inputs: []string{"y2"}, Outputs: []string{"y3"}},
			{Name: "mul", OpType: "Mul", Inputs: []string{"y2", "y3"}, Outputs: []string{"y4"}},
			{Name: "up", OpType: "Resize", Inputs: []string{"y4", "", "scales"}, Outputs: []string{"y5"}},
			{Name: "cat", OpType: "Concat", Inputs: []string{"y5", "y5"}, Outputs: []string{"y6"}, Attrs: []*Attribute{Int("axis", 1)}},
			{Name: "pool", OpType: "MaxPool", Inputs: []string{"y6"}, Outputs: []string{"y7"},
				Attrs: []*Attribute{Ints("kernel_shape", 5, 5), Ints("pads", 2, 2, 2, 2)}},
			{Name: "c2", OpType: "Conv", Inputs: []string{"y7", "w2"}, Outputs: []string{"y8"}, Attrs: []*Attribute{Int("group", 4)}},
		},
	}
}

func TestConvFLOPs(t *testing.T) {
	got, err := ConvFLOPs(convNet(), []int64{2, 8, 32, 32})
	if err != nil {
		t.Fatal(err)
	}
	// c1: 2·16·8·3·3 · 16·16 · N=2; c2 on [2,32,32,32]: 2·8·(32/4)·1·1 · 32·32 · 2.
	want := int64(2*16*8*9*16*16*2 + 2*8*8*32*32*2)
	if got != want {
		t.Errorf("ConvFLOPs = %d, want %d", got, want)
	}
}

func TestConvFLOPsErrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(g *Graph)
		input  []int64
		substr string
	}{
		{"unsupported op before conv", func(g *Graph) { g.Nodes[3].OpType = "Einsum" }, []int64{1, 8, 32, 32}, "c2"},
		{"channel mismatch", nil, []int64{1, 4, 32, 32}, "c1"},
		{"rank mismatch", nil, []int64{1, 8, 32}, "c1"},
		{"weight not constant", func(g *Graph) { g.Nodes[0].Inputs[1] = "w_dynamic" }, []int64{1, 8, 32, 32}, "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := convNet()
			if tt.edit != nil {
				tt.edit(g)
			}
			_, err := ConvFLOPs(g, tt.input)
			if !errors.Is(err, ErrShapeUnknown) || !strings.Contains(err.Error(), "conv "+tt.substr) {
				t.Errorf("ConvFLOPs error = %v, want %v naming conv %s", err, ErrShapeUnknown, tt.substr)
			}
		})
	}
}

func TestBroadcast(t *testing.T) {
	tests := []struct {
		a, b, want []int64
	}{
		{[]int64{1, 3, 4, 4, 2}, []int64{1, 1, 4, 4, 2}, []int64{1, 3, 4, 4, 2}},
		{[]int64{2, 1, 5}, []int64{3, 1}, []int64{2, 3, 5}},
		{[]int64{4}, nil, []int64{4}},
	}
	for _, tt := range tests {
		got, err := broadcast(tt.a, tt.b)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("broadcast(%v, %v) = %v, %v; want %v", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := broadcast([]int64{3}, []int64{4}); !errors.Is(err, ErrShapeUnknown) {
		t.Errorf("broadcast([3], [4]) error = %v, want %v", err, ErrShapeUnknown)
	}
}
