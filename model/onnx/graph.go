package onnx

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
// reads, repeating until nothing changes. Graph outputs keep their producers.
// It returns how many nodes it removed.
func Prune(g *Graph) int {
	removed := 0
	for {
		used := make(map[string]bool)
		for _, o := range g.Outputs {
			used[o.Name] = true
		}
		for _, n := range g.Nodes {
			for _, in := range n.Inputs {
				used[in] = true
			}
		}
		kept := g.Nodes[:0]
		for _, n := range g.Nodes {
			live := false
			for _, o := range n.Outputs {
				if used[o] {
					live = true
					break
				}
			}
			if live {
				kept = append(kept, n)
			}
		}
		dropped := len(g.Nodes) - len(kept)
		for i := len(kept); i < len(g.Nodes); i++ {
			g.Nodes[i] = nil
		}
		g.Nodes = kept
		removed += dropped
		if dropped == 0 {
			inits := g.Initializers[:0]
			for _, t := range g.Initializers {
				if used[t.Name] {
					inits = append(inits, t)
				}
			}
			g.Initializers = inits
			return removed
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
			for _, in := range node.Inputs[1:] {
				count(in)
			}
		case "BatchNormalization":
			for _, in := range node.Inputs[1:min(3, len(node.Inputs))] {
				count(in)
			}
		}
	}
	return n
}
