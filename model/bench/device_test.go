package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// deviceEnv names the device TestDeviceMatchesCPU and BenchmarkDevice run
// on: "cuda" or "cuda:N" on a GPU machine (scripts/gpu-check.sh sets it),
// "cpu" to rehearse the plumbing here. Unset, both skip: CI has no GPU.
const deviceEnv = "VIDPIPE_BENCH_DEVICE"

const (
	deviceSize   = 640
	compareBatch = 4  // images TestDeviceMatchesCPU compares
	deviceWarmup = 3  // untimed runs first: cuDNN picks its algorithms on the first run of each shape
	largeBatch   = 32 // the large batch of BenchmarkDevice
	no           = 85 // output0 columns: cx, cy, w, h, obj, 80 class scores
)

// Tolerances of a device's output0 against the CPU's, per element:
// |dev-cpu| <= atol + rtol*|cpu|. ONNX Runtime's CUDA provider runs convs in
// TF32 by default (use_tf32): operands rounded to 10 mantissa bits, unit
// roundoff 2^-11 = 4.9e-4, sums kept in FP32. Rounding every conv weight and
// conv input of this model to TF32 on the CPU (tf32Model) needed rtol up to
// 6.4e-3 for the scores and 6.3e-3 for the boxes at 640 on random images
// (TestDeviceToleranceOnCPU logs its figure at 160), so 3e-2 leaves about 5x
// for what the simulation leaves out (cuDNN's Winograd and FFT algorithms,
// another summation order, truncating rather than rounding hardware).
// Scaling the first conv's weights by 1.01, a real if small error, needs
// rtol 0.10 to 0.13 for the scores: the check fails it.
const (
	scoreAtol, scoreRtol = 1e-4, 3e-2 // obj and class scores, probabilities
	boxAtol, boxRtol     = 1.0, 3e-2  // cx, cy, w, h in input pixels
	// Detection confidences are obj*cls: the relative errors add.
	confRtol = 2 * scoreRtol
	// matchIoU is the least IoU of a detection and its counterpart: 3% of a
	// 10-pixel box (the smallest anchor) plus a pixel moves IoU to about 0.8.
	matchIoU = 0.8
	// iouSlack widens NMS's IoU threshold when deciding that a detection
	// missing from one side was suppressed there by a box it overlaps.
	iouSlack = 0.05
)

// detectionConfs are the NMS score thresholds compared: the default, and two
// low enough that the untrained built-in model detects something at 640
// (about 10 and 45 boxes per image on random images; its scores cluster
// near 0.01, where 300 detections, NMS's cap, would make ties decide).
var detectionConfs = []float32{0.25, 0.02, 0.015}

// deviceUnderTest returns $VIDPIPE_BENCH_DEVICE, or skips when it is unset.
func deviceUnderTest(tb testing.TB) string {
	tb.Helper()
	dev := os.Getenv(deviceEnv)
	if dev == "" {
		tb.Skipf("%s is unset: set it to cuda or cuda:N to compare and time a GPU (scripts/gpu-check.sh does), or cpu to rehearse", deviceEnv)
	}
	if _, err := infer.ParseDevice(dev); err != nil {
		tb.Fatalf("%s: %v", deviceEnv, err)
	}
	return dev
}

// deviceImages returns n CHW images of size x size: uniform noise, and for
// n > 1 a last one shaped like a letterboxed 4:3 frame (grey bars, smooth
// gradients, flat rectangles), so that not every input has the same
// statistics.
func deviceImages(n, size int) []float32 {
	per := 3 * size * size
	out := make([]float32, n*per)
	for i := range n {
		img := out[i*per : (i+1)*per]
		if i < n-1 || n == 1 {
			rng := rand.New(rand.NewPCG(11, uint64(i)))
			for j := range img {
				img[j] = rng.Float32()
			}
			continue
		}
		bar := size / 8
		for c := range 3 {
			for y := range size {
				for x := range size {
					v := float32(114) / 255
					if y >= bar && y < size-bar {
						fx, fy := float64(x)/float64(size), float64(y)/float64(size)
						v = float32(0.5 + 0.4*math.Sin(6*fx+2*float64(c))*math.Cos(5*fy))
						if (x/(size/5)+y/(size/4))%3 == c {
							v = float32(c+1) / 4
						}
					}
					img[(c*size+y)*size+x] = v
				}
			}
		}
	}
	return out
}

// runModel opens model on dev for batches up to maxBatch and runs each of
// batches in turn on the leading images, returning copies of output0.
func runModel(tb testing.TB, model []byte, name, dev string, fp32 bool, images []float32, batches ...int) [][]float32 {
	tb.Helper()
	ctx := context.Background()
	s, err := infer.Open(ctx, model, name, infer.Options{Device: dev, MaxBatch: slices.Max(batches), FP32: fp32})
	if err != nil {
		tb.Fatal(err) // a missing library says "run scripts/setup.sh"
	}
	defer s.Close()
	var outs [][]float32
	for _, b := range batches {
		in, err := s.Input(b)
		if err != nil {
			tb.Fatal(err)
		}
		copy(in, images)
		o, err := s.Run(ctx, b)
		if err != nil {
			tb.Fatal(err)
		}
		outs = append(outs, slices.Clone(o[0].Data))
	}
	return outs
}

// deviceCandidates is the rows a GPU worker copies back by default
// (cmd/vidpipe's --candidates).
const deviceCandidates = 2000

// runAgainReversed runs n images as one batch on a fresh full-float32
// session, then the same images in reverse order on the same session and
// batch size, and returns a copy of the second output0.
func runAgainReversed(tb testing.TB, model []byte, dev string, images []float32, n int) []float32 {
	tb.Helper()
	ctx := context.Background()
	s, err := infer.Open(ctx, model, "repyolov5s-again", infer.Options{Device: dev, MaxBatch: n, FP32: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	in, err := s.Input(n)
	if err != nil {
		tb.Fatal(err)
	}
	copy(in, images)
	if _, err := s.Run(ctx, n); err != nil {
		tb.Fatal(err)
	}
	per := len(in) / n
	for i := range n {
		copy(in[i*per:(i+1)*per], images[(n-1-i)*per:(n-i)*per])
	}
	o, err := s.Run(ctx, n)
	if err != nil {
		tb.Fatal(err)
	}
	return slices.Clone(o[0].Data)
}

// outputDiff is how far one output0 is from another, per column group.
type outputDiff struct {
	scoreAbs, boxAbs float64 // largest absolute differences
	// scoreRtol, boxRtol are the least rtol that would pass with the atol
	// constants: the figure to read against scoreRtol and boxRtol.
	scoreRtol, boxRtol float64
	nonFinite          int     // NaN or Inf where the reference is finite
	identical          float64 // fraction of bitwise-equal elements
}

func diffOutput0(ref, got []float32) outputDiff {
	var d outputDiff
	same := 0
	for i, r := range ref {
		g := got[i]
		if math.Float32bits(r) == math.Float32bits(g) {
			same++
		}
		if !finite(g) && finite(r) {
			d.nonFinite++
			continue
		}
		diff, ref := math.Abs(float64(g-r)), math.Abs(float64(r))
		if i%no < 4 {
			d.boxAbs = max(d.boxAbs, diff)
			d.boxRtol = max(d.boxRtol, (diff-boxAtol)/ref)
		} else {
			d.scoreAbs = max(d.scoreAbs, diff)
			d.scoreRtol = max(d.scoreRtol, (diff-scoreAtol)/ref)
		}
	}
	d.identical = float64(same) / float64(len(ref))
	return d
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

func (d outputDiff) ok() bool {
	return d.nonFinite == 0 && d.scoreRtol <= scoreRtol && d.boxRtol <= boxRtol
}

func (d outputDiff) String() string {
	return fmt.Sprintf("scores max abs diff %.3g (needs rtol %.3g, limit %g), boxes max abs diff %.3g px (needs rtol %.3g, limit %g), %d non-finite, %.1f%% bitwise identical",
		d.scoreAbs, max(d.scoreRtol, 0), scoreRtol, d.boxAbs, max(d.boxRtol, 0), boxRtol, d.nonFinite, 100*d.identical)
}

// detectionDiff is the outcome of matching the detections of two output0s.
type detectionDiff struct {
	matched    int
	borderline int            // unmatched, but within tolerance of a threshold that explains it
	reasons    map[string]int // borderline cases by explanation
	worstIoU   float64
	worstConf  float64 // largest |Δconf| / conf of a match
	bad        []string
}

// diffDetections runs NMS at each of confs on every image of ref and got
// (n images of rows x no; got may hold fewer rows per image, a candidates
// model's) and matches the detections as sets: random weights give exactly
// tied scores that rounding may order either way.
func diffDetections(ref, got []float32, n int, confs []float32) (detectionDiff, error) {
	d := detectionDiff{worstIoU: 1}
	rows, gotRows := len(ref)/n/no, len(got)/n/no
	for _, conf := range confs {
		opt := detect.DefaultNMSOptions()
		opt.Conf = conf
		for i := range n {
			a, err := detect.NMS(nil, ref[i*rows*no:(i+1)*rows*no], rows, no, opt)
			if err != nil {
				return d, err
			}
			b, err := detect.NMS(nil, got[i*gotRows*no:(i+1)*gotRows*no], gotRows, no, opt)
			if err != nil {
				return d, err
			}
			d.match(a, b, opt, fmt.Sprintf("conf %g image %d", conf, i))
		}
	}
	return d, nil
}

func (d *detectionDiff) match(a, b []detect.Detection, opt detect.NMSOptions, where string) {
	used := make([]bool, len(b))
	for _, x := range a {
		best, bestIoU := -1, matchIoU
		for j, y := range b {
			if used[j] || y.ClassID != x.ClassID || !nearConf(x.Conf, y.Conf) {
				continue
			}
			if v := iou(x.Box, y.Box); v >= bestIoU {
				best, bestIoU = j, v
			}
		}
		if best >= 0 {
			used[best] = true
			d.matched++
			d.worstIoU = min(d.worstIoU, bestIoU)
			d.worstConf = max(d.worstConf, math.Abs(float64(x.Conf-b[best].Conf))/float64(x.Conf))
			continue
		}
		d.unmatched(x, b, opt, where+": cpu")
	}
	for j, y := range b {
		if !used[j] {
			d.unmatched(y, a, opt, where+": device")
		}
	}
}

// unmatched records x, found on one side only, as borderline when the other
// side's NMS could have dropped it within tolerance: its score is near the
// threshold, the other side hit the detection cap near its score, the other
// side has the same box and score under another class (the untrained
// model's class scores are nearly tied, and NMS keeps the best class of a
// row only), or the other side kept a box of its class that overlaps it
// about as much as NMS allows.
func (d *detectionDiff) unmatched(x detect.Detection, other []detect.Detection, opt detect.NMSOptions, where string) {
	var why string
	switch {
	case nearConf(x.Conf, opt.Conf):
		why = "score near threshold"
	case len(other) >= opt.MaxDet && nearConf(x.Conf, other[len(other)-1].Conf):
		why = "detection cap"
	case slices.ContainsFunc(other, func(y detect.Detection) bool {
		return y.ClassID != x.ClassID && nearConf(x.Conf, y.Conf) && iou(x.Box, y.Box) >= matchIoU
	}):
		why = "class tie"
	case slices.ContainsFunc(other, func(y detect.Detection) bool {
		return y.ClassID == x.ClassID && (y.Conf >= x.Conf || nearConf(x.Conf, y.Conf)) && iou(x.Box, y.Box) > opt.IoU-iouSlack
	}):
		why = "suppressed by overlap"
	default:
		d.bad = append(d.bad, fmt.Sprintf("%s only: class %d conf %.4f box %v", where, x.ClassID, x.Conf, x.Box))
		return
	}
	d.borderline++
	if d.reasons == nil {
		d.reasons = map[string]int{}
	}
	d.reasons[why]++
}

func nearConf(a, b float32) bool {
	return math.Abs(float64(a-b)) <= scoreAtol+confRtol*math.Abs(float64(a))
}

func iou(a, b detect.Box) float64 {
	iw := min(a.X2, b.X2) - max(a.X1, b.X1)
	ih := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := float64(iw) * float64(ih)
	area := func(r detect.Box) float64 { return float64(r.X2-r.X1) * float64(r.Y2-r.Y1) }
	return inter / (area(a) + area(b) - inter)
}

func (d detectionDiff) String() string {
	return fmt.Sprintf("%d detections matched (least IoU %.3f, worst conf deviation %.2g), %d borderline %v, %d unexplained",
		d.matched, d.worstIoU, d.worstConf, d.borderline, d.reasons, len(d.bad))
}

// check reports d's failures on t. Borderline cases are what rounding does
// near a threshold: TF32 rounding on the CPU gave 16 for 177 matched at 640
// (12 of them NMS flips among the untrained model's heaps of overlapping
// boxes); a quarter of the matches or more means the outputs really differ.
func (d detectionDiff) check(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: %v", what, d)
	for i, s := range d.bad {
		if i == 10 {
			t.Errorf("... and %d more", len(d.bad)-i)
			break
		}
		t.Errorf("%s: %s", what, s)
	}
	if d.matched == 0 {
		t.Errorf("%s: no detection at all: the comparison proves nothing", what)
	}
	if d.borderline*4 > d.matched {
		t.Errorf("%s: %d borderline detections for %d matched, over a quarter", what, d.borderline, d.matched)
	}
}

// TestDeviceMatchesCPU runs the built-in fused RepYOLOv5s at 640 on the CPU
// and on $VIDPIPE_BENCH_DEVICE, on compareBatch images as one batch and on
// the first image alone (each batch size has its own I/O binding), and
// compares output0 and the NMS detections.
func TestDeviceMatchesCPU(t *testing.T) {
	dev := deviceUnderTest(t)
	m, err := builtin.Build(deviceSize)
	if err != nil {
		t.Fatal(err)
	}
	model := onnx.Encode(m)
	images := deviceImages(compareBatch, deviceSize)
	cpu := runModel(t, model, "repyolov5s-640", "cpu", false, images, compareBatch)[0]
	// Full float32 on the device: TF32 (the CUDA default) is measured below.
	got := runModel(t, model, "repyolov5s-640", dev, true, images, compareBatch, 1)
	t.Logf("ONNX Runtime %s from %s, device %s", ort.GetVersion(), infer.LibraryPath(), dev)
	t.Run("candidates", func(t *testing.T) {
		// What a GPU worker runs by default: the model returns its rows of
		// highest objectness only; the detections must be the CPU's.
		sel, err := yolo.WithCandidates(model, deviceCandidates)
		if err != nil {
			t.Fatal(err)
		}
		got := runModel(t, sel, "repyolov5s-640-candidates", dev, true, images, compareBatch)[0]
		dd, err := diffDetections(cpu, got, compareBatch, detectionConfs)
		if err != nil {
			t.Fatal(err)
		}
		dd.check(t, fmt.Sprintf("detections of %d candidates at conf %v", deviceCandidates, detectionConfs))
	})
	defer func() {
		// TF32 keeps 10 mantissa bits per product; through ~60 convs of an
		// untrained net with large Detect gains that is not within any
		// fixed tolerance, so it is reported, and only checked for sanity.
		tf32 := runModel(t, model, "repyolov5s-640", dev, false, images, compareBatch)[0]
		od := diffOutput0(cpu, tf32)
		t.Logf("with TF32 (the CUDA default), batch %d: %v", compareBatch, od)
		if od.nonFinite > 0 {
			t.Errorf("TF32 output has %d non-finite values", od.nonFinite)
		}
		if dd, err := diffDetections(cpu, tf32, compareBatch, []float32{0.25}); err == nil {
			t.Logf("with TF32, detections at conf 0.25: %d matched, %d borderline, %d unexplained", dd.matched, dd.borderline, len(dd.bad))
		}
	}()

	per := len(cpu) / compareBatch
	// The same session and batch size again with the images in reverse
	// order: each Run must see the images written since the last one.
	again := runAgainReversed(t, model, dev, images, compareBatch)
	reversed := make([]float32, 0, len(cpu))
	for i := compareBatch - 1; i >= 0; i-- {
		reversed = append(reversed, cpu[i*per:(i+1)*per]...)
	}
	for _, c := range []struct {
		name     string
		ref, got []float32
		n        int
	}{
		{fmt.Sprintf("batch %d", compareBatch), cpu, got[0], compareBatch},
		{"batch 1", cpu[:per], got[1], 1},
		{fmt.Sprintf("batch %d again, reversed", compareBatch), reversed, again, compareBatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			od := diffOutput0(c.ref, c.got)
			t.Logf("output0 [%d,%d,%d] on %s vs cpu: %v", c.n, per/no, no, dev, od)
			if !od.ok() {
				t.Errorf("output0 differs beyond tolerance: %v", od)
				// Which reference image does each output image resemble?
				// A permutation points at batch layout, not arithmetic.
				for i := range c.n {
					var row []string
					for j := range c.n {
						d := diffOutput0(c.ref[j*per:(j+1)*per], c.got[i*per:(i+1)*per])
						row = append(row, fmt.Sprintf("%.3g", d.scoreAbs))
					}
					t.Logf("image %d: max score diff against cpu images 0..%d: %v", i, c.n-1, row)
				}
			}
			dd, err := diffDetections(c.ref, c.got, c.n, detectionConfs)
			if err != nil {
				t.Fatal(err)
			}
			dd.check(t, "detections at conf "+fmt.Sprint(detectionConfs))
		})
	}
}

// TestDeviceToleranceOnCPU checks the comparison of TestDeviceMatchesCPU on
// the CPU alone, at 160 so that it stays fast: it must accept the model
// with every conv weight and conv input rounded to TF32, as a GPU computes
// by default, and reject a model whose first conv weights are 1% off and an
// output whose images are swapped.
func TestDeviceToleranceOnCPU(t *testing.T) {
	const size, n = 160, 3
	m, err := builtin.Build(size)
	if err != nil {
		t.Fatal(err)
	}
	images := deviceImages(n, size)
	ref := runModel(t, onnx.Encode(m), "repyolov5s-160", "cpu", false, images, n)[0]
	// At 160 the untrained model's scores sit lower than at 640: 0.01 gives
	// 70 to 90 detections per image.
	confs := []float32{0.25, 0.015, 0.01}

	tf32, err := tf32Model(m)
	if err != nil {
		t.Fatal(err)
	}
	got := runModel(t, onnx.Encode(tf32), "repyolov5s-160-tf32", "cpu", false, images, n)[0]
	od := diffOutput0(ref, got)
	t.Logf("TF32-rounded model: %v", od)
	if !od.ok() || od.scoreRtol < 1e-3 {
		t.Errorf("TF32-rounded model: %v; want within tolerance, and visibly moved", od)
	}
	dd, err := diffDetections(ref, got, n, confs)
	if err != nil {
		t.Fatal(err)
	}
	dd.check(t, "TF32-rounded model")

	off, err := onnx.Decode(onnx.Encode(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := scaleFirstConv(off, 1.01); err != nil {
		t.Fatal(err)
	}
	got = runModel(t, onnx.Encode(off), "repyolov5s-160-off", "cpu", false, images, n)[0]
	od = diffOutput0(ref, got)
	t.Logf("first conv 1%% off: %v", od)
	if od.ok() {
		t.Errorf("first conv 1%% off passes output0 tolerance: %v", od)
	}

	per := len(ref) / n
	swapped := slices.Concat(ref[per:2*per], ref[:per], ref[2*per:])
	od = diffOutput0(ref, swapped)
	dd, err = diffDetections(ref, swapped, n, confs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("images swapped: %v; %v", od, dd)
	if od.ok() || len(dd.bad) == 0 {
		t.Errorf("images swapped pass: %v; %v", od, dd)
	}
}

// tf32 rounds v to TF32's 10 mantissa bits, to nearest even.
func tf32(v float32) float32 {
	b := math.Float32bits(v)
	if b&0x7f800000 == 0x7f800000 {
		return v // Inf and NaN stay
	}
	b += 0xfff + (b>>13)&1
	return math.Float32frombits(b &^ 0x1fff)
}

// tf32Model returns a copy of m in which every Conv sees TF32 operands: its
// weights rounded, its input rounded by a Cast to FLOAT16 and back (the
// same 10 mantissa bits; the model's activations stay far inside FLOAT16's
// range, and values under its normal range lose only absolute 6e-8).
func tf32Model(m *onnx.Model) (*onnx.Model, error) {
	c, err := onnx.Decode(onnx.Encode(m))
	if err != nil {
		return nil, err
	}
	ix := onnx.NewIndex(c.Graph)
	var nodes []*onnx.Node
	for _, n := range c.Graph.Nodes {
		if n.OpType != "Conv" {
			nodes = append(nodes, n)
			continue
		}
		w := ix.Initializers[n.Inputs[1]]
		if w == nil {
			return nil, fmt.Errorf("conv %s: weight %s is not an initializer", n.Name, n.Inputs[1])
		}
		f, err := w.Floats()
		if err != nil {
			return nil, fmt.Errorf("conv %s weight %s: %w", n.Name, w.Name, err)
		}
		for i := range f {
			f[i] = tf32(f[i])
		}
		*w = *onnx.NewFloat(w.Name, w.Dims, f)
		half, back := n.Name+"/tf32_half", n.Name+"/tf32"
		nodes = append(nodes,
			&onnx.Node{Name: half, OpType: "Cast", Inputs: []string{n.Inputs[0]}, Outputs: []string{half}, Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float16))}},
			&onnx.Node{Name: back, OpType: "Cast", Inputs: []string{half}, Outputs: []string{back}, Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float))}},
			n)
		n.Inputs[0] = back
	}
	c.Graph.Nodes = nodes
	return c, nil
}

// scaleFirstConv multiplies the weights of m's first Conv by f.
func scaleFirstConv(m *onnx.Model, f float32) error {
	ix := onnx.NewIndex(m.Graph)
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Conv" {
			continue
		}
		w := ix.Initializers[n.Inputs[1]]
		v, err := w.Floats()
		if err != nil {
			return err
		}
		for i := range v {
			v[i] *= f
		}
		*w = *onnx.NewFloat(w.Name, w.Dims, v)
		return nil
	}
	return fmt.Errorf("no conv in %s", m.Graph.Name)
}

// transferModel has the built-in model's input and output0 at size but
// computes next to nothing (a mean, broadcast): running it costs what a run
// of the real model costs besides the model itself, chiefly copying the
// input to the device and output0 back, since the session binds host memory.
func transferModel(size int) []byte {
	rows := int64(0)
	for _, stride := range []int{8, 16, 32} {
		rows += 3 * int64(size/stride) * int64(size/stride)
	}
	g := &onnx.Graph{
		Name: "transfer",
		Nodes: []*onnx.Node{
			{Name: "mean", OpType: "ReduceMean", Inputs: []string{"images"}, Outputs: []string{"mean"},
				Attrs: []*onnx.Attribute{onnx.Ints("axes", 1, 2, 3), onnx.Int("keepdims", 1)}},
			{Name: "flat", OpType: "Reshape", Inputs: []string{"mean", "flat_shape"}, Outputs: []string{"flat"}},
			{Name: "expand", OpType: "Expand", Inputs: []string{"flat", "out_shape"}, Outputs: []string{"output0"}},
		},
		Initializers: []*onnx.Tensor{
			onnx.NewInt64("flat_shape", []int64{3}, []int64{-1, 1, 1}),
			onnx.NewInt64("out_shape", []int64{3}, []int64{1, rows, no}),
		},
		Inputs: []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float,
			onnx.Dim{Param: "batch"}, onnx.Dim{Value: 3}, onnx.Dim{Value: int64(size)}, onnx.Dim{Value: int64(size)})},
		Outputs: []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float,
			onnx.Dim{Param: "batch"}, onnx.Dim{Value: rows}, onnx.Dim{Value: no})},
	}
	return onnx.Encode(&onnx.Model{IRVersion: 7, OpsetImports: []onnx.OpsetID{{Version: 13}}, ProducerName: "vidpipe", Graph: g})
}

// BenchmarkDevice times Session.Run of the built-in fused RepYOLOv5s at 640
// on $VIDPIPE_BENCH_DEVICE, batch 1 and batch 32, the way workers call it:
// the input already in the session's bound buffer. Those buffers are host
// memory (onnxruntime_go makes no device tensors), so on a GPU every run
// also copies the input in and output0 (8.6 MB per image) out:
//
//   - run: Session.Run of the model, copies included: frames/s a worker gets;
//   - transfer: the same Run on transferModel, the copies and two tiny
//     kernels; run minus transfer estimates the model alone.
//
// Each reports frames/s and ms/batch; warm-up runs are not timed.
func BenchmarkDevice(b *testing.B) {
	dev := deviceUnderTest(b)
	m, err := builtin.Build(deviceSize)
	if err != nil {
		b.Fatal(err)
	}
	sel, err := yolo.WithCandidates(onnx.Encode(m), deviceCandidates)
	if err != nil {
		b.Fatal(err)
	}
	// Pageable is Go memory for the session's buffers instead of pinned
	// host memory: what pinning gains on a GPU.
	models := []struct {
		name           string
		model          []byte
		fp32, pageable bool
	}{
		{"run", onnx.Encode(m), false, false}, {"run-fp32", onnx.Encode(m), true, false},
		{"transfer", transferModel(deviceSize), false, false}, {"run-candidates", sel, false, false},
		{"run-pageable", onnx.Encode(m), false, true}, {"transfer-pageable", transferModel(deviceSize), false, true},
	}
	for _, batch := range []int{1, largeBatch} {
		for _, c := range models {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, c.name), func(b *testing.B) {
				ctx := context.Background()
				s, err := infer.Open(ctx, c.model, c.name, infer.Options{Device: dev, MaxBatch: batch, FP32: c.fp32, Pageable: c.pageable})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				in, err := s.Input(batch)
				if err != nil {
					b.Fatal(err)
				}
				copy(in, deviceImages(batch, deviceSize))
				for range deviceWarmup {
					if _, err := s.Run(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				for b.Loop() {
					if _, err := s.Run(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds()
				b.ReportMetric(float64(b.N*batch)/sec, "frames/s")
				b.ReportMetric(1000*sec/float64(b.N), "ms/batch")
				if s.Pinned() {
					b.ReportMetric(1, "pinned")
				}
			})
		}
	}
}
