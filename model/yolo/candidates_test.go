package yolo

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/onnx"
)

// reshapeModel is the smallest YOLOv5-shaped model: images [N,3,4,4]
// reshaped to output0 [N,8,6] (8 rows of cx, cy, w, h, obj, one class).
func reshapeModel(opset int64) []byte {
	m := &onnx.Model{
		IRVersion: 7, OpsetImports: []onnx.OpsetID{{Version: opset}},
		Graph: &onnx.Graph{
			Name:         "reshape",
			Inputs:       []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float, onnx.Dim{Param: "batch"}, onnx.Dim{Value: 3}, onnx.Dim{Value: 4}, onnx.Dim{Value: 4})},
			Outputs:      []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float, onnx.Dim{Param: "batch"}, onnx.Dim{Value: 8}, onnx.Dim{Value: 6})},
			Initializers: []*onnx.Tensor{onnx.NewInt64("shape", []int64{3}, []int64{-1, 8, 6})},
			Nodes:        []*onnx.Node{{Name: "r", OpType: "Reshape", Inputs: []string{"images", "shape"}, Outputs: []string{"output0"}}},
		},
	}
	return onnx.Encode(m)
}

// TestWithCandidatesRows checks the selection itself on a model whose
// output is its input: the k rows of highest objectness, in row order, for
// each image of a batch, with either form of Squeeze/Unsqueeze.
func TestWithCandidatesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := make([]float32, 2*48)
	for i := range in {
		in[i] = rng.Float32()
	}
	for _, opset := range []int64{11, 13} {
		model, err := WithCandidates(reshapeModel(opset), 3)
		if err != nil {
			t.Fatalf("opset %d: %v", opset, err)
		}
		got := runORT(t, model, in, []int64{2, 3, 4, 4})[0]
		if !slices.Equal(got.shape, []int64{2, 3, 6}) {
			t.Fatalf("opset %d: shape %v, want [2 3 6]", opset, got.shape)
		}
		for img := range 2 {
			rows := in[img*48 : (img+1)*48]
			order := []int{0, 1, 2, 3, 4, 5, 6, 7}
			slices.SortStableFunc(order, func(a, b int) int { return -cmpFloat(rows[a*6+4], rows[b*6+4]) })
			want := slices.Clone(order[:3])
			slices.Sort(want)
			var wantRows []float32
			for _, r := range want {
				wantRows = append(wantRows, rows[r*6:(r+1)*6]...)
			}
			if gotRows := got.data[img*18 : (img+1)*18]; !slices.Equal(gotRows, wantRows) {
				t.Errorf("opset %d image %d: rows %v, want rows %v: %v", opset, img, gotRows, want, wantRows)
			}
		}
	}
}

func cmpFloat(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestWithCandidatesSameDetections runs RepYOLOv5s with and without the
// selection: NMS finds exactly the same detections wherever fewer than k
// rows pass the threshold, and a frame where every selected row passes is
// recognisable.
func TestWithCandidatesSameDetections(t *testing.T) {
	m, err := Build(Config{Arch: "repyolov5s", ImgSize: 320, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	full := onnx.Encode(m)
	const k = 2000
	sel, err := WithCandidates(full, k)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, 2*3*320*320)
	for i := range in {
		in[i] = rng.Float32()
	}
	shape := []int64{2, 3, 320, 320}
	a := runORT(t, full, in, shape)[0]
	b := runORT(t, sel, in, shape)[0]
	rowsA, rowsB, cols := int(a.shape[1]), int(b.shape[1]), int(a.shape[2])
	if rowsB != k || int(b.shape[2]) != cols {
		t.Fatalf("selected output %v, want [2 %d %d]", b.shape, k, cols)
	}
	checked, found := 0, 0
	for img := range 2 {
		pa := a.data[img*rowsA*cols : (img+1)*rowsA*cols]
		pb := b.data[img*rowsB*cols : (img+1)*rowsB*cols]
		for _, conf := range []float32{0.25, 0.05, 0.02, 0.015, 0.01, 0.005, 0.001} {
			passing := 0
			for r := range rowsB {
				if pb[r*cols+4] > conf {
					passing++
				}
			}
			if passing == k {
				// Saturated: the caller is told, and results may differ.
				continue
			}
			opt := detect.DefaultNMSOptions()
			opt.Conf = conf
			da, err := detect.NMS(nil, pa, rowsA, cols, opt)
			if err != nil {
				t.Fatal(err)
			}
			db, err := detect.NMS(nil, pb, rowsB, cols, opt)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(da, db) {
				t.Errorf("image %d conf %v: %d detections with all rows, %d with %d candidates", img, conf, len(da), len(db), k)
			}
			checked++
			found += len(da)
			t.Logf("image %d conf %v: %d rows pass, %d detections identical", img, conf, passing, len(da))
		}
	}
	if checked < 4 || found == 0 {
		t.Fatalf("%d comparisons below saturation with %d detections in all: the test compares nothing", checked, found)
	}
}

func TestWithCandidatesRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		model []byte
		k     int
	}{
		"k not below the rows": {reshapeModel(13), 8},
		"k zero":               {reshapeModel(13), 0},
		"opset 10":             {reshapeModel(10), 3},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := WithCandidates(tc.model, tc.k); !errors.Is(err, ErrNoCandidates) {
				t.Fatalf("err = %v, want ErrNoCandidates", err)
			}
		})
	}
	if _, err := WithCandidates([]byte("not onnx"), 3); err == nil {
		t.Fatal("garbage accepted")
	}
}
