package detect

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// referenceNMS is a literal, unoptimised port of ultralytics
// non_max_suppression plus torchvision's CPU NMS kernel (suppressed flags
// over every later box), used to check the optimised Postprocessor.
func referenceNMS(pred []float32, rows, cols int, opt NMSOptions) []Detection {
	opt, _ = opt.validate()
	type cand struct {
		box   Box
		score float32
		cls   int
	}
	var x []cand
	for r := range rows {
		row := pred[r*cols : (r+1)*cols]
		obj := row[4]
		if !(obj > opt.Conf) {
			continue
		}
		box := xyxy(row)
		if !finite(box.X1) || !finite(box.Y1) || !finite(box.X2) || !finite(box.Y2) {
			continue
		}
		scores := make([]float32, cols-5)
		for j := range scores {
			scores[j] = row[5+j] * obj
		}
		if opt.MultiLabel && len(scores) > 1 {
			for j, s := range scores {
				if s > opt.Conf {
					x = append(x, cand{box, s, j})
				}
			}
		} else {
			best, bj := scores[0], 0
			for j, s := range scores {
				if s != s {
					best = s
					break
				}
				if s > best {
					best, bj = s, j
				}
			}
			if best > opt.Conf {
				x = append(x, cand{box, best, bj})
			}
		}
	}
	if len(opt.Classes) > 0 {
		x = slices.DeleteFunc(x, func(c cand) bool { return !slices.Contains(opt.Classes, c.cls) })
	}
	sort.SliceStable(x, func(i, j int) bool { return x[i].score > x[j].score })
	x = x[:min(len(x), opt.MaxCandidates)]
	nb := make([]Box, len(x))
	area := make([]float32, len(x))
	for i, c := range x {
		var off float32
		if !opt.Agnostic {
			off = float32(c.cls) * classOffset
		}
		b := Box{c.box.X1 + off, c.box.Y1 + off, c.box.X2 + off, c.box.Y2 + off}
		nb[i] = b
		area[i] = float32((b.X2 - b.X1) * (b.Y2 - b.Y1))
	}
	suppressed := make([]bool, len(x))
	var out []Detection
	for i := range x {
		if suppressed[i] {
			continue
		}
		out = append(out, Detection{Box: x[i].box, Conf: x[i].score, ClassID: x[i].cls})
		for j := i + 1; j < len(x); j++ {
			if suppressed[j] {
				continue
			}
			w := stdMax(0, stdMin(nb[i].X2, nb[j].X2)-stdMax(nb[i].X1, nb[j].X1))
			h := stdMax(0, stdMin(nb[i].Y2, nb[j].Y2)-stdMax(nb[i].Y1, nb[j].Y1))
			inter := float32(w * h)
			if float64(inter/(area[i]+area[j]-inter)) > opt.IoU {
				suppressed[j] = true
			}
		}
	}
	return out[:min(len(out), opt.MaxDet)]
}

func TestNMSMatchesReference(t *testing.T) {
	pred := benchPredictions(4000, 80, 2)
	// A second image whose boxes span far more than the class offset, which
	// must disable the per-class shortcut.
	wide := slices.Clone(pred)
	rng := rand.New(rand.NewPCG(5, 6))
	for r := range 4000 {
		if rng.IntN(3) == 0 {
			wide[r*85] *= 40
			wide[r*85+2] *= 60
		}
	}
	opts := map[string]NMSOptions{
		"default":  DefaultNMSOptions(),
		"eval":     EvalNMSOptions(),
		"agnostic": {Conf: 0.2, IoU: 0.3, Agnostic: true},
		"capped":   {Conf: 0.01, IoU: 0.5, MaxCandidates: 500, MaxDet: 50},
		"classes":  {Conf: 0.05, IoU: 0.45, Classes: []int{1, 7, 33}, MultiLabel: true},
	}
	for name, opt := range opts {
		for img, p := range map[string][]float32{"normal": pred, "wide": wide} {
			t.Run(name+"_"+img, func(t *testing.T) {
				got, err := NMS(nil, p, 4000, 85, opt)
				if err != nil {
					t.Fatal(err)
				}
				want := referenceNMS(p, 4000, 85, opt)
				if !slices.Equal(got, want) {
					t.Fatalf("got %d detections, reference %d; first difference at %d",
						len(got), len(want), firstDiff(got, want))
				}
				if len(want) == 0 {
					t.Fatal("test data gives no detections")
				}
			})
		}
	}
}

func firstDiff(a, b []Detection) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
