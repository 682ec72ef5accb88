package fuse

import (
	"fmt"
	"math"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// foldConvBN folds every BatchNormalization whose input comes only from a
// Conv into that Conv: t = γ/sqrt(σ²+ε), W' = W·t per output channel,
// b' = β − μ·t + t·c. The Conv keeps its place, name and attributes and takes
// over the BatchNormalization's output.
func (w *rewriter) foldConvBN() error {
	w.reindex()
	repl := map[*onnx.Node]*onnx.Node{}
	removed := map[*onnx.Node]bool{}
	for _, bn := range w.g.Nodes {
		if !isOp(bn, "BatchNormalization") || len(bn.Inputs) == 0 {
			continue
		}
		conv := w.ix.Producer[bn.Inputs[0]]
		if !isOp(conv, "Conv") {
			continue // a BatchNormalization on an identity branch, or on anything else
		}
		folded, why, err := w.foldOne(conv, bn)
		if err != nil {
			return err
		}
		if folded == nil {
			w.skip(KindConvBN, bn, "%s", why)
			continue
		}
		repl[conv] = folded
		removed[bn] = true
		if f, ok := w.fusions[conv]; ok {
			// A merged block followed by its own BN: still one block.
			delete(w.fusions, conv)
			w.fusions[folded] = f
		} else {
			w.fusions[folded] = &Fusion{Kind: KindConvBN, Node: folded.Name}
		}
	}
	w.replaceNodes(repl, removed)
	return nil
}

// foldOne returns the Conv that replaces conv followed by bn, or nil and the
// reason they cannot be folded.
func (w *rewriter) foldOne(conv, bn *onnx.Node) (*onnx.Node, string, error) {
	out := bn.Inputs[0]
	switch {
	case len(conv.Outputs) != 1:
		return nil, fmt.Sprintf("Conv %s has %d outputs", label(conv), len(conv.Outputs)), nil
	case w.ix.GraphOutputs[out]:
		return nil, fmt.Sprintf("conv output %q is a graph output", out), nil
	case !w.soleUse(out):
		return nil, fmt.Sprintf("conv output %q has other readers (shared intermediate value)", out), nil
	}
	wt, why := w.convWeight(conv, 3)
	if wt == nil {
		return nil, why, nil
	}
	cout := wt.Dims[0]
	scale, shift, why, err := w.bnAffine(bn, cout)
	if scale == nil {
		return nil, why, err
	}
	wv, why, err := w.floats(conv, conv.Inputs[1], wt)
	if wv == nil {
		return nil, why, err
	}
	bias, why, err := w.convBias(conv, cout)
	if why != "" || err != nil {
		return nil, why, err
	}
	per := int64(len(wv)) / cout
	nw := make([]float64, len(wv))
	for o := range cout {
		for i := o * per; i < (o+1)*per; i++ {
			nw[i] = wv[i] * scale[o]
		}
	}
	nb := make([]float64, cout)
	for o := range nb {
		nb[o] = shift[o]
		if bias != nil {
			nb[o] += scale[o] * bias[o]
		}
	}
	base := conv.Name
	if base == "" {
		base = bn.Outputs[0]
	}
	folded := *conv
	folded.Inputs = []string{
		conv.Inputs[0],
		w.addTensor(base+".weight_fused", wt.Dims, nw),
		w.addTensor(base+".bias_fused", []int64{cout}, nb),
	}
	folded.Outputs = []string{bn.Outputs[0]}
	return &folded, "", nil
}

// convWeight returns a Conv's constant FLOAT weight of rank minRank or more
// with a positive output-channel count, or the reason it has none.
func (w *rewriter) convWeight(conv *onnx.Node, minRank int) (*onnx.Tensor, string) {
	if len(conv.Inputs) < 2 || conv.Inputs[0] == "" {
		return nil, fmt.Sprintf("Conv %s has %d inputs", label(conv), len(conv.Inputs))
	}
	t, why := w.constant(conv.Inputs[1])
	switch {
	case t == nil:
		return nil, "weight " + why
	case t.DataType != onnx.Float:
		return nil, fmt.Sprintf("weight %q is %s; only FLOAT weights are fused", conv.Inputs[1], t.DataType)
	case len(t.Dims) < minRank:
		return nil, fmt.Sprintf("weight %q has rank %d, want %d or more", conv.Inputs[1], len(t.Dims), minRank)
	}
	for _, d := range t.Dims {
		if d <= 0 {
			return nil, fmt.Sprintf("weight %q has dims %v", conv.Inputs[1], t.Dims)
		}
	}
	return t, ""
}

// convBias returns a Conv's constant bias, nil when it has none.
func (w *rewriter) convBias(conv *onnx.Node, cout int64) ([]float64, string, error) {
	if len(conv.Inputs) < 3 || conv.Inputs[2] == "" {
		return nil, "", nil
	}
	b, why, err := w.vector(conv, conv.Inputs[2], cout)
	if b == nil && why != "" {
		why = "bias " + why
	}
	return b, why, err
}

// bnAffine returns the per-channel scale t and shift β − μ·t of an
// inference-mode BatchNormalization over c channels, so that BN(x) = t·x + shift.
func (w *rewriter) bnAffine(bn *onnx.Node, c int64) (scale, shift []float64, why string, err error) {
	if len(bn.Inputs) != 5 {
		return nil, nil, fmt.Sprintf("BatchNormalization %s has %d inputs, want 5", label(bn), len(bn.Inputs)), nil
	}
	if bn.AttrInt("training_mode", 0) != 0 {
		return nil, nil, fmt.Sprintf("BatchNormalization %s is in training mode (training_mode=1)", label(bn)), nil
	}
	for _, o := range bn.Outputs[min(1, len(bn.Outputs)):] {
		if o != "" {
			return nil, nil, fmt.Sprintf("BatchNormalization %s is in training mode (it outputs running statistics)", label(bn)), nil
		}
	}
	if len(bn.Outputs) == 0 || bn.Outputs[0] == "" {
		return nil, nil, fmt.Sprintf("BatchNormalization %s has no output", label(bn)), nil
	}
	if a := bn.Attr("spatial"); a != nil && a.I == 0 {
		return nil, nil, fmt.Sprintf("BatchNormalization %s has spatial=0", label(bn)), nil
	}
	var p [4][]float64 // γ, β, μ, σ²
	names := [4]string{"scale", "bias", "mean", "variance"}
	for i := range p {
		p[i], why, err = w.vector(bn, bn.Inputs[i+1], c)
		if p[i] == nil {
			if why != "" {
				why = fmt.Sprintf("BatchNormalization %s %s %s", label(bn), names[i], why)
			}
			return nil, nil, why, err
		}
	}
	eps := float64(bn.AttrFloat("epsilon", 1e-5))
	scale = make([]float64, c)
	shift = make([]float64, c)
	for o := range scale {
		d := p[3][o] + eps
		if !(d > 0) {
			return nil, nil, fmt.Sprintf("BatchNormalization %s channel %d: variance + epsilon = %g is not positive", label(bn), o, d), nil
		}
		scale[o] = p[0][o] / math.Sqrt(d)
		shift[o] = p[1][o] - p[2][o]*scale[o]
	}
	return scale, shift, "", nil
}
