package fuse

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// This file is a test-only bridge to ONNX Runtime, kept apart from package
// model/infer so the fuser's tests do not depend on it.

var (
	ortOnce sync.Once
	ortErr  error
)

// ortLibrary is $VIDPIPE_ORT_LIB, or the copy scripts/setup.sh installs.
func ortLibrary() string {
	if p := os.Getenv("VIDPIPE_ORT_LIB"); p != "" {
		return p
	}
	cache := os.Getenv("VIDPIPE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "vidpipe")
	}
	return filepath.Join(cache, "onnxruntime-1.24.1", "libonnxruntime.so.1")
}

// requireORT initialises the ONNX Runtime environment once; a missing
// library fails the test, since the oracle comparison is the point.
func requireORT(t testing.TB) {
	t.Helper()
	ortOnce.Do(func() {
		lib := ortLibrary()
		if _, err := os.Stat(lib); err != nil {
			ortErr = fmt.Errorf("onnx runtime library: %w (run scripts/setup.sh)", err)
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			ortErr = fmt.Errorf("initialise onnx runtime from %s: %w (run scripts/setup.sh)", lib, err)
		}
	})
	if ortErr != nil {
		t.Fatal(ortErr)
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
