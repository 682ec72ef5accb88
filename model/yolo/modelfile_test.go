package yolo

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
	"go.yaml.in/yaml/v3"
)

// smallCase is one fixture of testdata/gen_modelfile.py (its CASES).
type smallCase struct {
	prefix  string
	file    func(t *testing.T) *ModelFile
	width   float64
	classes int
	na      int
	// fusedBN is what fusion leaves: BottleneckCSP's BN follows a Concat,
	// with no conv to fold into (upstream's fuse keeps it too).
	fusedBN int
}

var smallCases = []smallCase{
	{"seed_small", builtin("repyolov5s-v5"), 0.0625, 3, 3, 0},
	{"v6_small", builtin("yolov5s"), 0.03125, 3, 3, 0},
	{"mixed_small", func(t *testing.T) *ModelFile {
		f, err := ReadModelFile("testdata/mixed.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}, 0, 2, 2, 2},
}

// genAnchors are the generator's ANCHORS (pixels): none is a default anchor.
var genAnchors = [][]float32{{4, 5, 7, 11, 12, 8}, {14, 24, 22, 17, 25, 40}, {38, 30, 45, 52, 60, 44}}

func builtin(name string) func(t *testing.T) *ModelFile {
	return func(t *testing.T) *ModelFile {
		f, err := BuiltinModelFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

func openST(t *testing.T, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (c smallCase) config(t *testing.T, w Source) Config {
	return Config{ModelFile: c.file(t), Width: c.width, ImgSize: 64, Weights: w}
}

func (c smallCase) anchorsTotal() int { return c.na * (8*8 + 4*4 + 2*2) }

// compareOutput0 returns the largest box (px) and score differences.
func compareOutput0(t *testing.T, got, want []float32, no int) (box, score float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("output0 has %d values, torch %d", len(got), len(want))
	}
	for i := range want {
		d := math.Abs(float64(got[i] - want[i]))
		if i%no < 4 {
			box = max(box, d)
		} else {
			score = max(score, d)
		}
	}
	return box, score
}

// TestModelFileTorchReference builds each fixture's model file with its
// torch weights, in training form and then fused, and compares output0
// with torch's on the same input in ONNX Runtime. The seed case is the
// seed's own RepYOLOv5s topology (Focus, SPP, RepVGG), with anchors that
// only the weights carry.
func TestModelFileTorchReference(t *testing.T) {
	for _, c := range smallCases {
		t.Run(c.prefix, func(t *testing.T) {
			w := openST(t, "testdata/"+c.prefix+".safetensors")
			io := openST(t, "testdata/"+c.prefix+"_io.safetensors")
			m, rep, err := BuildReport(c.config(t, w))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report: %s", rep)
			if rep.Classes != c.classes || rep.NamesFrom != "weights metadata" || rep.AnchorsFrom != "weights model."+fmt.Sprint(rep.Layers-1)+".anchors" {
				t.Errorf("report %+v", rep)
			}
			for l, a := range rep.Anchors {
				if want := genAnchors[l][:2*c.na]; fmt.Sprint(a) != fmt.Sprint(want) {
					t.Errorf("level %d anchors %v, want the weights' %v", l, a, want)
				}
			}
			const batch = 2
			in, err := io.Tensor("images", []int{batch, 3, 64, 64})
			if err != nil {
				t.Fatal(err)
			}
			no := 5 + c.classes
			want, err := io.Tensor("output0", []int{batch, c.anchorsTotal(), no})
			if err != nil {
				t.Fatal(err)
			}
			train := runORT(t, onnx.Encode(m), in, []int64{batch, 3, 64, 64})[0]
			box, score := compareOutput0(t, train.data, want, no)
			t.Logf("training form: output0 boxes max abs diff %.3g px, scores %.3g", box, score)
			if box > 1e-3 || score > 1e-3 {
				t.Errorf("training form: boxes %.3g px, scores %.3g; want both within 1e-3", box, score)
			}

			if _, err := fuse.Model(m); err != nil {
				t.Fatal(err)
			}
			if n := countOps(m, "BatchNormalization"); n != c.fusedBN {
				t.Errorf("fused: %d BatchNormalization nodes left, want %d", n, c.fusedBN)
			}
			fused := runORT(t, onnx.Encode(m), in, []int64{batch, 3, 64, 64})[0]
			box, score = compareOutput0(t, fused.data, want, no)
			t.Logf("fused: output0 boxes max abs diff %.3g px, scores %.3g", box, score)
			if box > 1e-3 || score > 1e-3 {
				t.Errorf("fused: boxes %.3g px, scores %.3g; want both within 1e-3", box, score)
			}
		})
	}
}

// rewrite copies a safetensors file's tensors through edit and decodes the result.
func rewrite(t *testing.T, f *safetensors.File, edit func(map[string]safetensors.Tensor)) *safetensors.File {
	t.Helper()
	ts := map[string]safetensors.Tensor{}
	for _, n := range f.Names() {
		shape, _ := f.Shape(n)
		v, err := f.Tensor(n, shape)
		if err != nil {
			t.Fatal(err)
		}
		ts[n] = safetensors.Tensor{Shape: shape, Data: v}
	}
	edit(ts)
	b, err := safetensors.Encode(ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := safetensors.Decode(b, "edited-"+f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAnchorsFromWeights: the seed fixture's anchors differ from the model
// file's. Boxes match torch's only with the weights' anchors, read from
// Detect.anchors (grid units) or, as YOLOv5 v5.0 also kept them,
// anchor_grid (pixels); without either, the file's anchors are used, the
// report says so, and the boxes are wrong.
func TestAnchorsFromWeights(t *testing.T) {
	c := smallCases[0]
	w := openST(t, "testdata/seed_small.safetensors")
	io := openST(t, "testdata/seed_small_io.safetensors")
	in, err := io.Tensor("images", []int{2, 3, 64, 64})
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.Tensor("output0", []int{2, c.anchorsTotal(), 8})
	if err != nil {
		t.Fatal(err)
	}
	gridOnly := rewrite(t, w, func(ts map[string]safetensors.Tensor) {
		a := ts["model.24.anchors"]
		delete(ts, "model.24.anchors")
		px := make([]float32, len(a.Data))
		for i, v := range a.Data {
			px[i] = v * float32(int(8)<<(i/6))
		}
		ts["model.24.anchor_grid"] = safetensors.Tensor{Shape: []int{3, 1, 3, 1, 1, 2}, Data: px}
	})
	none := rewrite(t, w, func(ts map[string]safetensors.Tensor) { delete(ts, "model.24.anchors") })
	for _, tt := range []struct {
		name    string
		w       Source
		from    string
		matches bool
	}{
		{"anchors", w, "weights model.24.anchors", true},
		{"anchor_grid", gridOnly, "weights model.24.anchor_grid", true},
		{"none", none, "model file", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := c.config(t, tt.w)
			cfg.Classes = 3
			m, rep, err := BuildReport(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.AnchorsFrom != tt.from {
				t.Errorf("anchors from %q, want %q", rep.AnchorsFrom, tt.from)
			}
			meta := map[string]string{}
			for _, kv := range m.Metadata {
				meta[kv.Key] = kv.Value
			}
			if meta["anchors"] != formatAnchors(rep.Anchors) || meta["strides"] != "[8, 16, 32]" || meta["stride"] != "32" {
				t.Errorf("metadata %v", meta)
			}
			out := runORT(t, onnx.Encode(m), in, []int64{2, 3, 64, 64})[0]
			box, score := compareOutput0(t, out.data, want, 8)
			t.Logf("boxes max abs diff %.3g px, scores %.3g", box, score)
			if tt.matches && box > 1e-3 {
				t.Errorf("boxes differ from torch's by %.3g px", box)
			}
			if !tt.matches && box < 1 {
				t.Errorf("boxes with the file's anchors are within %.3g px of torch's: the fixture does not tell anchors apart", box)
			}
			if score > 1e-3 {
				t.Errorf("scores differ by %.3g", score)
			}
		})
	}
}

// TestModelFileErrors checks that each bad model file or mismatched weight
// set is an error naming the layer, the row and what was expected.
func TestModelFileErrors(t *testing.T) {
	v5s, err := BuiltinModelFileText("yolov5s")
	if err != nil {
		t.Fatal(err)
	}
	text := string(v5s)
	parse := func(s string) *ModelFile {
		f, err := ParseModelFile([]byte(s), "edited.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	seedW := openST(t, "testdata/seed_small.safetensors")
	v6W := openST(t, "testdata/v6_small.safetensors")
	seed, err := BuiltinModelFile("repyolov5s-v5")
	if err != nil {
		t.Fatal(err)
	}
	yolov5s, err := BuiltinModelFile("yolov5s")
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := ReadModelFile("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	extra := rewrite(t, seedW, func(ts map[string]safetensors.Tensor) {
		ts["model.25.m.0.weight"] = safetensors.Tensor{Shape: []int{3, 8, 1, 1}, Data: make([]float32, 24)}
		ts["model.3.rbr_dense.bn.num_batches_tracked"] = safetensors.Tensor{Shape: []int{}, Data: []float32{1}}
	})
	tests := []struct {
		name   string
		cfg    Config
		is     error
		substr []string
	}{
		{"unknown module", Config{ModelFile: parse(strings.Replace(text, "[-1, 3, C3, [256, False]],  # 17", "[-1, 1, GhostConv, [256, 3]],  # 17", 1))},
			ErrModelFile, []string{"layer 17", "row 7 of head", "unknown module GhostConv"}},
		{"focus file, 6x6 weights", Config{ModelFile: seed, Width: 0.0625, ImgSize: 64, Classes: 3, Weights: v6W},
			safetensors.ErrMissing, []string{"layer 0 is Focus in this file", "needs model.0.conv.conv.weight", "a 6x6 conv (model.0.conv.weight [8 3 6 6])"}},
		{"6x6 file, focus weights", Config{ModelFile: yolov5s, Width: 0.03125, ImgSize: 64, Weights: seedW},
			safetensors.ErrMissing, []string{"layer 0 is Conv in this file", "a Focus layer (model.0.conv.conv.weight [8 12 3 3])"}},
		{"unused tensors", Config{ModelFile: seed, Width: 0.0625, ImgSize: 64, Classes: 3, Weights: extra},
			ErrUnused, []string{"1 tensor this model file does not use", "model.25.m.0.weight [3 8 1 1]"}},
		{"other width", Config{ModelFile: seed, Width: 0.125, ImgSize: 64, Weights: seedW},
			safetensors.ErrShape, []string{"layer 3 (RepVGGBlock, row 3 of backbone (line 19)): these weights have model.3.rbr_dense.conv.weight [8 8 3 3] where this file needs [16 8 3 3]", "width_multiple"}},
		{"anchor count only", Config{ModelFile: mixed, ImgSize: 64}, ErrConfig, []string{"only the anchor count (2 per level)", "model.12.anchors"}},
		{"bad from", Config{ModelFile: parse(strings.Replace(text, "[[-1, 6], 1, Concat, [1]]", "[[-1, 16], 1, Concat, [1]]", 1))},
			ErrModelFile, []string{"layer 12", "from 16 names no earlier layer"}},
		{"Concat of different sizes", Config{ModelFile: parse(strings.Replace(text, "[[-1, 6], 1, Concat, [1]]", "[[-1, 4], 1, Concat, [1]]", 1))},
			ErrModelFile, []string{"layer 12", "Concat of 40x40"}},
		{"unsupported arg", Config{ModelFile: parse(strings.Replace(text, "[-1, 1, SPPF, [1024, 5]]", "[-1, 1, SPPF, [1024, 5, 7]]", 1))},
			ErrModelFile, []string{"layer 9", "SPPF takes at most 2 args"}},
		{"Detect not last", Config{ModelFile: parse(strings.Replace(text, "[-1, 1, SPPF, [1024, 5]]", "[[4, 6, 8], 1, Detect, [nc, anchors]]", 1))},
			ErrModelFile, []string{"layer 9", "Detect must be the last row"}},
		{"arch with a model file", Config{ModelFile: seed, Arch: ArchYOLOv5s}, ErrConfig, []string{"choose one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.cfg)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Build error = %v, want %v", err, tt.is)
			}
			for _, s := range tt.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestParseModelFileErrors(t *testing.T) {
	base := "nc: 2\nanchors: [[10,13, 16,30]]\nbackbone:\n  [[-1, 1, Conv, [16, 3, 2]]]\nhead:\n  [[[0], 1, Detect, [nc, anchors]]]\n"
	if _, err := ParseModelFile([]byte(base), "ok.yaml"); err != nil {
		t.Fatalf("base file: %v", err)
	}
	tests := []struct{ name, text, substr string }{
		{"not yaml", "nc: [", "bad.yaml"},
		{"not a mapping", "- 1\n- 2\n", "not a YAML mapping"},
		{"no head", "nc: 2\nanchors: 3\nbackbone: [[-1, 1, Conv, [16]]]\n", "no head"},
		{"nc", strings.Replace(base, "nc: 2", "nc: -4", 1), "nc"},
		{"width", base + "width_multiple: 0\n", "width_multiple"},
		{"odd anchors", strings.Replace(base, "[[10,13, 16,30]]", "[[10,13, 16]]", 1), "even number"},
		{"row shape", strings.Replace(base, "[-1, 1, Conv, [16, 3, 2]]", "[-1, 1, Conv]", 1), "row 0 of backbone (line 4): bad model file: want [from, number, module, args]"},
		{"number", strings.Replace(base, "[-1, 1, Conv", "[-1, 0, Conv", 1), "number"},
		{"from", strings.Replace(base, "[-1, 1, Conv", "[x, 1, Conv", 1), "from \"x\""},
		{"activation", base + "activation: nn.ReLU()\n", "only nn.SiLU()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseModelFile([]byte(tt.text), "bad.yaml")
			if !errors.Is(err, ErrModelFile) || !strings.Contains(err.Error(), tt.substr) || !strings.Contains(err.Error(), "bad.yaml") {
				t.Errorf("error %v, want %v naming the file and saying %q", err, ErrModelFile, tt.substr)
			}
		})
	}
}

// TestModulePrefixes: parse_model's eval accepts nn., torch.nn. and common.
// prefixes; each spelling must build the same graph.
func TestModulePrefixes(t *testing.T) {
	text, err := BuiltinModelFileText("yolov5s")
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.ReplaceAll(string(text), "nn.Upsample", "Upsample")
	prefixed := strings.ReplaceAll(strings.ReplaceAll(string(text), "nn.Upsample", "torch.nn.Upsample"), " Conv,", " common.Conv,")
	var enc [][]byte
	for _, s := range []string{plain, prefixed} {
		f, err := ParseModelFile([]byte(s), "yolov5s.yaml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Build(Config{ModelFile: f, Width: 0.125, ImgSize: 128})
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, onnx.Encode(m))
	}
	if string(enc[0]) != string(enc[1]) {
		t.Error("prefixed module names build a different graph")
	}
}

// TestBuiltinFiles parses every embedded model file and builds it.
func TestBuiltinFiles(t *testing.T) {
	names := BuiltinModelFiles()
	if len(names) != 4 {
		t.Errorf("built-in files %v, want 4", names)
	}
	for _, n := range names {
		f, err := BuiltinModelFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Build(Config{ModelFile: f, Width: 0.125, ImgSize: 64}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if _, err := os.Stat("models/" + n + ".yaml"); err != nil {
			t.Error(err)
		}
	}
	if _, err := BuiltinModelFile("yolov9"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown built-in: %v", err)
	}
}

// TestModelFileJSON: a checkpoint keeps its model file as a dict; encoded
// as JSON (which is YAML) it parses and builds exactly as the YAML does.
func TestModelFileJSON(t *testing.T) {
	text, err := BuiltinModelFileText("repyolov5s-v5")
	if err != nil {
		t.Fatal(err)
	}
	var dict map[string]any
	if err := yaml.Unmarshal(text, &dict); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(dict)
	if err != nil {
		t.Fatal(err)
	}
	var enc []string
	for _, b := range [][]byte{text, js} {
		f, err := ParseModelFile(b, "repyolov5s-v5")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Build(Config{ModelFile: f, Width: 0.0625, ImgSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, string(onnx.Encode(m)))
	}
	if enc[0] != enc[1] {
		t.Error("the JSON form builds another graph")
	}
}

// TestBNEps: bn_eps in the file sets every BatchNormalization's epsilon.
func TestBNEps(t *testing.T) {
	text, err := BuiltinModelFileText("yolov5s")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		extra string
		want  float32
	}{{"", 1e-3}, {"bn_eps: 1.0e-5\n", 1e-5}} {
		f, err := ParseModelFile(append(slices.Clone(text), tt.extra...), "eps.yaml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Build(Config{ModelFile: f, Width: 0.125, ImgSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range m.Graph.Nodes {
			if n.OpType != "BatchNormalization" {
				continue
			}
			for _, a := range n.Attrs {
				if a.Name == "epsilon" && a.F != tt.want {
					t.Fatalf("%s: epsilon %g, want %g", n.Name, a.F, tt.want)
				}
			}
		}
	}
}

// FuzzParseModelFile: any file either fails with an error or builds.
func FuzzParseModelFile(f *testing.F) {
	for _, n := range BuiltinModelFiles() {
		b, _ := BuiltinModelFileText(n)
		f.Add(b)
	}
	if b, err := os.ReadFile("testdata/mixed.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mf, err := ParseModelFile(b, "fuzz.yaml")
		if err != nil {
			return
		}
		// A narrow, small build keeps each run cheap.
		_, _ = Build(Config{ModelFile: mf, Width: 0.01, ImgSize: 32, Weights: smallOnly{Seeded(1)}})
	})
}

// smallOnly refuses tensors over 64K values, so fuzzed files that ask for
// large (legal) convs fail fast instead of drawing a gigabyte of weights.
type smallOnly struct{ Source }

func (s smallOnly) Tensor(name string, shape []int) ([]float32, error) {
	n := 1
	for _, d := range shape {
		n *= max(d, 1)
		if n > 1<<16 {
			return nil, fmt.Errorf("%w: %s %v is larger than the fuzz allows", ErrWeight, name, shape)
		}
	}
	return s.Source.Tensor(name, shape)
}

// TestHalfWeights: float16 weights (what a YOLOv5 checkpoint holds) give
// torch's output0_half, computed in float32 from the same rounded weights;
// it differs from the float32 weights' output0 by more than the tolerance,
// so the comparison tells the two apart.
func TestHalfWeights(t *testing.T) {
	for _, c := range smallCases[:2] {
		t.Run(c.prefix, func(t *testing.T) {
			w := openST(t, "testdata/"+c.prefix+"_half.safetensors")
			io := openST(t, "testdata/"+c.prefix+"_io.safetensors")
			m, rep, err := BuildReport(c.config(t, w))
			if err != nil {
				t.Fatal(err)
			}
			if rep.AnchorsFrom != "weights model.24.anchors" {
				t.Errorf("anchors from %s", rep.AnchorsFrom)
			}
			in, err := io.Tensor("images", []int{2, 3, 64, 64})
			if err != nil {
				t.Fatal(err)
			}
			shape := []int{2, c.anchorsTotal(), 5 + c.classes}
			half, err := io.Tensor("output0_half", shape)
			if err != nil {
				t.Fatal(err)
			}
			full, err := io.Tensor("output0", shape)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fuse.Model(m); err != nil {
				t.Fatal(err)
			}
			got := runORT(t, onnx.Encode(m), in, []int64{2, 3, 64, 64})[0]
			box, score := compareOutput0(t, got.data, half, 5+c.classes)
			fbox, fscore := compareOutput0(t, half, full, 5+c.classes)
			t.Logf("fused, float16 weights vs torch: boxes %.3g px, scores %.3g (float16 vs float32 weights in torch: %.3g px, %.3g)", box, score, fbox, fscore)
			if box > 1e-3 || score > 1e-3 {
				t.Errorf("boxes %.3g px, scores %.3g; want within 1e-3", box, score)
			}
			if max(fbox, fscore) < 1e-3 {
				t.Error("float16 rounding does not show in the fixture")
			}
		})
	}
}

// TestCSPActivation: csp_activation picks BottleneckCSP's activation; the
// default (SiLU) path is checked against torch with mixed.yaml.
func TestCSPActivation(t *testing.T) {
	text, err := os.ReadFile("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := openST(t, "testdata/mixed_small.safetensors")
	for _, tt := range []struct {
		extra        string
		leaky, silus int
	}{{"", 0, 2}, {"csp_activation: nn.LeakyReLU(0.1)\n", 2, 0}} {
		f, err := ParseModelFile(append(slices.Clone(text), tt.extra...), "mixed.yaml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Build(Config{ModelFile: f, ImgSize: 64, Weights: w})
		if err != nil {
			t.Fatal(err)
		}
		leaky, silus := 0, 0
		for _, n := range m.Graph.Nodes {
			// BottleneckCSP's own act sits at model.N.act; its inner Convs' at model.N.cvK.act.
			if strings.HasSuffix(n.Name, ".act/LeakyRelu") {
				leaky++
				if n.Attrs[0].F != 0.1 {
					t.Errorf("%s alpha %g", n.Name, n.Attrs[0].F)
				}
			}
			if (strings.HasPrefix(n.Name, "/model.2.") || strings.HasPrefix(n.Name, "/model.11.")) && strings.Count(n.Name, ".") == 2 && strings.HasSuffix(n.Name, ".act/Sigmoid") {
				silus++
			}
		}
		// Two BottleneckCSP rows (2 and 11), one shared-BN activation each.
		if leaky != tt.leaky || silus != tt.silus {
			t.Errorf("%q: %d LeakyRelu, %d CSP SiLU; want %d and %d", tt.extra, leaky, silus, tt.leaky, tt.silus)
		}
	}
	if _, err := ParseModelFile(append(slices.Clone(text), "csp_activation: nn.Hardswish()\n"...), "mixed.yaml"); !errors.Is(err, ErrModelFile) {
		t.Errorf("unknown csp_activation: %v", err)
	}
}
