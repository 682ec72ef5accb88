package layout

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
)

// expected is testdata/expected.json: per fixture, the reference
// detections (testdata/gen_fixtures.py) at a few thresholds.
type expected map[string]struct {
	Size int `json:"size"`
	Runs []struct {
		Conf float32     `json:"conf"`
		IoU  float64     `json:"iou"`
		Dets [][]float64 `json:"dets"` // x1, y1, x2, y2, conf, cls
	} `json:"runs"`
}

func readExpected(t *testing.T) expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// fillImage writes the generator's input image: NCHW pixels v/255 for v
// in a linear congruential sequence.
func fillImage(dst []float32, size int) {
	state := uint64(1)
	for i := range 3 * size * size {
		state = (state*1103515245 + 12345) % (1 << 31)
		dst[i] = float32((state>>16)%256) / 255
	}
}

func fixture(name string) string { return filepath.Join("testdata", name) }

func openFixture(t *testing.T, name string, opts infer.Options) (*infer.Session, *Layout) {
	t.Helper()
	b, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Threads == 0 {
		opts.Threads = 1
	}
	s, l, err := Open(context.Background(), b, fixture(name), opts)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, l
}

// detectAll runs the session on the test image and returns the detections
// at conf and iou, as the worker computes them.
func detectAll(t *testing.T, s *infer.Session, l *Layout, conf float32, iou float64) []detect.Detection {
	t.Helper()
	in, err := s.Input(1)
	if err != nil {
		t.Fatal(err)
	}
	fillImage(in, l.Size)
	outs, err := s.Run(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	rows, n, err := l.NewDecoder().Rows(outs, 0, conf)
	if err != nil {
		t.Fatal(err)
	}
	opt := detect.DefaultNMSOptions()
	opt.Conf, opt.IoU = conf, iou
	dets, err := detect.NMS(nil, rows, n, l.Cols(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return dets
}

// TestDetectionsMatchReference runs every accepted fixture through real
// ONNX Runtime and vidpipe's decode and NMS, and compares the detections
// with the reference decode's, one by one in order.
func TestDetectionsMatchReference(t *testing.T) {
	exp := readExpected(t)
	tests := []struct {
		file    string
		opts    infer.Options
		kind    Kind
		classes int
		anchors string
		ignored int
	}{
		{file: "v8.onnx", kind: YOLOv8, classes: 80},
		{file: "v8_dynamic.onnx", opts: infer.Options{ImgSize: 96}, kind: YOLOv8, classes: 80},
		{file: "raw_heads.onnx", kind: RawHeads, classes: 2, anchors: "metadata"},
		{file: "raw_heads_conv.onnx", kind: RawHeads, classes: 2, anchors: "defaults"},
		{file: "v5_extra_outputs.onnx", kind: YOLOv5, classes: 2, ignored: 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s, l := openFixture(t, tt.file, tt.opts)
			t.Logf("layout: %s; notes %q", l, l.Notes)
			if l.Kind != tt.kind || l.Classes != tt.classes || l.AnchorsFrom != tt.anchors || len(l.Ignored) != tt.ignored {
				t.Fatalf("layout %+v, want %s with %d classes, anchors %q, %d ignored", l, tt.kind, tt.classes, tt.anchors, tt.ignored)
			}
			e := exp[tt.file]
			if l.Size != e.Size {
				t.Fatalf("size %d, want %d", l.Size, e.Size)
			}
			if tt.anchors == "defaults" && !strings.Contains(strings.Join(l.Notes, " "), "default anchors") {
				t.Errorf("notes %q do not say the default anchors are used", l.Notes)
			}
			for _, run := range e.Runs {
				got := detectAll(t, s, l, run.Conf, run.IoU)
				compareDets(t, got, run.Dets, 1e-3, run.Conf)
			}
		})
	}
}

func compareDets(t *testing.T, got []detect.Detection, want [][]float64, tol float64, conf float32) {
	t.Helper()
	if len(want) < 10 {
		t.Fatalf("conf %v: the reference has only %d detections: the fixture tests little", conf, len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("conf %v: %d detections, reference %d", conf, len(got), len(want))
	}
	worst := 0.0
	for i, w := range want {
		g := got[i]
		vals := []float64{float64(g.Box.X1), float64(g.Box.Y1), float64(g.Box.X2), float64(g.Box.Y2), float64(g.Conf)}
		for j, v := range vals {
			worst = max(worst, math.Abs(v-w[j]))
		}
		if g.ClassID != int(w[5]) {
			t.Fatalf("conf %v: detection %d is class %d, reference %v", conf, i, g.ClassID, w[5])
		}
	}
	if worst > tol {
		t.Errorf("conf %v: boxes or scores differ from the reference by up to %g, over %g", conf, worst, tol)
	}
	t.Logf("conf %v: %d detections match the reference, max difference %.2g", conf, len(got), worst)
}

// TestFloat16 runs the FLOAT16 export: its input and outputs are converted
// at the session boundary, and its detections are the float32 model's
// within half precision.
func TestFloat16(t *testing.T) {
	s16, l16 := openFixture(t, "v8_fp16.onnx", infer.Options{})
	s32, l32 := openFixture(t, "v8.onnx", infer.Options{})
	if !l16.Float16 || l16.Kind != YOLOv8 || l16.Classes != 80 || l32.Float16 {
		t.Fatalf("layouts %s / %s, want float16 YOLOv8 and float32 YOLOv8", l16, l32)
	}
	// Raw outputs: within half precision (11 bits) of the float32 model's.
	run := func(s *infer.Session, size int) []float32 {
		in, _ := s.Input(1)
		fillImage(in, size)
		outs, err := s.Run(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), outs[0].Data...)
	}
	a, b := run(s16, l16.Size), run(s32, l32.Size)
	worst := 0.0
	for i := range a {
		rel := math.Abs(float64(a[i]-b[i])) / max(1, math.Abs(float64(b[i])))
		worst = max(worst, rel)
	}
	t.Logf("float16 vs float32 output0: max relative difference %.3g", worst)
	if worst > 1e-2 || worst == 0 {
		t.Errorf("float16 output differs from float32 by %g relative: want a half-precision difference, nonzero, under 1e-2", worst)
	}
	exp := readExpected(t)["v8.onnx"]
	for _, r := range exp.Runs {
		got := detectAll(t, s16, l16, r.Conf, r.IoU)
		// Half precision moves boxes by up to ~0.03 px at 64 px and may
		// reorder near-equal scores: match each reference detection to one
		// of the same class and nearly the same box.
		used := make([]bool, len(got))
		missed := 0
		for _, w := range r.Dets {
			found := false
			for i, g := range got {
				if used[i] || g.ClassID != int(w[5]) {
					continue
				}
				d := max(math.Abs(float64(g.Box.X1)-w[0]), math.Abs(float64(g.Box.Y1)-w[1]),
					math.Abs(float64(g.Box.X2)-w[2]), math.Abs(float64(g.Box.Y2)-w[3]))
				if d < 0.1 && math.Abs(float64(g.Conf)-w[4]) < 2e-3 {
					used[i], found = true, true
					break
				}
			}
			if !found {
				missed++
			}
		}
		t.Logf("conf %v: float16 %d detections, reference %d, %d unmatched", r.Conf, len(got), len(r.Dets), missed)
		if missed > 0 || len(got) != len(r.Dets) {
			t.Errorf("conf %v: float16 gave %d detections for the reference's %d, %d unmatched", r.Conf, len(got), len(r.Dets), missed)
		}
	}
}

// TestRefusedAtLoad opens each refused fixture with Check (no session kept)
// and Open: each is refused, the error naming the file once, what was
// found, why, and the layouts accepted.
func TestRefusedAtLoad(t *testing.T) {
	tests := []struct {
		file     string
		opts     infer.Options
		want     error
		contains []string
	}{
		{file: "refuse_v8_transposed.onnx", want: ErrLayout,
			contains: []string{"output0 FLOAT [N,189,84]", "rows transposed", "[N,A,4+nc] without objectness"}},
		{file: "refuse_two_outputs.onnx", want: ErrLayout,
			contains: []string{"2 output(s)", "output0 FLOAT [N,84,84], output1 FLOAT [N,32,16,16]", "extra outputs"}},
		{file: "refuse_4d_output.onnx", want: ErrLayout, contains: []string{"output0 FLOAT [N,255,8,8]", "one 4-D output"}},
		{file: "refuse_names_mismatch.onnx", want: ErrClasses, contains: []string{"4+80 classes, names has 3"}},
		{file: "refuse_int64_output.onnx", want: ErrLayout, contains: []string{"output0 INT64 [N,84]", "want FLOAT or FLOAT16"}},
		{file: "refuse_rectangular.onnx", want: ErrInput, contains: []string{"input 96x64 is not square"}},
		// A dynamic export without a size to run it at: infer refuses it.
		{file: "v8_dynamic.onnx", want: infer.ErrBadInput, contains: []string{"symbolic height or width", "--imgsz"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := fixture(tt.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			opts.Threads = 1
			_, cerr := Check(context.Background(), b, path, opts)
			s, _, oerr := Open(context.Background(), b, path, opts)
			if oerr == nil {
				s.Close()
			}
			for which, err := range map[string]error{"Check": cerr, "Open": oerr} {
				if err == nil {
					t.Fatalf("%s accepted %s", which, tt.file)
				}
				msg := err.Error()
				t.Logf("%s: %s", which, msg)
				if !errors.Is(err, tt.want) {
					t.Errorf("%s error does not wrap %v", which, tt.want)
				}
				if n := strings.Count(msg, path); n != 1 {
					t.Errorf("%s error names the file %d times, want once", which, n)
				}
				if errors.Is(err, ErrLayout) || errors.Is(err, ErrClasses) {
					if !strings.Contains(msg, "vidpipe reads "+Accepted) {
						t.Errorf("%s error does not say which layouts are accepted", which)
					}
				}
				for _, c := range tt.contains {
					if !strings.Contains(msg, c) {
						t.Errorf("%s error does not say %q", which, c)
					}
				}
			}
		})
	}
}

// TestCheckDynamicProbes decides a dynamic export's layout with a probe
// session at the size asked for.
func TestCheckDynamicProbes(t *testing.T) {
	b, err := os.ReadFile(fixture("v8_dynamic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{64, 96, 128} {
		l, err := Check(context.Background(), b, "v8_dynamic.onnx", infer.Options{ImgSize: size})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range []int{8, 16, 32} {
			n += (size / s) * (size / s)
		}
		if l.Kind != YOLOv8 || l.Size != size || l.Rows != n {
			t.Errorf("size %d: layout %s with %d anchors, want YOLOv8 at %d with %d", size, l, l.Rows, size, n)
		}
	}
	if _, err := Check(context.Background(), b, "v8_dynamic.onnx", infer.Options{ImgSize: 100}); !errors.Is(err, ErrLayout) {
		t.Errorf("size 100, not a multiple of 32: %v, want %v", err, ErrLayout)
	}
}
