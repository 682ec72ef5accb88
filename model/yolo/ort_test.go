package yolo

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// This file is a test-only bridge to ONNX Runtime, kept apart from
// package model/infer so the builder's tests do not depend on it.

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

// ortOutput is one fetched output.
type ortOutput struct {
	data  []float32
	shape []int64
}

// runORT runs an encoded model on one float input "images" and returns the
// named outputs ("output0" when none are named).
func runORT(t testing.TB, model []byte, input []float32, shape []int64, outputs ...string) []ortOutput {
	t.Helper()
	requireORT(t)
	if len(outputs) == 0 {
		outputs = []string{"output0"}
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(2); err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{"images"}, outputs, opts)
	if err != nil {
		t.Fatalf("create onnx runtime session: %v", err)
	}
	defer sess.Destroy()
	in, err := ort.NewTensor(ort.NewShape(shape...), input)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	vals := make([]ort.Value, len(outputs))
	if err := sess.Run([]ort.Value{in}, vals); err != nil {
		t.Fatalf("run onnx runtime: %v", err)
	}
	res := make([]ortOutput, len(vals))
	for i, v := range vals {
		defer v.Destroy()
		out, ok := v.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output %s is %T, want a float32 tensor", outputs[i], v)
		}
		res[i] = ortOutput{slices.Clone(out.GetData()), slices.Clone(out.GetShape())}
	}
	return res
}
