package fuse

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// readBin reads a float32 little-endian file written by gen_fixtures.py.
func readBin(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a float32 array", path, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// randomInput returns n normal values scaled by 2, so activations leave
// the linear range of SiLU.
func randomInput(r *rand.Rand, n int64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * 2)
	}
	return out
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// countOps counts nodes by op type.
func countOps(g *onnx.Graph) map[string]int {
	c := map[string]int{}
	for _, n := range g.Nodes {
		c[n.OpType]++
	}
	return c
}

// equivalence runs the original and the fused model on the given input and
// on eight random ones and returns the largest difference seen and the
// largest magnitude of the original's outputs.
func equivalence(t *testing.T, orig, fused []byte, in, out string, shape []int64, first []float32) (diff, scale float64) {
	t.Helper()
	so := newSession(t, orig, in, out)
	sf := newSession(t, fused, in, out)
	r := rand.New(rand.NewPCG(7, uint64(len(fused))))
	for i := range 9 {
		x := first
		if i > 0 || x == nil {
			x = randomInput(r, numel(shape))
		}
		want, wshape := so.run(t, x, shape)
		got, gshape := sf.run(t, x, shape)
		if !reflect.DeepEqual(wshape, gshape) {
			t.Fatalf("input %d: fused output shape %v, original %v", i, gshape, wshape)
		}
		diff = max(diff, maxAbsDiff(t, want, got))
		for _, v := range want {
			scale = max(scale, math.Abs(float64(v)))
		}
	}
	return diff, scale
}

// checkRewrite checks what Model promises to keep: graph inputs and outputs,
// model-level fields, topological order, and every node it did not fuse,
// unchanged. pristine is a second decode of the original bytes.
func checkRewrite(t *testing.T, pristine, fused *onnx.Model, rep Report) {
	t.Helper()
	if !reflect.DeepEqual(pristine.Graph.Outputs, fused.Graph.Outputs) {
		t.Errorf("graph outputs changed")
	}
	if pristine.IRVersion >= 4 && !reflect.DeepEqual(pristine.Graph.Inputs, fused.Graph.Inputs) {
		t.Errorf("graph inputs changed")
	}
	if !reflect.DeepEqual(pristine.OpsetImports, fused.OpsetImports) || !reflect.DeepEqual(pristine.Metadata, fused.Metadata) ||
		pristine.IRVersion != fused.IRVersion || pristine.ProducerName != fused.ProducerName || pristine.Graph.Name != fused.Graph.Name {
		t.Errorf("model fields changed")
	}
	w := &rewriter{g: *fused.Graph}
	if !w.sorted() {
		t.Errorf("fused graph is not topologically sorted")
	}
	byOut := map[string]*onnx.Node{}
	for _, n := range pristine.Graph.Nodes {
		if len(n.Outputs) > 0 {
			byOut[n.Outputs[0]] = n
		}
	}
	inits := map[string]bool{}
	for _, t := range pristine.Graph.Initializers {
		inits[t.Name] = true
	}
	newConvs := 0
	for _, n := range fused.Graph.Nodes {
		if n.OpType == "Conv" && len(n.Inputs) > 1 && !inits[n.Inputs[1]] {
			newConvs++
			continue
		}
		if o, ok := byOut[n.Outputs[0]]; !ok || !reflect.DeepEqual(o, n) {
			t.Errorf("node %s (%s) was changed", n.Name, n.OpType)
		}
	}
	if newConvs != len(rep.Fusions) {
		t.Errorf("%d rewritten convs, report lists %d fusions", newConvs, len(rep.Fusions))
	}
	if rep.NodesAfter != len(fused.Graph.Nodes) || rep.NodesBefore != len(pristine.Graph.Nodes) {
		t.Errorf("report nodes %d -> %d, graph %d -> %d", rep.NodesBefore, rep.NodesAfter, len(pristine.Graph.Nodes), len(fused.Graph.Nodes))
	}
}

// roundTrip encodes m, decodes it again and checks the bytes are stable, then
// has the onnx package's own checker (with strict shape inference) accept it.
func roundTrip(t *testing.T, m *onnx.Model) []byte {
	t.Helper()
	b := onnx.Encode(m)
	m2, err := onnx.Decode(b)
	if err != nil {
		t.Fatalf("decode fused model: %v", err)
	}
	if !bytes.Equal(onnx.Encode(m2), b) {
		t.Errorf("fused model does not survive an encode/decode round trip")
	}
	path := filepath.Join(t.TempDir(), "fused.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	onnxChecker(t, path)
	return b
}

var pythonOnnx = sync.OnceValue(func() error {
	return exec.Command("/usr/bin/python3", "-c", "import onnx").Run()
})

// onnxChecker runs onnx.checker.check_model with full_check on path.
func onnxChecker(t *testing.T, path string) {
	t.Helper()
	if err := pythonOnnx(); err != nil {
		t.Fatalf("/usr/bin/python3 with the onnx package is needed (run scripts/setup.sh --test): %v", err)
	}
	cmd := exec.Command("/usr/bin/python3", "-c",
		"import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("onnx checker rejects %s: %v\n%s", path, err, strings.TrimSpace(string(out)))
	}
}
