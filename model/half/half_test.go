package half_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/checkpoint"
	"github.com/vidpipe/vidpipe/model/half"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// TestHalfRunsLikeTorch converts an imported float16 checkpoint to a
// FLOAT16 graph, runs it on ONNX Runtime's CPU provider, and compares
// output0 with torch's float32 run of the same float16 weights: the only
// difference left is float16 arithmetic.
func TestHalfRunsLikeTorch(t *testing.T) {
	const imgsz, batch, no = 64, 2, 8
	res, err := checkpoint.Import("../yolo/testdata/v6_small_ckpt.pt", checkpoint.Options{ImgSize: imgsz})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := half.Convert(res.Model); err != nil {
		t.Fatal(err)
	}
	for _, ini := range res.Model.Graph.Initializers {
		// Resize's scales are tensor(float) in every ONNX type signature.
		if ini.DataType == onnx.Float && !strings.HasPrefix(ini.Name, "const.upsample_scales") {
			t.Errorf("initializer %s is still FLOAT", ini.Name)
		}
	}
	for _, vi := range append(res.Model.Graph.Inputs, res.Model.Graph.Outputs...) {
		if vi.Type.Tensor.ElemType != onnx.Float16 {
			t.Errorf("%s is %s, want FLOAT16", vi.Name, vi.Type.Tensor.ElemType)
		}
	}
	io, err := safetensors.Open("../yolo/testdata/v6_small_io.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	images, err := io.Tensor("images", []int{batch, 3, imgsz, imgsz})
	if err != nil {
		t.Fatal(err)
	}
	shape, _ := io.Shape("output0_half")
	want, err := io.Tensor("output0_half", shape)
	if err != nil {
		t.Fatal(err)
	}
	if err := infer.Init(infer.LibraryPath()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, l, err := layout.Open(ctx, onnx.Encode(res.Model), "half", infer.Options{Threads: 2, MaxBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !l.Float16 || l.Kind != layout.YOLOv5 {
		t.Fatalf("layout %s, want YOLOv5 FLOAT16", l)
	}
	in, err := s.Input(batch)
	if err != nil {
		t.Fatal(err)
	}
	copy(in, images)
	outs, err := s.Run(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	got := outs[l.Output].Data
	if len(got) != len(want) {
		t.Fatalf("output0 has %d values, torch's %d", len(got), len(want))
	}
	var box, score float64
	for i := range got {
		d := math.Abs(float64(got[i] - want[i]))
		if i%no < 4 {
			// float16 keeps 11 significant bits: relative to the box value.
			box = max(box, d/max(1, math.Abs(float64(want[i]))))
		} else {
			score = max(score, d)
		}
	}
	t.Logf("float16 graph vs torch (float32 arithmetic, float16 weights): boxes max rel diff %.3g, scores max abs diff %.3g", box, score)
	if box > 4e-3 || score > 4e-3 {
		t.Errorf("boxes rel %.3g, scores %.3g: want both within 4e-3 (a few float16 ulps)", box, score)
	}
}
