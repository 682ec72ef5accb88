package eval

import "math"

// COCOeval's parameters for bbox evaluation.
const (
	numIoU  = 10  // IoU thresholds
	numRec  = 101 // recall points
	numArea = 4   // area ranges
	numMax  = 3   // maxDets
)

var (
	iouThrs  = linspace(0.5, 0.95, numIoU)
	recThrs  = linspace(0, 1, numRec)
	areaRngs = [numArea][2]float64{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}
	areaLbls = [numArea]string{"all", "small", "medium", "large"}
	maxDets  = [numMax]int{1, 10, MaxDets}
)

// linspace is numpy's: start + i*step, the last point exactly stop. The
// thresholds must be the very same doubles: AP75 is found by equality.
func linspace(start, stop float64, n int) []float64 {
	step := (stop - start) / float64(n-1)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(float64(i)*step) + start // no fused multiply-add
	}
	out[n-1] = stop
	return out
}

// iou is pycocotools' bbIou for one [x, y, w, h] pair: intersection over
// union, or over the detection's area for a crowd region. The explicit
// conversions keep Go from fusing a multiply and an add, as C does not.
func iou(d, g [4]float64, crowd bool) float64 {
	w := math.Min(d[2]+d[0], g[2]+g[0]) - math.Max(d[0], g[0])
	if w <= 0 {
		return 0
	}
	h := math.Min(d[3]+d[1], g[3]+g[1]) - math.Max(d[1], g[1])
	if h <= 0 {
		return 0
	}
	i := float64(w * h)
	da := float64(d[2] * d[3])
	if crowd {
		return i / da
	}
	ga := float64(g[2] * g[3])
	return i / (da + ga - i)
}

// imgInput is one image and category: its ground truth in file order, its
// detections highest score first, and their IoUs, [detection][ground truth].
type imgInput struct {
	gts  []gtBox
	dts  []det
	ious [][]float64
}

func newImgInput(gts []gtBox, dts []det) imgInput {
	in := imgInput{gts: gts, dts: dts, ious: make([][]float64, len(dts))}
	for i, d := range dts {
		in.ious[i] = make([]float64, len(gts))
		for j, g := range gts {
			in.ious[i][j] = iou(d.box, g.box, g.crowd)
		}
	}
	return in
}

// imgEval is evaluateImg's answer for one image, category and area range.
type imgEval struct {
	scores []float64 // detections, highest first
	// matched and ignored are per IoU threshold and detection. matched is
	// pycocotools' dtMatches != 0: false for ground truth with id 0.
	matched, ignored [numIoU][]bool
	gts              int // ground truth not ignored
}

// evaluateImg matches one image's detections of one category to its ground
// truth at every IoU threshold, as COCOeval.evaluateImg does.
func evaluateImg(in imgInput, rng [2]float64) imgEval {
	G, D := len(in.gts), len(in.dts)
	// Ground truth is visited not ignored first, each part in file order
	// (pycocotools' stable argsort of the ignore flags).
	ignore := make([]bool, G)
	order := make([]int, 0, G)
	for i, g := range in.gts {
		ignore[i] = g.crowd || g.area < rng[0] || g.area > rng[1]
		if !ignore[i] {
			order = append(order, i)
		}
	}
	e := imgEval{scores: make([]float64, D), gts: len(order)}
	for i := range G {
		if ignore[i] {
			order = append(order, i)
		}
	}
	for i, d := range in.dts {
		e.scores[i] = d.score
	}
	most := 1.0
	most -= 1e-10 // at run time, rounded as Python's 1-1e-10
	taken := make([]bool, G)
	for t, thr := range iouThrs {
		e.matched[t], e.ignored[t] = make([]bool, D), make([]bool, D)
		clear(taken)
		for di := range D {
			if G == 0 {
				break
			}
			best, m := min(thr, most), -1
			for gi, g := range order {
				if taken[gi] && !in.gts[g].crowd {
					continue
				}
				// Matched to a ground truth that counts: ignored ones, all
				// after it, cannot take the detection away.
				if m > -1 && !ignore[order[m]] && ignore[g] {
					break
				}
				if in.ious[di][g] < best {
					continue
				}
				best, m = in.ious[di][g], gi
			}
			if m == -1 {
				continue
			}
			e.ignored[t][di] = ignore[order[m]]
			e.matched[t][di] = in.gts[order[m]].id != 0
			taken[m] = true
		}
		for di, d := range in.dts {
			area := d.box[2] * d.box[3]
			if !e.matched[t][di] && (area < rng[0] || area > rng[1]) {
				e.ignored[t][di] = true
			}
		}
	}
	return e
}
