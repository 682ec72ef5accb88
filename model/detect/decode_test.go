package detect

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestDecodeHeadsHandComputed(t *testing.T) {
	// One level, 2x1 grid, one anchor (20, 40), stride 8, nc=1, logits 0
	// (sigmoid 0.5): xy = (1 + x - 0.5)*8, wh = 1*anchor.
	levels := []HeadLevel{{NY: 1, NX: 2, Stride: 8, Anchors: []float32{20, 40}}}
	head := make([]float32, 6*2)
	got, err := DecodeHeads(nil, [][]float32{head}, levels, 1, LayoutConv)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{4, 4, 20, 40, 0.5, 0.5, 12, 4, 20, 40, 0.5, 0.5}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestYOLOv5Levels(t *testing.T) {
	lv, err := YOLOv5Levels(640, 640)
	if err != nil {
		t.Fatal(err)
	}
	if n := DecodedRows(lv); n != 25200 {
		t.Fatalf("640x640 gives %d rows, want 25200", n)
	}
	if lv[2].NX != 20 || lv[2].Stride != 32 || lv[2].Anchors[4] != 373 {
		t.Fatalf("P5 level %+v", lv[2])
	}
	lv[0].Anchors[0] = 999 // must not write through to the defaults
	if DefaultAnchors[0][0] != 10 {
		t.Fatal("YOLOv5Levels shares DefaultAnchors")
	}
	if _, err := YOLOv5Levels(100, 64); !errors.Is(err, ErrSize) {
		t.Fatalf("100x64: err %v, want ErrSize", err)
	}
}

func TestDecodeHeadsErrors(t *testing.T) {
	lv := []HeadLevel{{NY: 2, NX: 2, Stride: 8, Anchors: []float32{10, 13, 16, 30, 33, 23}}}
	ok := make([]float32, 3*8*4)
	tests := []struct {
		name   string
		heads  [][]float32
		levels []HeadLevel
		nc     int
		layout HeadLayout
		want   error
	}{
		{"no classes", [][]float32{ok}, lv, 0, LayoutConv, ErrSize},
		{"head count", [][]float32{ok, ok}, lv, 3, LayoutConv, ErrSize},
		{"short head", [][]float32{ok[:10]}, lv, 3, LayoutConv, ErrSize},
		{"odd anchors", [][]float32{ok}, []HeadLevel{{NY: 2, NX: 2, Stride: 8, Anchors: []float32{1, 2, 3}}}, 3, LayoutConv, ErrSize},
		{"zero stride", [][]float32{ok}, []HeadLevel{{NY: 2, NX: 2, Anchors: lv[0].Anchors}}, 3, LayoutConv, ErrSize},
		{"bad layout", [][]float32{ok}, lv, 3, HeadLayout(7), ErrOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeHeads(nil, tc.heads, tc.levels, tc.nc, tc.layout); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// YOLOv5Levels returns the default three levels for an inW x inH input,
// which must be a multiple of the largest stride, 32.
func YOLOv5Levels(inW, inH int) ([]HeadLevel, error) {
	if inW <= 0 || inH <= 0 || inW%32 != 0 || inH%32 != 0 {
		return nil, fmt.Errorf("yolov5 levels for input %dx%d, want positive multiples of 32: %w", inW, inH, ErrSize)
	}
	lv := make([]HeadLevel, len(DefaultStrides))
	for i, s := range DefaultStrides {
		lv[i] = HeadLevel{NY: inH / s, NX: inW / s, Stride: float32(s), Anchors: slices.Clone(DefaultAnchors[i][:])}
	}
	return lv, nil
}

// EvalNMSOptions returns the settings YOLOv5 uses for mAP evaluation.
func EvalNMSOptions() NMSOptions {
	return NMSOptions{Conf: 0.001, IoU: 0.6, MaxDet: 300, MaxCandidates: 30000, MultiLabel: true}
}
