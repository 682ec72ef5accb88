package yolo

import (
	"errors"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// TestDeployWeightsRoundTrip: a fused model's weights, written as a fused
// state_dict and built again, give the fused graph back: the same ops with
// the same attributes, and every conv's weight and bias bit for bit. This is
// how the built-in model ships (tools/distil/ship), and how a user's
// ultralytics model.fuse() state_dict loads.
func TestDeployWeightsRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Arch: ArchRepYOLOv5s, Rep: RepAll, Width: 0.03125, Depth: 0.33, ImgSize: 64, Classes: 3, Seed: 7},
		{Arch: ArchYOLOv5s, Width: 0.03125, Depth: 0.33, ImgSize: 64, Classes: 3, Seed: 8},
		{Arch: ArchRepYOLOv5sV5, Width: 0.0625, Depth: 0.33, ImgSize: 64, Classes: 2, Seed: 9},
	} {
		t.Run(cfg.Arch+cfg.Rep, func(t *testing.T) {
			fused, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fuse.Model(fused); err != nil {
				t.Fatal(err)
			}
			w, err := DeployWeights(fused)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := w["model.0.conv.bias"]; !ok && cfg.Arch != ArchRepYOLOv5sV5 {
				t.Errorf("no model.0.conv.bias among %d tensors", len(w))
			}
			b, err := safetensors.Encode(w, nil)
			if err != nil {
				t.Fatal(err)
			}
			src, err := safetensors.Decode(b, "deploy.safetensors")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Weights = src
			again, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			sameConvs(t, fused, again)
		})
	}
}

func sameConvs(t *testing.T, want, got *onnx.Model) {
	t.Helper()
	ops := func(m *onnx.Model) []string {
		var s []string
		for _, n := range m.Graph.Nodes {
			s = append(s, n.OpType)
		}
		return s
	}
	if !slices.Equal(ops(want), ops(got)) {
		t.Fatalf("ops differ:\n fused %v\n built %v", ops(want), ops(got))
	}
	if pw, pg := onnx.Params(want.Graph), onnx.Params(got.Graph); pw != pg {
		t.Errorf("params %d, want %d", pg, pw)
	}
	data := func(m *onnx.Model, name string) []float32 {
		for _, in := range m.Graph.Initializers {
			if in.Name == name {
				f, err := in.Floats()
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		t.Fatalf("no initializer %s", name)
		return nil
	}
	for i, n := range want.Graph.Nodes {
		g := got.Graph.Nodes[i]
		if n.OpType != "Conv" {
			continue
		}
		for _, a := range []string{"kernel_shape", "strides", "pads", "group"} {
			if !slices.Equal(n.AttrInts(a, nil), g.AttrInts(a, nil)) || n.AttrInt(a, 0) != g.AttrInt(a, 0) {
				t.Errorf("%s: attribute %s differs", n.Name, a)
			}
		}
		for j := 1; j < 3; j++ {
			if !slices.Equal(data(want, n.Inputs[j]), data(got, g.Inputs[j])) {
				t.Errorf("%s input %d differs from %s's", g.Name, j, n.Name)
			}
		}
	}
}

// TestDeployWeightsRefusesUnfused: a training-form graph has no deploy
// weights to give.
func TestDeployWeightsRefusesUnfused(t *testing.T) {
	m, err := Build(Config{Arch: ArchRepYOLOv5s, Width: 0.03125, Depth: 0.33, ImgSize: 64, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DeployWeights(m); !errors.Is(err, ErrWeight) {
		t.Errorf("DeployWeights of a training graph: %v, want %v", err, ErrWeight)
	}
}
