package detect

import "testing"

func TestAgree(t *testing.T) {
	a := []Detection{
		{Box: Box{0, 0, 10, 10}, Conf: 0.5, ClassID: 1},
		{Box: Box{100, 100, 200, 200}, Conf: 0.9, ClassID: 2},
		{Box: Box{300, 300, 310, 310}, Conf: 0.3, ClassID: 3}, // no partner
	}
	b := []Detection{
		{Box: Box{100, 100, 200, 201}, Conf: 0.8, ClassID: 2}, // IoU 0.990
		{Box: Box{0, 0, 10, 10}, Conf: 0.5, ClassID: 4},       // same box, other class
		{Box: Box{0.2, 0, 10.2, 10}, Conf: 0.45, ClassID: 1},  // IoU 0.96
		{Box: Box{50, 50, 60, 60}, Conf: 0.2, ClassID: 1},     // no partner
	}
	var g Agreement
	g.Agree(a, b, 0.9)
	if g.Matched != 2 || g.OnlyA != 1 || g.OnlyB != 2 {
		t.Fatalf("got %+v, want 2 matched, 1 only in a, 2 only in b", g)
	}
	if d := g.MaxBoxDiff - 1; d > 1e-6 || d < -1e-6 {
		t.Errorf("max box diff %v, want 1", g.MaxBoxDiff)
	}
	if d := g.MaxConfDiff - 0.1; d > 1e-6 || d < -1e-6 {
		t.Errorf("max conf diff %v, want 0.1", g.MaxConfDiff)
	}
	var strict Agreement
	strict.Agree(a, b, 0.97)
	if strict.Matched != 1 {
		t.Errorf("IoU 0.97: %d matched, want 1 (the 0.96 pair fails)", strict.Matched)
	}
}
