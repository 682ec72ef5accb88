package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

func readModel(t *testing.T, path string) *onnx.Model {
	t.Helper()
	m, err := onnx.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ops(m *onnx.Model) []string {
	var out []string
	for _, n := range m.Graph.Nodes {
		out = append(out, n.OpType)
	}
	return out
}

// TestModelBuildAndFuse drives `vidpipe model build` and `vidpipe model fuse`
// as a user would and checks the files they write.
func TestModelBuildAndFuse(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	for _, args := range [][]string{
		{"--arch", "yolov5s", "--form", "deploy", "-o", path("y.onnx")},
		{"--arch", "repyolov5s", "--rep", "all", "--form", "train", "-o", path("train.onnx")},
		{"--arch", "repyolov5s", "--rep", "all", "--form", "deploy", "-o", path("deploy.onnx")},
	} {
		if code, _, stderr := vidpipe(t, append([]string{"model", "build"}, args...)...); code != 0 {
			t.Fatalf("model build %v: exit %d\n%s", args, code, stderr)
		}
	}
	code, stdout, stderr := vidpipe(t, "model", "fuse", path("train.onnx"), "-o", path("fused.onnx"))
	if code != 0 || !strings.Contains(stdout, "fused 17 RepVGG blocks") {
		t.Fatalf("model fuse: exit %d\n%s\n%s", code, stdout, stderr)
	}
	y, train, deploy, fused := readModel(t, path("y.onnx")), readModel(t, path("train.onnx")), readModel(t, path("deploy.onnx")), readModel(t, path("fused.onnx"))
	if !slices.Contains(ops(train), "BatchNormalization") {
		t.Error("training form has no BatchNormalization")
	}
	for name, m := range map[string]*onnx.Model{"yolov5s": y, "build --form deploy": deploy, "fuse": fused} {
		if got := onnx.Params(m.Graph); got != 7_225_885 {
			t.Errorf("%s: %d params, want 7,225,885", name, got)
		}
		if !slices.Equal(ops(m), ops(y)) {
			t.Errorf("%s: not the yolov5s graph", name)
		}
	}
	in := train.Graph.Inputs[0].Type.Tensor.Shape
	out := train.Graph.Outputs[0]
	if train.Graph.Inputs[0].Name != "images" || in[0].Param == "" || in[2].Value != 640 || out.Name != "output0" || out.Type.Tensor.Shape[1].Value != 25200 || out.Type.Tensor.Shape[2].Value != 85 {
		t.Errorf("interface: input %s %+v, output %s %+v", train.Graph.Inputs[0].Name, in, out.Name, out.Type.Tensor.Shape)
	}
}

// TestModelFuseTorchExport fuses the whole-network torch.onnx export that
// model/yolo/testdata/gen_reference.py made.
func TestModelFuseTorchExport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "fused.onnx")
	code, stdout, stderr := vidpipe(t, "model", "fuse", "../../model/fuse/testdata/torch_repyolo_small_train.onnx", "-o", out)
	if code != 0 || !strings.Contains(stdout, "fused 17 RepVGG blocks") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if slices.Contains(ops(readModel(t, out)), "BatchNormalization") {
		t.Error("BatchNormalization left")
	}
}

func TestModelWeights(t *testing.T) {
	weights := "../../model/yolo/testdata/repyolo_small.safetensors"
	small := []string{"model", "build", "--arch", "repyolov5s", "--rep", "all", "--width", "0.03125", "--imgsz", "64", "--classes", "3", "--weights", weights}
	out := filepath.Join(t.TempDir(), "w.onnx")
	if code, _, stderr := vidpipe(t, append(small, "-o", out)...); code != 0 {
		t.Fatalf("build with weights: exit %d\n%s", code, stderr)
	}
	// 80 classes do not fit the 3-class Detect tensors: the error names both.
	bad := append(slices.Clone(small), "-o", out)
	bad[slices.Index(bad, "3")] = "80"
	code, _, stderr := vidpipe(t, bad...)
	if code != 1 || !strings.Contains(stderr, "model.24.m.0") || !strings.Contains(stderr, "repyolo_small.safetensors") {
		t.Errorf("mis-shaped weights: exit %d, stderr %q; want an error naming the file and the tensor", code, stderr)
	}
}

func TestModelBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("../../model/fuse/testdata/rep_bn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.onnx")
	if err := os.WriteFile(truncated, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text.safetensors")
	if err := os.WriteFile(text, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"model", "fuse", filepath.Join(dir, "missing.onnx"), "-o", filepath.Join(dir, "x.onnx")},
		{"model", "fuse", truncated, "-o", filepath.Join(dir, "x.onnx")},
		{"model", "build", "--weights", text, "-o", filepath.Join(dir, "x.onnx")},
		{"model", "build", "--weights", filepath.Join(dir, "missing.safetensors"), "-o", filepath.Join(dir, "x.onnx")},
		{"run", "--model", truncated, "x.mp4"},
	} {
		code, _, stderr := vidpipe(t, args...)
		named := false
		for _, a := range args {
			if strings.Contains(a, dir) && strings.Contains(stderr, filepath.Base(a)) && !strings.HasSuffix(a, "x.onnx") {
				named = true
			}
		}
		if code != 1 || !named {
			t.Errorf("vidpipe %v: exit %d, stderr %q; want exit 1 naming the input", args, code, stderr)
		}
	}
}

// TestRunBringYourOwnModel runs the pipeline on models it did not build:
// the torch.onnx export of a small RepYOLOv5s (3 classes, 64 px), and a
// model with a fixed batch of 1, as ultralytics exports by default.
func TestRunBringYourOwnModel(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir, "1")

	m := readModel(t, "../../model/fuse/testdata/torch_repyolo_small_train.onnx")
	m.Graph.Inputs[0].Type.Tensor.Shape[0] = onnx.Dim{Value: 1}
	fixed := filepath.Join(dir, "fixed.onnx")
	if err := onnx.WriteFile(fixed, m); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"../../model/fuse/testdata/torch_repyolo_small_train.onnx", fixed} {
		out := filepath.Join(dir, "out-"+filepath.Base(model))
		code, stdout, stderr := vidpipe(t, "run", "--model", model, "--batch", "4", "--conf", "0.01", "--no-annotate", "--out", out, src)
		if code != 0 {
			t.Fatalf("run --model %s: exit %d\n%s\n%s", model, code, stdout, stderr)
		}
		lines := readLines(t, filepath.Join(out, "clip", "detections.jsonl"))
		if len(lines) != 10 {
			t.Errorf("%s: %d lines, want 10", model, len(lines))
		}
		for _, l := range lines {
			for _, d := range l.Detections {
				if d.ClassID < 0 || d.ClassID > 2 {
					t.Fatalf("%s: class %d from a 3-class model", model, d.ClassID)
				}
			}
		}
	}
}

// TestModelBuildCfg builds the seed's RepYOLOv5s (v5.0 topology) from a
// model file with torch weights whose anchors and class names differ from
// the defaults, and checks both land in the model's metadata.
func TestModelBuildCfg(t *testing.T) {
	dir := t.TempDir()
	text, err := os.ReadFile("../../model/yolo/models/repyolov5s-v5.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The fixture is the seed file at width 0.0625 (model/yolo/testdata/gen_modelfile.py).
	cfg := filepath.Join(dir, "seed-small.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text), "width_multiple: 1.0", "width_multiple: 0.0625", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "seed.onnx")
	code, _, stderr := vidpipe(t, "model", "build", "--cfg", cfg, "--weights", "../../model/yolo/testdata/seed_small.safetensors", "--imgsz", "64", "-o", out)
	if code != 0 {
		t.Fatalf("model build --cfg: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "anchors_from=\"weights model.24.anchors\"") || !strings.Contains(stderr, "names_from=\"weights metadata\"") {
		t.Errorf("the log does not say where anchors and names came from:\n%s", stderr)
	}
	m := readModel(t, out)
	if slices.Contains(ops(m), "BatchNormalization") {
		t.Error("deploy form has BatchNormalization")
	}
	meta := map[string]string{}
	for _, kv := range m.Metadata {
		meta[kv.Key] = kv.Value
	}
	if meta["anchors"] != "[[4, 5, 7, 11, 12, 8], [14, 24, 22, 17, 25, 40], [38, 30, 45, 52, 60, 44]]" || meta["names"] != `{0: 'ball', 1: 'cup', 2: "it's a dog"}` || meta["strides"] != "[8, 16, 32]" {
		t.Errorf("metadata %v", meta)
	}

	// The built-in seed file at 640 and 80 classes, fused: the upstream count.
	code, _, stderr = vidpipe(t, "model", "build", "--arch", "repyolov5s-v5", "-o", out)
	if code != 0 {
		t.Fatalf("model build --arch repyolov5s-v5: exit %d\n%s", code, stderr)
	}
	if got := onnx.Params(readModel(t, out).Graph); got != 7_266_973 {
		t.Errorf("fused seed model: %d params, want 7,266,973", got)
	}

	for _, args := range [][]string{
		{"--cfg", cfg, "--arch", "yolov5s"},
		{"--cfg", cfg, "--width", "0.5"},
		{"--cfg", filepath.Join(dir, "missing.yaml")},
		{"--cfg", cfg, "--weights", "../../model/yolo/testdata/v6_small.safetensors", "--imgsz", "64"},
	} {
		code, _, stderr := vidpipe(t, append(append([]string{"model", "build"}, args...), "-o", out)...)
		if code != 1 || !strings.Contains(stderr, filepath.Base(args[1])) {
			t.Errorf("model build %v: exit %d, stderr %q; want exit 1 naming %s", args, code, stderr, args[1])
		}
		if slices.Contains(args, "--weights") && !strings.Contains(stderr, "layer 0 is Focus in this file") {
			t.Errorf("mismatched weights: %q does not name the layer", stderr)
		}
	}
}

// TestModelImport imports YOLOv5-style float16 checkpoints of both
// topologies (and --half, --half-full and --input u8 models) as a user
// would, checks what was written, and runs the imported models on a video.
func TestModelImport(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir, "1")
	for _, c := range []struct {
		ckpt, out string
		flags     []string
		input     onnx.DataType
	}{
		{"seed_small_ckpt.pt", "seed.onnx", nil, onnx.Float},
		{"v6_small_ckpt.pt", "v6.onnx", nil, onnx.Float},
		{"v6_small_ckpt.pt", "v6-half.onnx", []string{"--half"}, onnx.Float},
		{"v6_small_ckpt.pt", "v6-half-full.onnx", []string{"--half-full"}, onnx.Float16},
		{"v6_small_ckpt.pt", "v6-half-u8.onnx", []string{"--half", "--input", "u8"}, onnx.Uint8},
	} {
		args := append([]string{"model", "import", "../../model/yolo/testdata/" + c.ckpt, "--imgsz", "64", "-o", filepath.Join(dir, c.out)}, c.flags...)
		code, _, stderr := vidpipe(t, args...)
		if code != 0 {
			t.Fatalf("vidpipe %v: exit %d\n%s", args, code, stderr)
		}
		if !strings.Contains(stderr, "anchors_from=\"weights model.24.anchors\"") {
			t.Errorf("%s: the log does not say the anchors came from the weights:\n%s", c.ckpt, stderr)
		}
		m := readModel(t, filepath.Join(dir, c.out))
		if slices.Contains(ops(m), "BatchNormalization") {
			t.Errorf("%s: BatchNormalization left in the deploy form", c.out)
		}
		if got := m.Graph.Inputs[0].Type.Tensor.ElemType; got != c.input {
			t.Errorf("%s: input is %s, want %s", c.out, got, c.input)
		}
		if half := len(c.flags) > 0 && strings.HasPrefix(c.flags[0], "--half"); half {
			for _, ini := range m.Graph.Initializers {
				if strings.HasSuffix(ini.Name, ".weight") && ini.DataType != onnx.Float16 {
					t.Errorf("%s: weight %s is %s, want FLOAT16", c.out, ini.Name, ini.DataType)
				}
			}
		}
		out := filepath.Join(dir, "out-"+c.out)
		code, stdout, stderr := vidpipe(t, "run", "--model", filepath.Join(dir, c.out), "--conf", "0.01", "--no-annotate", "--out", out, src)
		if code != 0 {
			t.Fatalf("run --model %s: exit %d\n%s\n%s", c.out, code, stdout, stderr)
		}
		lines := readLines(t, filepath.Join(out, "clip", "detections.jsonl"))
		if len(lines) != 10 {
			t.Errorf("%s: %d lines, want 10", c.out, len(lines))
		}
		for _, l := range lines {
			for _, d := range l.Detections {
				if d.ClassID < 0 || d.ClassID > 2 || d.Class == "" {
					t.Fatalf("%s: class %d %q from a 3-class model with names", c.out, d.ClassID, d.Class)
				}
			}
		}
	}
}

// TestModelHalfAndInput converts an imported model with vidpipe model half
// and vidpipe model input, as a user would, and refuses a second uint8
// conversion with the reason.
func TestModelHalfAndInput(t *testing.T) {
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	steps := [][]string{
		{"model", "import", "../../model/yolo/testdata/v6_small_ckpt.pt", "--imgsz", "64", "-o", path("v6.onnx")},
		{"model", "half", path("v6.onnx"), "-o", path("half.onnx")},
		{"model", "input", path("half.onnx"), "-o", path("half-u8.onnx")},
		{"model", "half", path("v6.onnx"), "--full", "-o", path("full.onnx")},
	}
	for _, args := range steps {
		if code, _, stderr := vidpipe(t, args...); code != 0 {
			t.Fatalf("vidpipe %v: exit %d\n%s", args, code, stderr)
		}
	}
	for name, want := range map[string][2]onnx.DataType{
		"half.onnx": {onnx.Float, onnx.Float}, "half-u8.onnx": {onnx.Uint8, onnx.Float}, "full.onnx": {onnx.Float16, onnx.Float16},
	} {
		m := readModel(t, path(name))
		in, out := m.Graph.Inputs[0].Type.Tensor.ElemType, m.Graph.Outputs[0].Type.Tensor.ElemType
		if in != want[0] || out != want[1] {
			t.Errorf("%s: input %s, output %s; want %s, %s", name, in, out, want[0], want[1])
		}
	}
	code, _, stderr := vidpipe(t, "model", "input", path("half-u8.onnx"), "-o", path("twice.onnx"))
	if code != 1 || !strings.Contains(stderr, "UINT8 already") || strings.Count(stderr, "half-u8.onnx") != 1 {
		t.Errorf("uint8 twice: exit %d, want 1 naming the file once and the reason:\n%s", code, stderr)
	}
}

// TestModelImportBadFiles: a truncated .pt, a pickle that calls an unknown
// function, an unknown module type and a legacy torch file each exit 1 with
// the file and the cause, once.
func TestModelImportBadFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ file, cause string }{
		{"truncated.pt", "truncated"},
		{"evil.pt", "pickle calls unknown function posix.system"},
		{"mystery.pt", "unknown module type models.common.MysteryBlock at model.2"},
		{"legacy.pt", "legacy (non-zip) torch format"},
		{"state_dict_f32.pt", "give its model file (--cfg)"},
	} {
		path := "../../model/torchpt/testdata/" + c.file
		code, _, stderr := vidpipe(t, "model", "import", path, "-o", filepath.Join(dir, "x.onnx"))
		if code != 1 || !strings.Contains(stderr, c.cause) || strings.Count(stderr, c.file) != 1 {
			t.Errorf("import %s: exit %d, stderr %q; want exit 1 naming the file once and saying %q", c.file, code, stderr, c.cause)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.onnx")); err == nil {
			t.Fatalf("import %s wrote a model", c.file)
		}
	}
}
