package yolo

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Source supplies weights by state_dict name (ultralytics / YOLOv5-Lite
// naming, e.g. "model.2.m.0.cv2.rbr_dense.conv.weight"). It returns an error
// naming the tensor (and its file) when the tensor is missing or its shape
// differs. *safetensors.File satisfies it.
//
// A Source that also has Shape(name string) ([]int, bool) lets the builder
// take anchors from the weights (model.N.anchors, or anchor_grid), pick a
// RepVGG block's deploy form, and name the layer whose tensors do not fit;
// one that also has Names() []string gets unused tensors refused; one with
// Metadata() map[string]string may carry class names under "names".
type Source interface {
	Tensor(name string, shape []int) ([]float32, error)
}

// shaper is what a Source also offers when it can say which tensors it
// holds without reading them (*safetensors.File and the checkpoint reader
// do). The builder then takes anchors from the weights, picks RepVGG forms,
// and names the layer at fault when the tensor set does not fit the file.
type shaper interface {
	Shape(name string) ([]int, bool)
}

// lister is what a Source offers when it can list its tensors; the builder
// then refuses weights it did not use.
type lister interface {
	Names() []string
}

// Gains on the He-uniform bound sqrt(6/fan_in). Without data-driven BN
// statistics a deep SiLU net has no stable scale of order one: SiLU halves
// small signals, so at gain 1 activations settle at a small level held up by
// the BN offsets (RMS ~0.1-0.2 at the head for every variant and seed), while
// 1.2 already grows them exponentially to saturation. So the trunk stays at
// gain 1, residual and RepVGG branches are damped so their sums do not tip it
// over, and the Detect convs carry the gain that spreads the scores (see
// TestSeededOutputSpread for the resulting distribution). More Detect gain
// (24, say) saturates the wh logits: boxes grow to thousands of pixels and
// float32 rounding alone then moves output0 by more than 1e-3.
const (
	repGain    = 0.7071 // each of dense and 1x1, so the two sum like one conv
	resGain    = 0.5    // a bottleneck's cv2, the end of a residual branch
	detectGain = 10     // Detect 1x1 convs, which read the small head features
)

// Seeded returns a Source of deterministic random weights: each tensor comes
// from a PCG seeded with seed and the FNV-1a hash of its name, so a tensor's
// values do not depend on which others were drawn before it.
//   - conv weights: U(-b, b), b = gain·sqrt(6/fan_in), gain as set out above
//   - BN: weight U(0.5, 1.5), bias U(-0.2, 0.2), running_mean U(-0.2, 0.2), running_var U(0.5, 2)
//   - Detect biases (model.N.m.I.bias, 3 anchors per level): PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) plus
//     ultralytics' priors obj += ln(8/(640/s)²), cls += ln(0.6/(nc-0.99999)).
func Seeded(seed int64) Source { return seeded(seed) }

type seeded int64

func (s seeded) Tensor(name string, shape []int) ([]float32, error) {
	n := 1
	for _, d := range shape {
		if d <= 0 || n > math.MaxInt32/d {
			return nil, fmt.Errorf("seed tensor %s: %w: shape %v", name, ErrWeight, shape)
		}
		n *= d
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(uint64(s), h.Sum64()))
	uniform := func(lo, hi float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return out
	}
	level, isDetect := seedDetectLevel(name)
	switch {
	case strings.HasSuffix(name, ".weight") && len(shape) == 4:
		fanIn := float64(shape[1] * shape[2] * shape[3])
		b := math.Sqrt(6 / fanIn)
		if strings.Contains(name, ".rbr_") {
			b *= repGain
		}
		if strings.Contains(name, ".m.") && strings.Contains(name, ".cv2.") {
			b *= resGain
		}
		if isDetect {
			b *= detectGain
		}
		return uniform(-b, b), nil
	case strings.HasSuffix(name, ".bias") && isDetect && len(shape) == 1:
		return detectBias(name, shape[0], level, uniform)
	case strings.HasSuffix(name, ".weight") && len(shape) == 1:
		return uniform(0.5, 1.5), nil
	case strings.HasSuffix(name, ".bias") && len(shape) == 1:
		return uniform(-0.2, 0.2), nil
	case strings.HasSuffix(name, ".running_mean") && len(shape) == 1:
		return uniform(-0.2, 0.2), nil
	case strings.HasSuffix(name, ".running_var") && len(shape) == 1:
		return uniform(0.5, 2), nil
	}
	return nil, fmt.Errorf("seed tensor %s: %w: no rule for shape %v", name, ErrWeight, shape)
}

// seedDetectLevel parses "model.N.m.I.bias" and "model.N.m.I.weight", the
// Detect convs' names (no other module of a model file holds a tensor
// directly under m.I).
func seedDetectLevel(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "model.")
	if !ok {
		return 0, false
	}
	row, rest, _ := strings.Cut(rest, ".")
	if _, err := strconv.Atoi(row); err != nil {
		return 0, false
	}
	rest, ok = strings.CutPrefix(rest, "m.")
	if !ok {
		return 0, false
	}
	i, suffix, _ := strings.Cut(rest, ".")
	level, err := strconv.Atoi(i)
	if err != nil || level < 0 || level > 2 || (suffix != "bias" && suffix != "weight") {
		return 0, false
	}
	return level, true
}

// detectBias draws a Detect conv bias with ultralytics' _initialize_biases
// priors, so scores start near the object and class frequencies of COCO
// rather than at 0.5.
func detectBias(name string, n, level int, uniform func(lo, hi float64) []float32) ([]float32, error) {
	const numAnchors = 3
	no := n / numAnchors
	nc := no - 5
	if n%numAnchors != 0 || nc < 1 {
		return nil, fmt.Errorf("seed tensor %s: %w: %d values, want 3·(5+classes)", name, ErrWeight, n)
	}
	// fan_in of the 1x1 conv is its input channel count, which the name does
	// not carry; use the level's yolov5s width as PyTorch would see it.
	fanIn := float64(int(128) << level)
	b := 1 / math.Sqrt(fanIn)
	bias := uniform(-b, b)
	stride := float64(int(8) << level)
	obj := math.Log(8 / math.Pow(640/stride, 2))
	cls := math.Log(0.6 / (float64(nc) - 0.99999))
	for a := range numAnchors {
		bias[a*no+4] += float32(obj)
		for c := range nc {
			bias[a*no+5+c] += float32(cls)
		}
	}
	return bias, nil
}
