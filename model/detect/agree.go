package detect

import "math"

// Agreement is how far two detection sets of the same images are apart, as
// when one model runs on two preprocessings of the same frames.
type Agreement struct {
	// Matched counts pairs of the same class whose boxes overlap with an
	// IoU above the threshold.
	Matched int
	// OnlyA and OnlyB count the detections left without a partner.
	OnlyA, OnlyB int
	// MaxBoxDiff is the largest coordinate difference of a matched pair, in
	// pixels; MaxConfDiff the largest score difference.
	MaxBoxDiff, MaxConfDiff float64
}

// Agree pairs the detections of one image greedily, best score first, each
// a with the unpaired b of its class that overlaps it most, and adds the
// result to g. IoU must exceed minIoU for a pair.
func (g *Agreement) Agree(a, b []Detection, minIoU float64) {
	used := make([]bool, len(b))
	for _, d := range byScore(a) {
		best, bestIoU := -1, minIoU
		for j := range b {
			if used[j] || b[j].ClassID != d.ClassID {
				continue
			}
			if v := boxIoU(d.Box, b[j].Box); v > bestIoU {
				best, bestIoU = j, v
			}
		}
		if best < 0 {
			g.OnlyA++
			continue
		}
		used[best] = true
		g.Matched++
		e := b[best]
		for _, v := range [4]float32{d.Box.X1 - e.Box.X1, d.Box.Y1 - e.Box.Y1, d.Box.X2 - e.Box.X2, d.Box.Y2 - e.Box.Y2} {
			g.MaxBoxDiff = math.Max(g.MaxBoxDiff, math.Abs(float64(v)))
		}
		g.MaxConfDiff = math.Max(g.MaxConfDiff, math.Abs(float64(d.Conf-e.Conf)))
	}
	for _, u := range used {
		if !u {
			g.OnlyB++
		}
	}
}

// byScore returns a copy of dets in descending score order, stable.
func byScore(dets []Detection) []Detection {
	out := make([]Detection, len(dets))
	copy(out, dets)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Conf > out[j-1].Conf; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func boxIoU(a, b Box) float64 {
	iw := math.Min(float64(a.X2), float64(b.X2)) - math.Max(float64(a.X1), float64(b.X1))
	ih := math.Min(float64(a.Y2), float64(b.Y2)) - math.Max(float64(a.Y1), float64(b.Y1))
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := float64(a.X2-a.X1)*float64(a.Y2-a.Y1) + float64(b.X2-b.X1)*float64(b.Y2-b.Y1) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}
