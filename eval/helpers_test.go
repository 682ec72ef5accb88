package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

const tol = 1e-6

// ann is a ground-truth annotation for a test; area 0 leaves the field out
// (w*h is used).
type ann struct {
	id, img, cat int64
	box          [4]float64
	area         float64
	crowd        bool
}

// gtJSON writes a COCO ground-truth file: images by id (file names
// img_<id>.jpg), categories by id and name, and anns.
func gtJSON(t testing.TB, images []int64, cats map[int64]string, anns []ann) []byte {
	t.Helper()
	doc := map[string]any{}
	ims, cs, as := []map[string]any{}, []map[string]any{}, []map[string]any{}
	for _, id := range images {
		ims = append(ims, map[string]any{"id": id, "file_name": fmt.Sprintf("img_%d.jpg", id), "width": 640, "height": 480})
	}
	for id, name := range cats {
		cs = append(cs, map[string]any{"id": id, "name": name})
	}
	for _, a := range anns {
		m := map[string]any{"id": a.id, "image_id": a.img, "category_id": a.cat, "bbox": a.box[:], "iscrowd": 0}
		if a.area > 0 {
			m["area"] = a.area
		}
		if a.crowd {
			m["iscrowd"] = 1
		}
		as = append(as, m)
	}
	doc["images"], doc["categories"], doc["annotations"] = ims, cs, as
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func makeGT(t testing.TB, images []int64, cats map[int64]string, anns []ann) *GroundTruth {
	t.Helper()
	gt, err := ReadGroundTruth("gt.json", bytes.NewReader(gtJSON(t, images, cats, anns)))
	if err != nil {
		t.Fatal(err)
	}
	return gt
}

func evaluate(gt *GroundTruth, dets []Detection) *Result {
	d := NewDetections(gt)
	for _, x := range dets {
		d.Add(x)
	}
	return Evaluate(gt, d)
}

// checkStats compares the named numbers of got with want.
func checkStats(t testing.TB, got Stats, want map[string]float64) {
	t.Helper()
	for i, name := range StatNames {
		w, ok := want[name]
		if ok && math.Abs(got[i]-w) > tol {
			t.Errorf("%s = %.9f, want %.9f", name, got[i], w)
		}
	}
}

func all12(v float64) map[string]float64 {
	m := map[string]float64{}
	for _, n := range StatNames {
		m[n] = v
	}
	return m
}
