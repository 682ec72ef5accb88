package eval

import (
	"cmp"
	"slices"
	"sort"
)

// eps is numpy's spacing(1), which pycocotools adds to tp+fp.
const eps = 0x1p-52

// curve is accumulate's answer for one category, area range and maxDets:
// precision at each recall point and the recall reached, per IoU threshold.
// A nil curve is pycocotools' -1: no ground truth to find.
type curve struct {
	prec [numIoU][numRec]float64
	rec  [numIoU]float64
}

// Stats are the 12 numbers of COCOeval.summarize, in its order (StatNames).
type Stats [12]float64

// StatNames name Stats' numbers.
var StatNames = [12]string{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}

// ClassAP is one category's AP@[.5:.95] and AP@.5 (area all, 100
// detections) and its ground truth that counts (not crowd).
type ClassAP struct {
	ID   int64
	Name string
	AP   float64
	AP50 float64
	GT   int
}

// Result is an evaluation's outcome. Classes lists, in category id order,
// the categories with ground truth.
type Result struct {
	Stats   Stats
	Classes []ClassAP
}

// Evaluate scores d against gt as pycocotools' COCOeval (bbox) evaluate,
// accumulate and summarize do.
func Evaluate(gt *GroundTruth, d *Detections) *Result {
	imgs, cats := gt.imageIDs(), gt.categoryIDs()
	curves := make([][numArea][numMax]*curve, len(cats))
	res := &Result{}
	for k, cat := range cats {
		var inputs []imgInput // images with ground truth or detections, by id
		for _, img := range imgs {
			key := imgCat{img, cat}
			if g, dt := gt.boxes[key], d.sorted(key); len(g) > 0 || len(dt) > 0 {
				inputs = append(inputs, newImgInput(g, dt))
			}
		}
		evals := make([]imgEval, len(inputs))
		for a, rng := range areaRngs {
			for i, in := range inputs {
				evals[i] = evaluateImg(in, rng)
			}
			for m, maxDet := range maxDets {
				var n int
				curves[k][a][m], n = accumulate(evals, maxDet)
				if a == 0 && m == numMax-1 && n > 0 {
					c := gt.category(cat)
					res.Classes = append(res.Classes, ClassAP{ID: cat, Name: c.Name, AP: curves[k][0][m].ap(-1), AP50: curves[k][0][m].ap(0), GT: n})
				}
			}
		}
	}
	res.Stats = summarize(curves)
	return res
}

// accumulate merges one category's images by score, as COCOeval.accumulate
// does for one area range and maxDets; n is the ground truth that counts.
func accumulate(evals []imgEval, maxDet int) (c *curve, n int) {
	type entry struct {
		score  float64
		img, d int
	}
	var es []entry
	for i, e := range evals {
		n += e.gts
		for d := range min(maxDet, len(e.scores)) {
			es = append(es, entry{e.scores[d], i, d})
		}
	}
	if n == 0 {
		return nil, 0
	}
	// numpy's argsort(-scores, kind='mergesort'): stable, ties in image order.
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(b.score, a.score) })
	c = &curve{}
	rc, pr := make([]float64, len(es)), make([]float64, len(es))
	for t := range numIoU {
		tp, fp := 0, 0
		for i, x := range es {
			if e := &evals[x.img]; !e.ignored[t][x.d] {
				if e.matched[t][x.d] {
					tp++
				} else {
					fp++
				}
			}
			rc[i] = float64(tp) / float64(n)
			pr[i] = float64(tp) / (float64(fp) + float64(tp) + eps)
		}
		if len(es) > 0 {
			c.rec[t] = rc[len(es)-1]
		}
		for i := len(pr) - 1; i > 0; i-- {
			pr[i-1] = max(pr[i-1], pr[i])
		}
		for r, thr := range recThrs {
			i := sort.SearchFloat64s(rc, thr) // numpy's searchsorted, side left
			if i == len(rc) {
				break // recall never reached: precision 0 from here on
			}
			c.prec[t][r] = pr[i]
		}
	}
	return c, n
}

// ap is the mean precision over recall points at IoU threshold t, or over
// all thresholds when t is -1.
func (c *curve) ap(t int) float64 {
	var sum float64
	var n int
	for ti := range numIoU {
		if t < 0 || ti == t {
			for _, p := range c.prec[ti] {
				sum += p
				n++
			}
		}
	}
	return sum / float64(n)
}

// summarize computes COCOeval.summarize's 12 numbers: means over every
// category that has a curve, or -1 when none has.
func summarize(curves [][numArea][numMax]*curve) Stats {
	mean := func(t, a, m int, recall bool) float64 {
		if t == -2 {
			return -1 // an IoU threshold that numpy's equality would not find
		}
		var sum float64
		var n int
		for k := range curves {
			c := curves[k][a][m]
			if c == nil {
				continue
			}
			for ti := range numIoU {
				if t >= 0 && ti != t {
					continue
				}
				if recall {
					sum += c.rec[ti]
					n++
					continue
				}
				for _, p := range c.prec[ti] {
					sum += p
				}
				n += numRec
			}
		}
		if n == 0 {
			return -1
		}
		return sum / float64(n)
	}
	t50, t75 := thrIndex(0.5), thrIndex(0.75)
	last := numMax - 1
	return Stats{
		mean(-1, 0, last, false), mean(t50, 0, last, false), mean(t75, 0, last, false),
		mean(-1, 1, last, false), mean(-1, 2, last, false), mean(-1, 3, last, false),
		mean(-1, 0, 0, true), mean(-1, 0, 1, true), mean(-1, 0, last, true),
		mean(-1, 1, last, true), mean(-1, 2, last, true), mean(-1, 3, last, true),
	}
}

// thrIndex finds an IoU threshold by equality, as summarize's np.where does;
// -2 when it is not one.
func thrIndex(thr float64) int {
	if i := slices.Index(iouThrs, thr); i >= 0 {
		return i
	}
	return -2
}
