package eval

import (
	"math"
	"testing"
)

// Medium boxes (50x50 = 2500 px²), side by side, and a small and a large one.
var (
	m1 = [4]float64{0, 0, 50, 50}
	m2 = [4]float64{100, 0, 50, 50}
	m3 = [4]float64{200, 0, 50, 50}
	sm = [4]float64{0, 300, 10, 10}
	lg = [4]float64{300, 300, 200, 200}
)

func dt(img, cat int64, box [4]float64, score float64) Detection {
	return Detection{ImageID: img, CategoryID: cat, Box: box, Score: score}
}

// Each case's numbers are worked out by hand in its comment.
func TestEvaluateByHand(t *testing.T) {
	person := map[int64]string{1: "person"}
	for _, tc := range []struct {
		name   string
		images []int64
		cats   map[int64]string
		anns   []ann
		dets   []Detection
		want   map[string]float64
	}{{
		// One exact detection per ground truth, one ground truth per image
		// and category, in every area range: everything is 1.
		name:   "perfect",
		images: []int64{1, 2},
		cats:   map[int64]string{1: "person", 2: "car"},
		anns:   []ann{{id: 1, img: 1, cat: 1, box: sm}, {id: 2, img: 1, cat: 2, box: m1}, {id: 3, img: 2, cat: 1, box: lg}, {id: 4, img: 2, cat: 2, box: sm}},
		dets:   []Detection{dt(1, 1, sm, 0.9), dt(1, 2, m1, 0.8), dt(2, 1, lg, 0.7), dt(2, 2, sm, 0.6)},
		want:   all12(1),
	}, {
		// MODEL.md §7: two ground truths, one detection on the first. Recall
		// 0.5 at precision 1: 51 of 101 recall points, at every threshold.
		name:   "model.md example",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: m2}},
		dets:   []Detection{dt(1, 1, m1, 0.9)},
		want: map[string]float64{"AP": 51.0 / 101, "AP50": 51.0 / 101, "AP75": 51.0 / 101, "APs": -1, "APm": 51.0 / 101, "APl": -1,
			"AR1": 0.5, "AR10": 0.5, "AR100": 0.5, "ARs": -1, "ARm": 0.5, "ARl": -1},
	}, {
		// Three ground truths; A found, then found again (a duplicate: FP),
		// then B; C missed. TP FP TP: recall 1/3 2/3 2/3... precision 1 ½ ⅔,
		// monotone 1 ⅔ ⅔. Recall points 0..0.33 (34) at 1, 0.34..0.66 (33)
		// at ⅔, the 34 past ⅔ at 0: (34 + 22) / 101.
		name:   "miss and duplicate",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: m2}, {id: 3, img: 1, cat: 1, box: m3}},
		dets:   []Detection{dt(1, 1, m1, 0.9), dt(1, 1, m1, 0.8), dt(1, 1, m2, 0.7)},
		want:   map[string]float64{"AP": 56.0 / 101, "AP50": 56.0 / 101, "AP75": 56.0 / 101, "AR1": 1.0 / 3, "AR10": 2.0 / 3, "AR100": 2.0 / 3},
	}, {
		// Two detections wholly inside a crowd region, scored above the true
		// positive: they match the crowd (IoU = intersection / detection
		// area = 1) and are ignored, so AP stays 1.
		name:   "crowd ignores",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: lg, crowd: true}},
		dets:   []Detection{dt(1, 1, [4]float64{310, 310, 20, 20}, 0.97), dt(1, 1, [4]float64{400, 400, 30, 30}, 0.95), dt(1, 1, m1, 0.9)},
		want:   map[string]float64{"AP": 1, "AP50": 1, "AP75": 1, "APl": -1, "AR100": 1},
	}, {
		// Half of the detection lies in the crowd region: IoU over its own
		// area is 0.5 (over the union it would be 0.005), so it is ignored at
		// IoU 0.5 only and a FP above the TP at the 9 other thresholds,
		// where precision is ½ at every recall point: (1 + 9×½) / 10.
		name:   "crowd iou over detection area",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: lg, crowd: true}},
		dets:   []Detection{dt(1, 1, [4]float64{290, 310, 20, 20}, 0.95), dt(1, 1, m1, 0.9)},
		want:   map[string]float64{"AP": 0.55, "AP50": 1, "AP75": 0.5, "AR100": 1},
	}, {
		// A small and a large ground truth, both found, and an unmatched
		// small detection scored first. all: FP TP TP, precision ⅔ at every
		// recall point. small: the large GT and its detection are ignored,
		// FP TP → ½. large: the small GT, its detection and the unmatched
		// small detection are ignored → 1. No medium ground truth → -1. The
		// first detection alone finds nothing: AR1 0.
		name:   "area ranges",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: sm}, {id: 2, img: 1, cat: 1, box: lg}},
		dets:   []Detection{dt(1, 1, [4]float64{600, 0, 10, 10}, 0.95), dt(1, 1, sm, 0.9), dt(1, 1, lg, 0.8)},
		want: map[string]float64{"AP": 2.0 / 3, "AP50": 2.0 / 3, "AP75": 2.0 / 3, "APs": 0.5, "APm": -1, "APl": 1,
			"AR1": 0, "AR10": 1, "AR100": 1, "ARs": 1, "ARm": -1, "ARl": 1},
	}, {
		// The area range goes by the annotation's area field: a 40x40 box
		// (1600, medium by w×h) whose area says 900 is small.
		name:   "area field",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: [4]float64{0, 0, 40, 40}, area: 900}},
		dets:   []Detection{dt(1, 1, [4]float64{0, 0, 40, 40}, 0.9)},
		want:   map[string]float64{"AP": 1, "APs": 1, "APm": -1, "APl": -1},
	}, {
		// Three ground truths on one image, all found: the best detection
		// alone finds a third.
		name:   "maxDets",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: m2}, {id: 3, img: 1, cat: 1, box: m3}},
		dets:   []Detection{dt(1, 1, m1, 0.9), dt(1, 1, m2, 0.8), dt(1, 1, m3, 0.7)},
		want:   map[string]float64{"AP": 1, "AR1": 1.0 / 3, "AR10": 1, "AR100": 1},
	}, {
		// car has no ground truth: -1, left out of the means, so its false
		// positive, scored above the person's, lowers nothing. A detection of
		// a category the ground truth lacks (3) is dropped.
		name:   "class without ground truth",
		images: []int64{1},
		cats:   map[int64]string{1: "person", 2: "car"},
		anns:   []ann{{id: 1, img: 1, cat: 1, box: m1}},
		dets:   []Detection{dt(1, 2, m2, 0.95), dt(1, 3, m3, 0.99), dt(1, 1, m1, 0.9)},
		want:   map[string]float64{"AP": 1, "AP50": 1, "AR1": 1, "AR100": 1, "APs": -1, "APm": 1},
	}, {
		// Equal scores on two images merge in image id order (the file lists
		// image 2 first): image 1's FP comes before image 2's TP, so
		// precision is ½ at every recall point.
		name:   "score ties by image id",
		images: []int64{2, 1},
		cats:   person,
		anns:   []ann{{id: 1, img: 2, cat: 1, box: m1}},
		dets:   []Detection{dt(2, 1, m1, 0.5), dt(1, 1, m1, 0.5)},
		want:   map[string]float64{"AP": 0.5, "AR100": 1},
	}, {
		// pycocotools stores the matched ground truth's id and tests it for
		// non-zero: a match with annotation id 0 counts as a false positive.
		name:   "annotation id 0",
		images: []int64{1},
		cats:   person,
		anns:   []ann{{id: 0, img: 1, cat: 1, box: m1}},
		dets:   []Detection{dt(1, 1, m1, 0.9)},
		want:   map[string]float64{"AP": 0, "AR100": 0},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res := evaluate(makeGT(t, tc.images, tc.cats, tc.anns), tc.dets)
			checkStats(t, res.Stats, tc.want)
		})
	}
}

// Only the MaxDets best detections of an image and category count, however
// many are read.
func TestEvaluateMaxDetsCut(t *testing.T) {
	gt := makeGT(t, []int64{1}, map[int64]string{1: "person"}, []ann{{id: 1, img: 1, cat: 1, box: m1}})
	for _, tc := range []struct {
		name      string
		rank      int // the exact detection's place by score, from 0
		ap, ar100 float64
	}{
		// 99 false positives before it: precision 1/100 at every recall point.
		{"100th counts", 99, 0.01, 1},
		{"101st is cut", 100, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dets []Detection
			for i := range 250 {
				box := [4]float64{1000 + 60*float64(i), 0, 50, 50}
				if i == tc.rank {
					box = m1
				}
				dets = append(dets, dt(1, 1, box, 1-float64(i)/1000))
			}
			// Read worst first: the cut must not depend on the input order.
			for i, j := 0, len(dets)-1; i < j; i, j = i+1, j-1 {
				dets[i], dets[j] = dets[j], dets[i]
			}
			res := evaluate(gt, dets)
			checkStats(t, res.Stats, map[string]float64{"AP": tc.ap, "AR100": tc.ar100, "AR1": 0})
		})
	}
}

func TestEvaluatePerClass(t *testing.T) {
	gt := makeGT(t, []int64{1}, map[int64]string{1: "person", 2: "car", 3: "dog"}, []ann{
		{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: m2},
		{id: 3, img: 1, cat: 2, box: m3}, {id: 4, img: 1, cat: 2, box: lg, crowd: true},
	})
	res := evaluate(gt, []Detection{dt(1, 1, m1, 0.9), dt(1, 2, m3, 0.8)})
	want := []ClassAP{{ID: 1, Name: "person", AP: 51.0 / 101, AP50: 51.0 / 101, GT: 2}, {ID: 2, Name: "car", AP: 1, AP50: 1, GT: 1}}
	if len(res.Classes) != len(want) {
		t.Fatalf("classes %+v, want %+v (dog has no ground truth)", res.Classes, want)
	}
	for i, w := range want {
		g := res.Classes[i]
		if g.ID != w.ID || g.Name != w.Name || g.GT != w.GT || math.Abs(g.AP-w.AP) > tol || math.Abs(g.AP50-w.AP50) > tol {
			t.Errorf("class %d = %+v, want %+v", i, g, w)
		}
	}
	checkStats(t, res.Stats, map[string]float64{"AP": (51.0/101 + 1) / 2})
}

// The thresholds must be numpy's doubles: summarize finds 0.5 and 0.75 by
// equality.
func TestThresholds(t *testing.T) {
	if thrIndex(0.5) != 0 || thrIndex(0.75) != 5 {
		t.Errorf("0.5 at %d, 0.75 at %d in %v", thrIndex(0.5), thrIndex(0.75), iouThrs)
	}
	if recThrs[50] != 0.5 || recThrs[100] != 1 || iouThrs[9] != 0.95 {
		t.Errorf("recThrs[50] %v, recThrs[100] %v, iouThrs[9] %v", recThrs[50], recThrs[100], iouThrs[9])
	}
}
