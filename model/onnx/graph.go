package onnx

import "slices"

// Index maps value names to the nodes that produce and consume them, and to
// initializers. Build it once per rewrite pass; it does not track later edits.
type Index struct {
	Producer     map[string]*Node
	Consumers    map[string][]*Node
	Initializers map[string]*Tensor
	GraphOutputs map[string]bool
}

// NewIndex indexes g.
func NewIndex(g *Graph) *Index {
	ix := &Index{
		Producer:     make(map[string]*Node),
		Consumers:    make(map[string][]*Node),
		Initializers: make(map[string]*Tensor, len(g.Initializers)),
		GraphOutputs: make(map[string]bool, len(g.Outputs)),
	}
	for _, t := range g.Initializers {
		ix.Initializers[t.Name] = t
	}
	for _, o := range g.Outputs {
		ix.GraphOutputs[o.Name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				ix.Producer[o] = n
			}
		}
		for _, in := range n.Inputs {
			if in != "" {
				ix.Consumers[in] = append(ix.Consumers[in], n)
			}
		}
	}
	return ix
}

// SoleUse reports whether value is read by exactly one node and is not a graph output.
func (ix *Index) SoleUse(value string) bool {
	return len(ix.Consumers[value]) == 1 && !ix.GraphOutputs[value]
}

// Prune drops nodes whose outputs nobody reads and initializers no node
// reads, repeating until nothing changes. Graph outputs keep their
// producers, and a value read inside a subgraph (an If or Loop body may
// name values of the enclosing graph) counts as read. It returns how many
// nodes it removed.
func Prune(g *Graph) int {
	removed := 0
	for {
		used := make(map[string]bool)
		for _, o := range g.Outputs {
			used[o.Name] = true
		}
		markReads(g, used, 0)
		before := len(g.Nodes)
		g.Nodes = slices.DeleteFunc(g.Nodes, func(n *Node) bool {
			return !slices.ContainsFunc(n.Outputs, func(o string) bool { return used[o] })
		})
		removed += before - len(g.Nodes)
		if len(g.Nodes) == before {
			g.Initializers = slices.DeleteFunc(g.Initializers, func(t *Tensor) bool { return !used[t.Name] })
			return removed
		}
	}
}

// markReads records every value the nodes of g, and of its subgraphs, read.
func markReads(g *Graph, used map[string]bool, depth int) {
	if g == nil || depth > MaxDepth {
		return
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
		for _, a := range n.Attrs {
			markReads(a.G, used, depth+1)
			for _, sg := range a.Graphs {
				markReads(sg, used, depth+1)
			}
		}
	}
}

// Params counts trainable parameters the way PyTorch does for a conv net:
// Conv weights and biases plus BatchNormalization scale and bias (running
// statistics are buffers, not parameters). Decode constants are not counted.
func Params(g *Graph) int64 {
	ix := NewIndex(g)
	var n int64
	count := func(name string) {
		if t, ok := ix.Initializers[name]; ok {
			n += t.NumElements()
		}
	}
	for _, node := range g.Nodes {
		switch node.OpType {
		case "Conv", "ConvTranspose", "Gemm", "MatMul":
			for i := 1; i < len(node.Inputs); i++ {
				count(node.Inputs[i])
			}
		case "BatchNormalization":
			for i := 1; i < min(3, len(node.Inputs)); i++ {
				count(node.Inputs[i])
			}
		}
	}
	return n
}
