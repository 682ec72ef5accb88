package checkpoint

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
	"github.com/vidpipe/vidpipe/model/torchpt"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// The fixtures are model/yolo's: model/yolo/testdata/gen_modelfile.py saves
// them with torch as YOLOv5 does (torch.save({'model': model.half(), ...}))
// and as plain state_dicts, with torch's output0 on fixed images.
const (
	fixtures = "../yolo/testdata"
	imgsz    = 64
	batch    = 2
	classes  = 3
)

// cases are the two topologies: the seed's RepYOLOv5s (YOLOv5 v5.0: Focus,
// SPP, RepVGG downsamplers) and yolov5s v6.0, at the generator's widths.
var cases = []struct {
	prefix, modelFile string
	width             float64
}{
	{"seed_small", "repyolov5s-v5", 0.0625},
	{"v6_small", "yolov5s", 0.03125},
}

// TestImportMatchesTorch imports each float16 checkpoint and each float32
// state_dict (with its model file), fused, and compares output0 on ONNX
// Runtime with torch's.
func TestImportMatchesTorch(t *testing.T) {
	for _, c := range cases {
		io := openST(t, filepath.Join(fixtures, c.prefix+"_io.safetensors"))
		images := tensor(t, io, "images", batch, 3, imgsz, imgsz)
		t.Run(c.prefix+"/checkpoint", func(t *testing.T) {
			res, err := Import(filepath.Join(fixtures, c.prefix+"_ckpt.pt"), Options{ImgSize: imgsz})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s; %s; %s", res.Source, res.Build, res.Fuse)
			names, err := yolo.ClassNames(res.Model)
			if got := strings.Join(names, ","); err != nil || got != "ball,cup,it's a dog" {
				t.Errorf("names %q (%v), want the checkpoint's", got, err)
			}
			if !strings.HasPrefix(res.Build.AnchorsFrom, "weights") {
				t.Errorf("anchors from %q, want the weights", res.Build.AnchorsFrom)
			}
			// The checkpoint holds float16 weights: torch's output0 from those.
			compare(t, res.Model, images, tensor(t, io, "output0_half", batch, -1, 5+classes))
		})
		t.Run(c.prefix+"/state_dict", func(t *testing.T) {
			if _, err := Import(filepath.Join(fixtures, c.prefix+"_state.pt"), Options{ImgSize: imgsz}); !errors.Is(err, ErrNoModelFile) {
				t.Fatalf("state_dict without a model file: %v, want ErrNoModelFile", err)
			}
			mf, err := yolo.BuiltinModelFile(c.modelFile)
			if err != nil {
				t.Fatal(err)
			}
			mf.WidthMultiple, mf.NC = c.width, classes
			res, err := Import(filepath.Join(fixtures, c.prefix+"_state.pt"), Options{ImgSize: imgsz, ModelFile: mf})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, res.Model, images, tensor(t, io, "output0", batch, -1, 5+classes))
		})
	}
}

// TestImportTrainForm keeps BatchNormalization and the RepVGG branches.
func TestImportTrainForm(t *testing.T) {
	res, err := Import(filepath.Join(fixtures, "seed_small_ckpt.pt"), Options{ImgSize: imgsz, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fuse != nil || countOps(res.Model, "BatchNormalization") == 0 {
		t.Fatalf("training form: fuse report %v, %d BatchNormalization", res.Fuse, countOps(res.Model, "BatchNormalization"))
	}
	io := openST(t, filepath.Join(fixtures, "seed_small_io.safetensors"))
	compare(t, res.Model, tensor(t, io, "images", batch, 3, imgsz, imgsz), tensor(t, io, "output0_half", batch, -1, 5+classes))
}

// TestImportBadCheckpoints: every broken or hostile file is an error naming
// the file and the cause.
func TestImportBadCheckpoints(t *testing.T) {
	tp := func(name string) string { return filepath.Join("../torchpt/testdata", name) }
	for _, c := range []struct {
		path string
		is   error
		says string
	}{
		{tp("truncated.pt"), torchpt.ErrTruncated, "truncated"},
		{tp("evil.pt"), torchpt.ErrUnknownFunction, "posix.system"},
		{tp("legacy.pt"), torchpt.ErrLegacyFormat, "legacy"},
		{tp("mystery.pt"), ErrModule, "unknown module type models.common.MysteryBlock at model.2"},
		{tp("state_dict_f32.pt"), ErrNoModelFile, "--cfg"},
	} {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			_, err := Import(c.path, Options{})
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("got %v; want %v naming %s and saying %q", err, c.is, c.path, c.says)
			}
		})
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

// tensor reads a tensor whose one -1 dim is inferred from its stored shape.
func tensor(t *testing.T, f *safetensors.File, name string, shape ...int) []float32 {
	t.Helper()
	stored, ok := f.Shape(name)
	if !ok || len(stored) != len(shape) {
		t.Fatalf("%s: stored shape %v, want rank %d", name, stored, len(shape))
	}
	for i, d := range shape {
		if d == -1 {
			shape[i] = stored[i]
		}
	}
	v, err := f.Tensor(name, shape)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// compare runs m on images through model/infer and checks output0 against
// torch's: boxes and scores within 1e-3.
func compare(t *testing.T, m *onnx.Model, images, want []float32) {
	t.Helper()
	if err := infer.Init(infer.LibraryPath()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := infer.Open(ctx, onnx.Encode(m), "imported", infer.Options{Threads: 2, MaxBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.Input(batch)
	if err != nil {
		t.Fatal(err)
	}
	copy(in, images)
	outs, err := s.Run(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	got := outs[0].Data
	if len(got) != len(want) {
		t.Fatalf("output0 has %d values (%v), torch's %d", len(got), outs[0].Shape, len(want))
	}
	no := 5 + classes
	var box, score float64
	for i := range got {
		d := math.Abs(float64(got[i] - want[i]))
		if i%no < 4 {
			box = max(box, d)
		} else {
			score = max(score, d)
		}
	}
	t.Logf("output0 vs torch: boxes max abs diff %.3g px, scores %.3g", box, score)
	if box > 1e-3 || score > 1e-3 {
		t.Errorf("output0 vs torch: boxes %.3g px, scores %.3g; want both within 1e-3", box, score)
	}
}

func countOps(m *onnx.Model, op string) int {
	n := 0
	for _, nd := range m.Graph.Nodes {
		if nd.OpType == op {
			n++
		}
	}
	return n
}
