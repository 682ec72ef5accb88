package fuse

import (
	"fmt"
	"slices"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// rewriter holds a private copy of the graph's node, initializer and value
// lists, so a failed rewrite leaves the caller's graph untouched. Nodes and
// tensors that change are replaced by new ones, never modified.
type rewriter struct {
	g    onnx.Graph
	ir   int64
	ix   *onnx.Index
	outs map[string]bool // values read inside subgraphs (If/Loop/Scan bodies)
	// names holds every name in use, so new initializers never collide.
	names map[string]bool
	// exact keeps the float64 values of tensors this rewrite computed, so the
	// RepVGG merge sums unrounded Conv+BN folds.
	exact map[*onnx.Tensor][]float64
	// created lists the initializers added, for IR < 4 graph inputs.
	created []*onnx.Tensor
	// fusions maps each resulting Conv node to its record.
	fusions map[*onnx.Node]*Fusion
	// skipped maps each node a pattern was skipped at to the latest skip.
	skipped   map[*onnx.Node]Skip
	skipOrder []*onnx.Node
}

func newRewriter(m *onnx.Model) *rewriter {
	g := *m.Graph
	g.Nodes = slices.Clone(g.Nodes)
	g.Initializers = slices.Clone(g.Initializers)
	g.Inputs = slices.Clone(g.Inputs)
	g.ValueInfo = slices.Clone(g.ValueInfo)
	w := &rewriter{
		g:       g,
		ir:      m.IRVersion,
		outs:    map[string]bool{},
		names:   map[string]bool{},
		exact:   map[*onnx.Tensor][]float64{},
		fusions: map[*onnx.Node]*Fusion{},
		skipped: map[*onnx.Node]Skip{},
	}
	collectNames(&w.g, w.names, w.outs, 0)
	return w
}

// collectNames records every value, initializer and node name of g and of its
// subgraphs in names, and every value a subgraph node reads in outer. Reads
// inside a subgraph may refer to the enclosing graph, so such values must be
// treated as used elsewhere.
func collectNames(g *onnx.Graph, names, outer map[string]bool, depth int) {
	if g == nil || depth > onnx.MaxDepth {
		return
	}
	for _, t := range g.Initializers {
		if t != nil {
			names[t.Name] = true
		}
	}
	for _, vs := range [][]*onnx.ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range vs {
			if v != nil {
				names[v.Name] = true
			}
		}
	}
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		for _, s := range n.Inputs {
			names[s] = true
			if depth > 0 {
				outer[s] = true
			}
		}
		for _, s := range n.Outputs {
			names[s] = true
		}
		for _, a := range n.Attrs {
			if a == nil {
				continue
			}
			collectNames(a.G, names, outer, depth+1)
			for _, sg := range a.Graphs {
				collectNames(sg, names, outer, depth+1)
			}
		}
	}
}

// reindex rebuilds the value index after a pass has rewritten the graph.
func (w *rewriter) reindex() { w.ix = onnx.NewIndex(&w.g) }

// soleUse reports whether value is read by exactly one node of this graph,
// by no subgraph, and is not a graph output.
func (w *rewriter) soleUse(value string) bool {
	return w.ix.SoleUse(value) && !w.outs[value]
}

// newName returns an unused name derived from base.
func (w *rewriter) newName(base string) string {
	name := base
	for i := 1; w.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	w.names[name] = true
	return name
}

// addTensor stores vals (computed in float64) as a new FLOAT initializer and
// returns its name.
func (w *rewriter) addTensor(base string, dims []int64, vals []float64) string {
	f32 := make([]float32, len(vals))
	for i, v := range vals {
		f32[i] = float32(v)
	}
	t := onnx.NewFloat(w.newName(base), dims, f32)
	w.exact[t] = vals
	w.g.Initializers = append(w.g.Initializers, t)
	w.created = append(w.created, t)
	if w.ix != nil {
		w.ix.Initializers[t.Name] = t
	}
	return t.Name
}

// skip records why the pattern at n was left alone. Each pass over the graph
// records again; the latest reason for a node wins.
func (w *rewriter) skip(kind string, n *onnx.Node, format string, args ...any) {
	if _, ok := w.skipped[n]; !ok {
		w.skipOrder = append(w.skipOrder, n)
	}
	w.skipped[n] = Skip{Kind: kind, Node: label(n), Reason: fmt.Sprintf(format, args...)}
}

// skips lists the skipped patterns whose node is still in the final graph,
// in the order they were first met. A later pass may have fused one after
// all; one whose subtree was merged keeps its reason even when the rest no
// longer looks like a block (a conv plus a constant that is not per-channel).
func (w *rewriter) skips() []Skip {
	live := make(map[*onnx.Node]bool, len(w.g.Nodes))
	for _, n := range w.g.Nodes {
		live[n] = true
	}
	var out []Skip
	for _, n := range w.skipOrder {
		if live[n] {
			out = append(out, w.skipped[n])
		}
	}
	return out
}

// label names a node for reports; unnamed nodes are named by their output.
func label(n *onnx.Node) string {
	if n.Name != "" {
		return n.Name
	}
	if len(n.Outputs) > 0 {
		return fmt.Sprintf("%s(->%s)", n.OpType, n.Outputs[0])
	}
	return n.OpType
}

// isOp reports whether n is the default-domain operator op.
func isOp(n *onnx.Node, op string) bool {
	return n != nil && n.OpType == op && (n.Domain == "" || n.Domain == "ai.onnx")
}

// replaceNodes swaps nodes by identity and drops the removed ones, keeping
// the order of everything else.
func (w *rewriter) replaceNodes(repl map[*onnx.Node]*onnx.Node, removed map[*onnx.Node]bool) {
	kept := make([]*onnx.Node, 0, len(w.g.Nodes))
	for _, n := range w.g.Nodes {
		if removed[n] {
			continue
		}
		if r, ok := repl[n]; ok {
			n = r
		}
		kept = append(kept, n)
	}
	w.g.Nodes = kept
}

// cleanUp removes dead nodes and initializers, then the graph inputs and
// value infos that named only what was removed; it lists new initializers
// as graph inputs where the IR version (< 4) requires it.
func (w *rewriter) cleanUp() {
	initBefore := map[string]bool{}
	for _, t := range w.g.Initializers {
		initBefore[t.Name] = true
	}
	w.prune()
	live := map[string]bool{}
	for _, t := range w.g.Initializers {
		live[t.Name] = true
	}
	read := map[string]bool{}
	for _, n := range w.g.Nodes {
		for _, s := range n.Inputs {
			read[s] = true
		}
		for _, s := range n.Outputs {
			live[s] = true
		}
	}
	// An IR < 4 graph lists its initializers as inputs too; one whose
	// initializer is gone would become a required, unfed input.
	w.g.Inputs = slices.DeleteFunc(w.g.Inputs, func(v *onnx.ValueInfo) bool {
		return initBefore[v.Name] && !live[v.Name] && !read[v.Name] && !w.outs[v.Name]
	})
	for _, v := range w.g.Inputs {
		live[v.Name] = true
	}
	w.g.ValueInfo = slices.DeleteFunc(w.g.ValueInfo, func(v *onnx.ValueInfo) bool {
		return !live[v.Name] && !w.outs[v.Name]
	})
	if w.ir < 4 {
		for _, t := range w.created {
			if live[t.Name] {
				dims := make([]onnx.Dim, len(t.Dims))
				for i, d := range t.Dims {
					dims[i] = onnx.Dim{Value: d}
				}
				w.g.Inputs = append(w.g.Inputs, onnx.TensorValue(t.Name, onnx.Float, dims...))
			}
		}
	}
}

// prune drops dead nodes and initializers; onnx.Prune counts reads from
// inside subgraphs as uses, which is what w.outs records.
func (w *rewriter) prune() { onnx.Prune(&w.g) }

// sorted reports whether every node reads only graph inputs, initializers,
// or outputs of nodes before it. Names defined nowhere in the graph (outer
// scope, or simply dangling) do not count against the order.
func (w *rewriter) sorted() bool {
	defined := map[string]bool{"": true}
	for _, v := range w.g.Inputs {
		defined[v.Name] = true
	}
	for _, t := range w.g.Initializers {
		defined[t.Name] = true
	}
	producedLater := map[string]bool{}
	for _, n := range w.g.Nodes {
		for _, o := range n.Outputs {
			producedLater[o] = true
		}
	}
	for _, n := range w.g.Nodes {
		for _, s := range n.Inputs {
			if !defined[s] && producedLater[s] {
				return false
			}
		}
		for _, o := range n.Outputs {
			defined[o] = true
		}
	}
	return true
}

// fusionsInOrder lists the fusions whose Conv nodes are in the final graph,
// in graph order.
func (w *rewriter) fusionsInOrder() []Fusion {
	var out []Fusion
	for _, n := range w.g.Nodes {
		if f, ok := w.fusions[n]; ok {
			out = append(out, *f)
		}
	}
	return out
}
