package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
)

const fusedYOLOv5sParams = 7_225_885

// realFrame letterboxes frame 0 of vtest.avi to size with the ffmpeg CLI's
// decode, as CHW floats.
func realFrame(t *testing.T, size int) []float32 {
	t.Helper()
	src := filepath.Join(builtin.CacheDir(), "videos", "vtest.avi")
	rgb, err := exec.Command("ffmpeg", "-v", "error", "-i", src, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("decode %s with ffmpeg (run scripts/setup.sh): %v", src, err)
	}
	lb, err := detect.Plan(768, 576, size, size)
	if err != nil {
		t.Fatal(err)
	}
	z, err := detect.NewResizer(lb, detect.RGB24)
	if err != nil {
		t.Fatal(err)
	}
	packed := make([]byte, 3*size*size)
	if err := z.RunPacked(packed, rgb, 768*3); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 3*size*size)
	detect.Planar(out, packed)
	return out
}

func opShapes(m *onnx.Model) (ops []string, shapes [][]int64) {
	ix := onnx.NewIndex(m.Graph)
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.OpType)
		for _, in := range n.Inputs {
			if t, ok := ix.Initializers[in]; ok {
				shapes = append(shapes, t.Dims)
			}
		}
	}
	return ops, shapes
}

// TestFusedIsYOLOv5s: fused RepYOLOv5s, either variant, is structurally the
// fused yolov5s graph: the same operators in the same order, the same
// weight shapes, 7,225,885 parameters, no BatchNormalization, no branch.
func TestFusedIsYOLOv5s(t *testing.T) {
	for _, rep := range []string{"downsample", "all"} {
		t.Run(rep, func(t *testing.T) {
			y, train, fused, err := Models(640, rep)
			if err != nil {
				t.Fatal(err)
			}
			if got := onnx.Params(y.Graph); got != fusedYOLOv5sParams {
				t.Errorf("fused yolov5s has %d params, want %d", got, fusedYOLOv5sParams)
			}
			if got := onnx.Params(fused.Graph); got != fusedYOLOv5sParams {
				t.Errorf("fused repyolov5s has %d params, want %d", got, fusedYOLOv5sParams)
			}
			if onnx.Params(train.Graph) <= fusedYOLOv5sParams {
				t.Errorf("training form has only %d params", onnx.Params(train.Graph))
			}
			yOps, yShapes := opShapes(y)
			fOps, fShapes := opShapes(fused)
			if slices.Contains(fOps, "BatchNormalization") {
				t.Error("BatchNormalization left after fusion")
			}
			if !slices.Equal(yOps, fOps) {
				t.Errorf("fused repyolov5s has %d nodes, yolov5s %d: operator sequences differ", len(fOps), len(yOps))
			}
			if !slices.EqualFunc(yShapes, fShapes, slices.Equal) {
				t.Error("weight shapes differ from yolov5s (a 1x1 branch left?)")
			}
		})
	}
}

// TestFusedMatchesTrainingForm runs both forms through ONNX Runtime on 8
// random images and one real video frame.
func TestFusedMatchesTrainingForm(t *testing.T) {
	const size, batch = 640, 9
	ctx := context.Background()
	images := make([]float32, batch*3*size*size)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range images[:8*3*size*size] {
		images[i] = rng.Float32()
	}
	copy(images[8*3*size*size:], realFrame(t, size))

	for _, rep := range []string{"downsample", "all"} {
		t.Run(rep, func(t *testing.T) {
			_, train, fused, err := Models(size, rep)
			if err != nil {
				t.Fatal(err)
			}
			run := func(m *onnx.Model) []float32 {
				s, err := infer.Open(ctx, onnx.Encode(m), rep, infer.Options{MaxBatch: batch})
				if err != nil {
					t.Fatalf("%v (run scripts/setup.sh)", err)
				}
				defer s.Close()
				in, _ := s.Input(batch)
				copy(in, images)
				outs, err := s.Run(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				return slices.Clone(outs[0].Data)
			}
			a, b := run(train), run(fused)
			var maxDiff, maxVal float64
			for i := range a {
				maxDiff = math.Max(maxDiff, math.Abs(float64(a[i]-b[i])))
				maxVal = math.Max(maxVal, math.Abs(float64(a[i])))
			}
			t.Logf("output0 max abs diff %.3g (values up to %.0f)", maxDiff, maxVal)
			if maxDiff > 1e-3 {
				t.Errorf("output0 max abs diff %.3g > 1e-3", maxDiff)
			}
			rows, cols := 25200, 85
			for _, conf := range []float32{0.25, 0.01, 0.001} {
				opt := detect.DefaultNMSOptions()
				opt.Conf = conf
				total := 0
				for i := 0; i < batch; i++ {
					da, err := detect.NMS(nil, a[i*rows*cols:(i+1)*rows*cols], rows, cols, opt)
					if err != nil {
						t.Fatal(err)
					}
					db, _ := detect.NMS(nil, b[i*rows*cols:(i+1)*rows*cols], rows, cols, opt)
					if len(da) != len(db) {
						t.Fatalf("image %d conf %.3f: %d detections vs %d", i, conf, len(da), len(db))
					}
					// Random weights give exactly tied scores on distant boxes,
					// which rounding may order either way: compare as sets.
					sortDets(da)
					sortDets(db)
					for j := range da {
						if !sameDetection(da[j], db[j]) {
							t.Fatalf("image %d conf %.3f detection %d: %+v vs %+v", i, conf, j, da[j], db[j])
						}
					}
					total += len(da)
				}
				t.Logf("conf %.2f: %d identical detections over %d images", conf, total, batch)
				if conf == 0.001 && total == 0 {
					t.Error("no detections at all: the comparison proves nothing")
				}
			}
		})
	}
}

func sortDets(d []detect.Detection) {
	slices.SortFunc(d, func(a, b detect.Detection) int {
		if a.ClassID != b.ClassID {
			return a.ClassID - b.ClassID
		}
		return int(math.Copysign(1, float64(a.Box.X1-b.Box.X1)))
	})
}

func sameDetection(a, b detect.Detection) bool {
	near := func(x, y, tol float32) bool { return math.Abs(float64(x-y)) <= float64(tol) }
	return a.ClassID == b.ClassID && near(a.Conf, b.Conf, 1e-4) &&
		near(a.Box.X1, b.Box.X1, 1e-2) && near(a.Box.Y1, b.Box.Y1, 1e-2) &&
		near(a.Box.X2, b.Box.X2, 1e-2) && near(a.Box.Y2, b.Box.Y2, 1e-2)
}
