package workers

import (
	"testing"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
)

func TestSaturated(t *testing.T) {
	d, err := newDetector(detect.DefaultNMSOptions(), &layout.Layout{Kind: layout.YOLOv5, Classes: 1, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	// Two images of 3 candidate rows, 6 columns: the first has every
	// objectness above 0.25, the second one row below.
	data := []float32{
		1, 1, 1, 1, 0.9, 1, 1, 1, 1, 1, 0.5, 1, 1, 1, 1, 1, 0.3, 1,
		1, 1, 1, 1, 0.9, 1, 1, 1, 1, 1, 0.2, 1, 1, 1, 1, 1, 0.3, 1,
	}
	outs := []infer.Output{{Name: "output0", Shape: []int64{2, 3, 6}, Data: data}}
	base := thresholdsOf(detect.DefaultNMSOptions())
	for _, tc := range []struct {
		img, k int
		t      thresholds
		want   bool
	}{
		{0, 3, base, true},
		{1, 3, base, false},
		{1, 3, thresholds{conf: 0.1, iou: 0.45, maxDet: 300}, true},
		{0, 0, base, false}, // not a candidates model
		{0, 4, base, false}, // rows are not k: a full output0
	} {
		if got := d.saturated(outs, tc.img, tc.k, tc.t); got != tc.want {
			t.Errorf("image %d, k %d, conf %v: saturated %v, want %v", tc.img, tc.k, tc.t.conf, got, tc.want)
		}
	}
}
