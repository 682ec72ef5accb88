package detect

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// pr builds output0 rows of nc=3 classes: cx, cy, w, h, obj, c0, c1, c2.
func pr(rows ...[8]float32) []float32 {
	out := make([]float32, 0, 8*len(rows))
	for _, r := range rows {
		out = append(out, r[:]...)
	}
	return out
}

type wantDet struct {
	row   int // index of the source row, for the box
	class int
	conf  float32
}

func TestNMSCases(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	def := DefaultNMSOptions()
	with := func(f func(*NMSOptions)) NMSOptions { o := def; f(&o); return o }
	// Boxes: A (0,0,10,10); B is A's top half (IoU exactly 0.5); C far away.
	a := [4]float32{5, 5, 10, 10}
	b := [4]float32{5, 2.5, 10, 5}
	c := [4]float32{100, 100, 20, 20}
	row := func(box [4]float32, obj, c0, c1, c2 float32) [8]float32 {
		return [8]float32{box[0], box[1], box[2], box[3], obj, c0, c1, c2}
	}
	tests := []struct {
		name string
		rows [][8]float32
		opt  NMSOptions
		want []wantDet
	}{
		{"empty input", nil, def, nil},
		{"iou equal to threshold is kept",
			[][8]float32{row(a, 1, 0.9, 0, 0), row(b, 1, 0.8, 0, 0)},
			with(func(o *NMSOptions) { o.IoU = 0.5 }),
			[]wantDet{{0, 0, 0.9}, {1, 0, 0.8}}},
		{"iou above threshold is suppressed",
			[][8]float32{row(a, 1, 0.9, 0, 0), row(b, 1, 0.8, 0, 0)},
			with(func(o *NMSOptions) { o.IoU = 0.49 }),
			[]wantDet{{0, 0, 0.9}}},
		{"class aware keeps overlapping classes",
			[][8]float32{row(a, 1, 0.9, 0, 0), row(a, 1, 0, 0.8, 0)},
			def,
			[]wantDet{{0, 0, 0.9}, {1, 1, 0.8}}},
		{"agnostic suppresses across classes",
			[][8]float32{row(a, 1, 0, 0.8, 0), row(a, 1, 0.9, 0, 0)},
			with(func(o *NMSOptions) { o.Agnostic = true }),
			[]wantDet{{1, 0, 0.9}}},
		{"obj filtered before multiplying",
			// obj 0.25 is not > 0.25 even though obj*cls = 0.5.
			[][8]float32{row(a, 0.25, 2, 0, 0), row(c, 0.9, 0.2, 0, 0), row(c, 0.5, 0, 0, 0.6)},
			def,
			[]wantDet{{2, 2, 0.3}}},
		{"max det keeps the best",
			[][8]float32{
				row([4]float32{10, 10, 5, 5}, 1, 0.3, 0, 0), row([4]float32{30, 10, 5, 5}, 1, 0.9, 0, 0),
				row([4]float32{50, 10, 5, 5}, 1, 0.5, 0, 0), row([4]float32{70, 10, 5, 5}, 1, 0.7, 0, 0),
			},
			with(func(o *NMSOptions) { o.MaxDet = 2 }),
			[]wantDet{{1, 0, 0.9}, {3, 0, 0.7}}},
		{"max candidates caps before nms",
			[][8]float32{
				row([4]float32{10, 10, 5, 5}, 1, 0.3, 0, 0), row([4]float32{30, 10, 5, 5}, 1, 0.9, 0, 0),
				row([4]float32{50, 10, 5, 5}, 1, 0.5, 0, 0),
			},
			with(func(o *NMSOptions) { o.MaxCandidates = 2 }),
			[]wantDet{{1, 0, 0.9}, {2, 0, 0.5}}},
		{"multi label keeps every passing class",
			[][8]float32{row(a, 1, 0.8, 0.9, 0.1)},
			with(func(o *NMSOptions) { o.MultiLabel = true }),
			[]wantDet{{0, 1, 0.9}, {0, 0, 0.8}}},
		{"best class only",
			[][8]float32{row(a, 1, 0.8, 0.9, 0.1)},
			def,
			[]wantDet{{0, 1, 0.9}}},
		{"first maximum wins a class tie",
			[][8]float32{row(a, 1, 0.1, 0.7, 0.7)},
			def,
			[]wantDet{{0, 1, 0.7}}},
		{"equal scores keep row order",
			[][8]float32{row(c, 1, 0.5, 0, 0), row(a, 1, 0.5, 0, 0)},
			def,
			[]wantDet{{0, 0, 0.5}, {1, 0, 0.5}}},
		{"classes filter after best class",
			// Row 0's best class is 1, so it goes even though class 0 passes.
			[][8]float32{row(a, 1, 0.6, 0.9, 0), row(c, 1, 0.7, 0, 0)},
			with(func(o *NMSOptions) { o.Classes = []int{0} }),
			[]wantDet{{1, 0, 0.7}}},
		{"NaN and Inf rows skipped",
			[][8]float32{
				row(a, nan, 0.9, 0, 0),
				row(a, 1, nan, 0.9, 0),
				row([4]float32{nan, 5, 10, 10}, 1, 0.9, 0, 0),
				row([4]float32{5, 5, inf, 10}, 1, 0.9, 0, 0),
				row(a, inf, 0, 0, 0), // Inf*0 is NaN
				row(c, 0.9, 0.9, 0, 0),
			},
			def,
			[]wantDet{{5, 0, 0.81}}},
		{"multi label skips only the NaN class",
			[][8]float32{row(a, 1, nan, 0.9, 0)},
			with(func(o *NMSOptions) { o.MultiLabel = true }),
			[]wantDet{{0, 1, 0.9}}},
		{"boxes wider than the class offset overlap across classes as in torchvision",
			// 100000 px boxes shifted by 7680 per class still overlap with
			// IoU 0.74, so torchvision's offset trick drops the second.
			[][8]float32{row([4]float32{5e4, 5e4, 1e5, 1e5}, 1, 0.9, 0, 0), row([4]float32{5e4, 5e4, 1e5, 1e5}, 1, 0, 0.8, 0)},
			def,
			[]wantDet{{0, 0, 0.9}}},
		{"iou zero suppresses any overlap",
			[][8]float32{row(a, 1, 0.9, 0, 0), row([4]float32{14.9, 5, 10, 10}, 1, 0.8, 0, 0), row(c, 1, 0.7, 0, 0)},
			with(func(o *NMSOptions) { o.IoU = 0 }),
			[]wantDet{{0, 0, 0.9}, {2, 0, 0.7}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pred := pr(tc.rows...)
			got, err := NMS(nil, pred, len(tc.rows), 8, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d detections %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				r := tc.rows[w.row]
				box := Box{r[0] - r[2]/2, r[1] - r[3]/2, r[0] + r[2]/2, r[1] + r[3]/2}
				g := got[i]
				if g.Box != box || g.ClassID != w.class || math.Abs(float64(g.Conf-w.conf)) > 1e-6 {
					t.Errorf("det %d: %+v, want box %v class %d conf %v", i, g, box, w.class, w.conf)
				}
			}
		})
	}
}

func TestNMSErrors(t *testing.T) {
	pred := make([]float32, 16)
	tests := []struct {
		name       string
		rows, cols int
		opt        NMSOptions
		want       error
	}{
		{"too few columns", 2, 5, DefaultNMSOptions(), ErrSize},
		{"negative rows", -1, 8, DefaultNMSOptions(), ErrSize},
		{"short prediction", 3, 8, DefaultNMSOptions(), ErrShortBuffer},
		{"rows beyond data", 1000, 8, DefaultNMSOptions(), ErrShortBuffer},
		{"huge rows", math.MaxInt / 2, 8, DefaultNMSOptions(), ErrSize},
		{"conf above one", 2, 8, NMSOptions{Conf: 1.5, IoU: 0.45}, ErrOption},
		{"iou NaN", 2, 8, NMSOptions{Conf: 0.25, IoU: math.NaN()}, ErrOption},
		{"negative max det", 2, 8, NMSOptions{Conf: 0.25, IoU: 0.45, MaxDet: -1}, ErrOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NMS(nil, pred, tc.rows, tc.cols, tc.opt); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNMSZeroLimitsMeanDefaults(t *testing.T) {
	p, err := NewPostprocessor(NMSOptions{Conf: 0.25, IoU: 0.45})
	if err != nil {
		t.Fatal(err)
	}
	if o := p.Options(); o.MaxDet != 300 || o.MaxCandidates != 30000 {
		t.Fatalf("defaults not filled in: %+v", o)
	}
}

func TestNMSReusesDst(t *testing.T) {
	pred := pr([8]float32{5, 5, 10, 10, 1, 0.9, 0, 0})
	dst := make([]Detection, 5, 10)
	got, err := NMS(dst, pred, 1, 8, DefaultNMSOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || &got[0] != &dst[0] {
		t.Fatalf("NMS did not append to dst[:0]: len %d", len(got))
	}
}

func TestPostprocessorDoesNotAllocate(t *testing.T) {
	pred := benchPredictions(25200, 80, 1)
	for _, opt := range []NMSOptions{DefaultNMSOptions(), EvalNMSOptions()} {
		p, err := NewPostprocessor(opt)
		if err != nil {
			t.Fatal(err)
		}
		var dets []Detection
		if dets, err = p.NMS(dets, pred, 25200, 85); err != nil { // warm the scratch buffers
			t.Fatal(err)
		}
		first := slices.Clone(dets)
		n := testing.AllocsPerRun(5, func() {
			dets, _ = p.NMS(dets, pred, 25200, 85)
		})
		if n != 0 {
			t.Errorf("multi-label %v: %v allocations per call", opt.MultiLabel, n)
		}
		if !slices.Equal(dets, first) {
			t.Errorf("multi-label %v: a second call changed the result", opt.MultiLabel)
		}
		if len(dets) == 0 {
			t.Errorf("multi-label %v: benchmark data gives no detections", opt.MultiLabel)
		}
	}
}
