// Package fuse turns a training-form RepVGG-style ONNX graph into its deploy
// form: BatchNormalization folded into the convolution before it, and parallel
// conv/identity branches over one input merged into a single convolution.
package fuse

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// Sentinel errors. Patterns that merely do not match are skipped and listed in
// Report.Skipped; these mean the graph itself cannot be trusted.
var (
	// ErrNoGraph means the model holds no graph.
	ErrNoGraph = errors.New("model has no graph")
	// ErrInconsistent means a tensor or node contradicts itself (data that does
	// not match its dims, a nil node); the graph is left untouched.
	ErrInconsistent = errors.New("inconsistent graph")
)

// Fusion kinds.
const (
	KindConvBN = "conv+bn"
	KindRepVGG = "repvgg"
)

// Fusion is one rewrite that was applied.
type Fusion struct {
	Kind string // KindConvBN or KindRepVGG
	Node string // name of the resulting Conv node
	// Branches lists what a RepVGG block merged, largest kernel first:
	// "3x3", "1x1", "identity(bn)", "identity(mul/add)", "identity(mul)",
	// "identity", and "bias" for a constant added to the branch sum.
	Branches []string
}

// Skip is a candidate pattern left untouched, with the reason.
type Skip struct {
	Kind   string // KindConvBN or KindRepVGG
	Node   string // the BatchNormalization, or the Add/Sum at the root of the block
	Reason string
}

// Report says what Model did.
type Report struct {
	// Fusions lists the resulting Conv nodes in graph order. A Conv+BN fold
	// that was then merged into a RepVGG block is not listed on its own.
	Fusions                   []Fusion
	Skipped                   []Skip
	NodesBefore, NodesAfter   int
	ParamsBefore, ParamsAfter int64
}

// Model rewrites m.Graph in place into its deploy form and reports what it did.
// It folds every Conv followed only by an inference-mode BatchNormalization,
// and merges every sum (an Add tree or a Sum) of conv, BatchNormalization,
// Mul-by-constant, plain and constant terms over one input into one Conv,
// until neither finds anything more.
// Everything it cannot prove equivalent stays as it was. On error the graph is
// not modified.
func Model(m *onnx.Model) (Report, error) {
	if m == nil || m.Graph == nil {
		return Report{}, ErrNoGraph
	}
	if err := checkNil(m.Graph); err != nil {
		return Report{}, err
	}
	rep := Report{NodesBefore: len(m.Graph.Nodes), ParamsBefore: params(m.Graph)}
	w := newRewriter(m)
	wasSorted := w.sorted()
	// Repeat until nothing changes: a merged block may feed a BatchNormalization
	// (post-BN variants), and a folded conv may complete an outer block. Every
	// change removes a node, so this ends.
	for {
		n := len(w.g.Nodes)
		if err := w.foldConvBN(); err != nil {
			return rep, err
		}
		if err := w.mergeRepVGG(); err != nil {
			return rep, err
		}
		if len(w.g.Nodes) == n {
			break
		}
	}
	w.cleanUp()
	if wasSorted && !w.sorted() {
		// A bug here must not hand back a graph ONNX Runtime rejects.
		return rep, fmt.Errorf("fuse graph %s: %w: rewrite broke the topological order", m.Graph.Name, ErrInconsistent)
	}
	rep.Fusions = w.fusionsInOrder()
	rep.Skipped = w.skips()
	*m.Graph = w.g
	rep.NodesAfter = len(m.Graph.Nodes)
	rep.ParamsAfter = params(m.Graph)
	return rep, nil
}

// checkNil rejects graphs built in Go with holes in them; decoded graphs never
// have any.
func checkNil(g *onnx.Graph) error {
	for i, n := range g.Nodes {
		if n == nil {
			return fmt.Errorf("fuse graph %s: %w: node %d is nil", g.Name, ErrInconsistent, i)
		}
	}
	for i, t := range g.Initializers {
		if t == nil {
			return fmt.Errorf("fuse graph %s: %w: initializer %d is nil", g.Name, ErrInconsistent, i)
		}
	}
	for _, vs := range [][]*onnx.ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for i, v := range vs {
			if v == nil {
				return fmt.Errorf("fuse graph %s: %w: value info %d is nil", g.Name, ErrInconsistent, i)
			}
		}
	}
	return nil
}

// params is onnx.Params, minus the nodes without inputs that would make it
// index out of range: they hold no parameters anyway.
func params(g *onnx.Graph) int64 {
	if !slices.ContainsFunc(g.Nodes, func(n *onnx.Node) bool { return len(n.Inputs) == 0 }) {
		return onnx.Params(g)
	}
	c := *g
	c.Nodes = slices.DeleteFunc(slices.Clone(g.Nodes), func(n *onnx.Node) bool { return len(n.Inputs) == 0 })
	return onnx.Params(&c)
}

// String is the one-paragraph summary `vidpipe model fuse` prints, followed by
// one line per skipped pattern.
func (r Report) String() string {
	var b strings.Builder
	blocks := map[string]int{}
	convBN := 0
	for _, f := range r.Fusions {
		switch f.Kind {
		case KindRepVGG:
			blocks[blockShape(f.Branches)]++
		case KindConvBN:
			convBN++
		}
	}
	nBlocks := 0
	shapes := make([]string, 0, len(blocks))
	for s, n := range blocks {
		nBlocks += n
		shapes = append(shapes, s)
	}
	slices.SortFunc(shapes, func(a, b string) int {
		if blocks[a] != blocks[b] {
			return blocks[b] - blocks[a]
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintf(&b, "fused %d RepVGG %s", nBlocks, plural(nBlocks, "block", "blocks"))
	if len(shapes) > 0 {
		parts := make([]string, len(shapes))
		for i, s := range shapes {
			parts[i] = fmt.Sprintf("%s: %d", s, blocks[s])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, ", %d Conv+BN; %d skipped; nodes %d -> %d; params %s -> %s",
		convBN, len(r.Skipped), r.NodesBefore, r.NodesAfter, thousands(r.ParamsBefore), thousands(r.ParamsAfter))
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\n  skipped %s at %s: %s", s.Kind, s.Node, s.Reason)
	}
	return b.String()
}

// blockShape names a block by its branch kinds, identity variants folded
// together: "3x3+1x1+identity".
func blockShape(branches []string) string {
	var parts []string
	for _, br := range branches {
		if strings.HasPrefix(br, "identity") {
			br = "identity"
		}
		if !slices.Contains(parts, br) {
			parts = append(parts, br)
		}
	}
	return strings.Join(parts, "+")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// thousands formats n with comma separators, as the parameter counts in
// MODEL.md are written.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
