package fuse

import (
	"fmt"
	"slices"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// A RepVGG block is a sum of terms over one input x. The sum is a tree of Add
// nodes (any association and order) or a Sum node; its leaves are the terms.
// Every term is one of: Conv(x) with bias, BatchNormalization(x), Mul(x, s)
// with a per-channel constant s, x itself, or a per-channel constant. Since
// every term is affine in x with the same receptive-field centre, the whole
// sum is one Conv whose kernel and bias are the sums of the terms' kernels
// and biases, each placed where its window sits inside the largest one.

type termKind int

const (
	termConst termKind = iota // a constant added to the sum
	termConv                  // Conv(src, W, B)
	termBN                    // BatchNormalization(src)
	termScale                 // Mul(src, s), s constant
	termPlain                 // the value itself (src == value): identity, or unsupported
)

// term is one leaf of a sum tree.
type term struct {
	value string
	kind  termKind
	node  *onnx.Node // producer for termConv, termBN, termScale; for termPlain the producer if any
	src   string     // the input the term reads; "" for termConst
	why   string     // for termPlain with a producer: why it is not a supported branch
}

// sumTree is a sum node with the sum nodes beneath it that only it reads.
type sumTree struct {
	root     *onnx.Node
	sums     []*onnx.Node // root first
	terms    []term
	children []*onnx.Node // sum nodes directly beneath root, roots of subtrees
}

// plan is a verified RepVGG merge, applied once every tree has been analysed.
type plan struct {
	root   *onnx.Node
	fused  *onnx.Node
	remove []*onnx.Node
	fusion *Fusion
}

// mergeRepVGG finds every sum tree, merges those that form a RepVGG block,
// and tries the subtrees of those that do not. Trees are disjoint (an inner
// sum is read by its parent only), so their plans are independent.
func (w *rewriter) mergeRepVGG() error {
	w.reindex()
	var plans []plan
	for _, n := range w.g.Nodes {
		if !isSum(n) || w.isInnerSum(n) {
			continue
		}
		ps, err := w.mergeTree(n, true)
		if err != nil {
			return err
		}
		plans = append(plans, ps...)
	}
	repl := map[*onnx.Node]*onnx.Node{}
	removed := map[*onnx.Node]bool{}
	for _, p := range plans {
		repl[p.root] = p.fused
		for _, r := range p.remove {
			removed[r] = true
			delete(w.fusions, r) // a Conv+BN fold absorbed into the block
		}
		w.fusions[p.fused] = p.fusion
	}
	w.replaceNodes(repl, removed)
	return nil
}

// isSum reports whether n adds its inputs: a two-input Add or a Sum.
func isSum(n *onnx.Node) bool {
	if n == nil || len(n.Outputs) != 1 || n.Outputs[0] == "" {
		return false
	}
	switch {
	case isOp(n, "Add"):
		return len(n.Inputs) == 2
	case isOp(n, "Sum"):
		return len(n.Inputs) >= 1
	}
	return false
}

// isInnerSum reports whether n's output feeds only another sum node, which
// makes n part of that node's tree.
func (w *rewriter) isInnerSum(n *onnx.Node) bool {
	out := n.Outputs[0]
	if !w.soleUse(out) {
		return false
	}
	c := w.ix.Consumers[out][0]
	return c != n && isSum(c)
}

// mergeTree plans the merge of the tree rooted at root, or failing that of
// its subtrees. A candidate left unmerged is reported when report is set;
// the subtrees of a reported tree are not reported again.
func (w *rewriter) mergeTree(root *onnx.Node, report bool) ([]plan, error) {
	t := w.collect(root)
	p, cand, why, err := w.analyse(t)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return []plan{*p}, nil
	}
	if cand == notCandidate {
		// No input has a conv and another term here, so no subtree has either.
		return nil, nil
	}
	var plans []plan
	for _, c := range t.children {
		ps, err := w.mergeTree(c, report && cand != candidateInternal)
		if err != nil {
			return nil, err
		}
		plans = append(plans, ps...)
	}
	if report && (cand == candidateInternal || (cand == candidateForeign && len(plans) == 0)) {
		w.skip(KindRepVGG, root, "%s", why)
	}
	return plans, nil
}

// collect flattens the sum tree under root. The visited set keeps a
// malformed, cyclic graph from making it loop.
func (w *rewriter) collect(root *onnx.Node) sumTree {
	t := sumTree{root: root, sums: []*onnx.Node{root}}
	visited := map[*onnx.Node]bool{root: true}
	var walk func(n *onnx.Node, top bool)
	walk = func(n *onnx.Node, top bool) {
		for _, v := range n.Inputs {
			p := w.ix.Producer[v]
			if isSum(p) && !visited[p] && w.soleUse(v) {
				visited[p] = true
				t.sums = append(t.sums, p)
				if top {
					t.children = append(t.children, p)
				}
				walk(p, false)
				continue
			}
			t.terms = append(t.terms, w.classify(v))
		}
	}
	walk(root, true)
	return t
}

// classify says what kind of term value is.
func (w *rewriter) classify(v string) term {
	if w.isConstant(v) {
		return term{value: v, kind: termConst}
	}
	p := w.ix.Producer[v]
	plain := term{value: v, kind: termPlain, node: p, src: v}
	if p == nil {
		return plain
	}
	if !w.soleUse(v) {
		plain.why = fmt.Sprintf("%s %s output %q has other readers (shared intermediate value)", p.OpType, label(p), v)
		return plain
	}
	if len(p.Outputs) != 1 && !isOp(p, "BatchNormalization") {
		plain.why = fmt.Sprintf("%s %s has %d outputs", p.OpType, label(p), len(p.Outputs))
		return plain
	}
	switch {
	case isOp(p, "Conv") && len(p.Inputs) >= 2 && p.Inputs[0] != "":
		return term{value: v, kind: termConv, node: p, src: p.Inputs[0]}
	case isOp(p, "BatchNormalization") && len(p.Inputs) >= 1 && p.Inputs[0] != "":
		if p.Outputs[0] != v {
			plain.why = fmt.Sprintf("BatchNormalization %s output %q is a running statistic", label(p), v)
			return plain
		}
		return term{value: v, kind: termBN, node: p, src: p.Inputs[0]}
	case isOp(p, "Mul") && len(p.Inputs) == 2:
		a, b := p.Inputs[0], p.Inputs[1]
		switch ca, cb := w.isConstant(a), w.isConstant(b); {
		case cb && !ca:
			return term{value: v, kind: termScale, node: p, src: a}
		case ca && !cb:
			return term{value: v, kind: termScale, node: p, src: b}
		}
		plain.why = fmt.Sprintf("Mul %s does not scale by a constant", label(p))
	default:
		plain.why = fmt.Sprintf("unsupported op %s (%s) on a branch", p.OpType, label(p))
	}
	return plain
}

// candidacy says whether a failed tree was a RepVGG block worth reporting.
type candidacy int

const (
	notCandidate      candidacy = iota
	candidateInternal           // its own branches do not match (stride, pads, unknown op on x, ...)
	candidateForeign            // it also adds values unrelated to the block input
)

// analyse returns a plan when the whole tree is one RepVGG block; otherwise
// how much of a candidate it was and why it does not match.
func (w *rewriter) analyse(t sumTree) (*plan, candidacy, string, error) {
	x, n := w.blockInput(t)
	if x == "" {
		return nil, notCandidate, "", nil
	}
	var foreign []term
	for _, tm := range t.terms {
		if tm.kind != termConst && tm.src != x {
			foreign = append(foreign, tm)
		}
	}
	for _, tm := range foreign {
		if w.related(tm, x) {
			why := tm.why
			if why == "" {
				why = fmt.Sprintf("%q is not a supported branch", tm.value)
			}
			return nil, candidateInternal, fmt.Sprintf("block over %q: %s", x, why), nil
		}
	}
	if n < 2 {
		// A lone conv plus other values is an ordinary residual or bias add.
		return nil, notCandidate, "", nil
	}
	if len(foreign) > 0 {
		return nil, candidateForeign, fmt.Sprintf("block over %q also adds %q, which does not derive from it", x, foreign[0].value), nil
	}
	b, why, err := w.buildBlock(t, x)
	if err != nil {
		return nil, notCandidate, "", err
	}
	if b == nil {
		return nil, candidateInternal, fmt.Sprintf("block over %q: %s", x, why), nil
	}
	return b, candidateInternal, "", nil
}

// blockInput picks the input that the tree's conv terms read, the one with
// the most terms if they read several; n is how many terms read it.
func (w *rewriter) blockInput(t sumTree) (x string, n int) {
	count := map[string]int{}
	for _, tm := range t.terms {
		if tm.kind != termConst {
			count[tm.src]++
		}
	}
	for _, tm := range t.terms {
		if tm.kind == termConv && count[tm.src] > n {
			x, n = tm.src, count[tm.src]
		}
	}
	return x, n
}

// related reports whether a term that is not a mergeable branch of x still
// hangs off x: a branch of the block that cannot be merged (an unsupported op
// on x, a shared intermediate value, an unfolded BN over a conv of x), as
// opposed to an unrelated value added to the block's result.
func (w *rewriter) related(tm term, x string) bool {
	p := tm.node
	if p == nil {
		return false
	}
	if slices.Contains(p.Inputs, x) {
		return true
	}
	// A BatchNormalization left over a conv of x: its Conv+BN fold was skipped.
	if isOp(p, "BatchNormalization") && len(p.Inputs) > 0 {
		if q := w.ix.Producer[p.Inputs[0]]; isOp(q, "Conv") && len(q.Inputs) > 0 && q.Inputs[0] == x {
			return true
		}
	}
	return false
}
