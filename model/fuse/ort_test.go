package fuse

import (
	"math"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vidpipe/vidpipe/model/infer"
)

// This file runs models through ONNX Runtime directly, below model/infer's
// sessions, so a test can switch graph optimisations off or fetch any output.

// requireORT initialises ONNX Runtime through model/infer, from the
// library scripts/setup.sh installs; a missing library fails the test,
// since the oracle comparison is the point.
func requireORT(t testing.TB) {
	t.Helper()
	if err := infer.Init(infer.LibraryPath()); err != nil {
		t.Fatal(err)
	}
}

// session runs one encoded model. Graph optimisations are off, so ONNX
// Runtime executes the graph as written (it would otherwise fold Conv+BN
// itself, and both sides of a comparison would be its rewrite).
type session struct {
	s       *ort.DynamicAdvancedSession
	in, out string
}

func newSession(t testing.TB, model []byte, in, out string) *session {
	t.Helper()
	requireORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		t.Fatal(err)
	}
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{in}, []string{out}, opts)
	if err != nil {
		t.Fatalf("create onnx runtime session: %v", err)
	}
	t.Cleanup(func() { s.Destroy() })
	return &session{s: s, in: in, out: out}
}

// run feeds one float32 input and returns the float32 output and its shape.
func (s *session) run(t testing.TB, data []float32, shape []int64) ([]float32, []int64) {
	t.Helper()
	in, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	outs := []ort.Value{nil}
	if err := s.s.Run([]ort.Value{in}, outs); err != nil {
		t.Fatalf("run onnx runtime: %v", err)
	}
	defer outs[0].Destroy()
	out, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		t.Fatalf("output %s is %T, want a float32 tensor", s.out, outs[0])
	}
	return slices.Clone(out.GetData()), slices.Clone(out.GetShape())
}

// maxAbsDiff is the largest element-wise difference; lengths must match.
func maxAbsDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("outputs have %d and %d values", len(a), len(b))
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = max(m, d)
	}
	return m
}
