package yolo

import (
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
