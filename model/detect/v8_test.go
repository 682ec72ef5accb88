package detect

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestYOLOv8Rows(t *testing.T) {
	nan := float32(math.NaN())
	// Three anchors, two classes, laid out [4+nc, anchors].
	pred := []float32{
		10, 20, 30, // cx
		11, 21, 31, // cy
		4, 5, 6, // w
		7, 8, 9, // h
		0.9, 0.1, nan, // class 0
		0.2, 0.3, 0.8, // class 1
	}
	rows, n, err := YOLOv8Rows(nil, nil, pred, 2, 3, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	// Anchor 1's best class (0.3) passes; anchor 2's NaN drops it, as
	// torch's amax does.
	want := []float32{10, 11, 4, 7, 1, 0.9, 0.2, 20, 21, 5, 8, 1, 0.1, 0.3}
	if n != 2 || !slices.Equal(rows, want) {
		t.Fatalf("rows %v (%d), want %v", rows, n, want)
	}
	dets, err := NMS(nil, rows, n, 7, DefaultNMSOptions())
	if err != nil || len(dets) != 2 || dets[0].Conf != 0.9 || dets[0].ClassID != 0 || dets[1].Conf != 0.3 || dets[1].ClassID != 1 {
		t.Errorf("NMS on the rows: %+v, %v; want class scores without objectness", dets, err)
	}
	if _, _, err := YOLOv8Rows(nil, nil, pred[:10], 2, 3, 0.25); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: %v", err)
	}
	if _, _, err := YOLOv8Rows(nil, nil, pred, 0, 3, 0.25); !errors.Is(err, ErrSize) {
		t.Errorf("no classes: %v", err)
	}
}

// BenchmarkYOLOv8Rows is the per-image cost of the v8 candidate step at
// 640x640 (8400 anchors, 80 classes, scores from a sigmoid of N(-4, 1.5)
// logits, so a few hundred pass 0.25).
func BenchmarkYOLOv8Rows(b *testing.B) {
	const nc, anchors = 80, 8400
	pred := make([]float32, (4+nc)*anchors)
	r := uint64(1)
	for i := range pred {
		r = r*6364136223846793005 + 1442695040888963407
		u := float64(r>>11) / (1 << 53)
		pred[i] = float32(1 / (1 + math.Exp(-(-4 + 1.5*(u*2-1)*1.7))))
	}
	var rows []float32
	best := make([]float32, anchors)
	b.ReportAllocs()
	for b.Loop() {
		rows, _, _ = YOLOv8Rows(rows, best, pred, nc, anchors, 0.25)
	}
}
