package infer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

const tol = 1e-4

// runAndCheck fills the input for batch with fresh values, runs, and checks
// both outputs against the Go reference.
func runAndCheck(t *testing.T, s *Session, m *testModel, batch int, seed lcg) {
	t.Helper()
	in, err := s.Input(batch)
	if err != nil {
		t.Fatalf("Input(%d): %v", batch, err)
	}
	if want := batch * 3 * m.h * m.w; len(in) != want {
		t.Fatalf("Input(%d) has %d floats, want %d", batch, len(in), want)
	}
	seed.fill(in)
	images := slices.Clone(in)
	outs, err := s.Run(context.Background(), batch)
	if err != nil {
		t.Fatalf("Run(%d): %v", batch, err)
	}
	want0, want1 := m.want(images, batch)
	if len(outs) != 2 || outs[0].Name != "output0" || outs[1].Name != "output1" {
		t.Fatalf("Run(%d) outputs %v, want output0, output1", batch, outs)
	}
	if got, want := outs[0].Shape, []int64{int64(batch), int64(m.cout), int64(m.h), int64(m.w)}; !slices.Equal(got, want) {
		t.Errorf("output0 shape %v, want %v", got, want)
	}
	if got, want := outs[1].Shape, []int64{int64(batch), 3, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("output1 shape %v, want %v", got, want)
	}
	assertClose(t, fmt.Sprintf("batch %d output0", batch), outs[0].Data, want0, tol)
	assertClose(t, fmt.Sprintf("batch %d output1", batch), outs[1].Data, want1, tol)
}

func TestRunDynamicBatch(t *testing.T) {
	m := newTestModel(dynamicBatch, 8, 8, 4)
	s := openTest(t, m.bytes(), "dynamic.onnx", Options{Threads: 1, MaxBatch: 4})
	if h, w := s.InputSize(); h != 8 || w != 8 {
		t.Errorf("InputSize = %d, %d, want 8, 8", h, w)
	}
	if got := s.OutputNames(); !slices.Equal(got, []string{"output0", "output1"}) {
		t.Errorf("OutputNames = %v", got)
	}
	if s.MaxBatch() != 4 || s.InputName() != "images" {
		t.Errorf("MaxBatch = %d, InputName = %q, want 4, images", s.MaxBatch(), s.InputName())
	}
	// Sizes in a mixed order: each has its own binding over shared buffers,
	// so going back to a size must not see another size's shapes.
	for i, batch := range []int{1, 4, 3, 1, 4} {
		t.Run(fmt.Sprintf("batch=%d/%d", batch, i), func(t *testing.T) {
			runAndCheck(t, s, m, batch, lcg(100+i))
		})
	}
}

func TestRunFixedBatch(t *testing.T) {
	m := newTestModel(onnx.Dim{Value: 4}, 8, 8, 4)
	tests := []struct {
		maxBatch, wantMax int
		batches           []int
	}{
		{maxBatch: 0, wantMax: 4, batches: []int{4, 1, 2, 4}}, // default: the model's batch
		{maxBatch: 8, wantMax: 4, batches: []int{4}},          // capped
		{maxBatch: 2, wantMax: 2, batches: []int{2, 1}},       // smaller: padded
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max=%d", tt.maxBatch), func(t *testing.T) {
			s := openTest(t, m.bytes(), "fixed.onnx", Options{Threads: 1, MaxBatch: tt.maxBatch})
			if s.MaxBatch() != tt.wantMax {
				t.Fatalf("MaxBatch = %d, want %d", s.MaxBatch(), tt.wantMax)
			}
			for i, batch := range tt.batches {
				runAndCheck(t, s, m, batch, lcg(200+i))
			}
			if _, err := s.Run(context.Background(), tt.wantMax+1); !errors.Is(err, ErrBatch) {
				t.Errorf("Run(%d) = %v, want ErrBatch", tt.wantMax+1, err)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	m := newTestModel(dynamicBatch, 8, 8, 4)
	s, err := Open(context.Background(), m.bytes(), "errors.onnx", Options{Threads: 1, MaxBatch: 2})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, batch := range []int{0, -1, 3} {
		if _, err := s.Input(batch); !errors.Is(err, ErrBatch) {
			t.Errorf("Input(%d) = %v, want ErrBatch", batch, err)
		}
		if _, err := s.Run(context.Background(), batch); !errors.Is(err, ErrBatch) {
			t.Errorf("Run(%d) = %v, want ErrBatch", batch, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Run(context.Background(), 1); err != nil {
		t.Errorf("Run after a cancelled Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Input(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Input after Close = %v, want ErrClosed", err)
	}
}

// TestRunAllocs shows that a steady-state batch (fill the input, run, read
// the outputs) makes no Go allocations, with a cancellable context as a
// worker would pass.
func TestRunAllocs(t *testing.T) {
	m := newTestModel(dynamicBatch, 8, 8, 4)
	s := openTest(t, m.bytes(), "allocs.onnx", Options{Threads: 1, MaxBatch: 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, batch := range []int{1, 4} {
		var sum float32
		allocs := testing.AllocsPerRun(50, func() {
			in, err := s.Input(batch)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				in[i] = float32(i%7) * 0.1
			}
			outs, err := s.Run(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			sum += outs[0].Data[0] + outs[1].Data[0]
		})
		t.Logf("batch %d: %v allocations per Input+Run", batch, allocs)
		if allocs != 0 {
			t.Errorf("batch %d: %v allocations per Input+Run, want 0", batch, allocs)
		}
	}
}

// TestRunSymbolicOutputDims: a dynamic export names its output dims
// ("anchors") instead of writing numbers; with a static input size a probe
// run learns them and everything else works as for a static model.
func TestRunSymbolicOutputDims(t *testing.T) {
	m := newTestModel(dynamicBatch, 8, 8, 4)
	model := m.model()
	model.Graph.Outputs[0] = onnx.TensorValue("output0", onnx.Float, dynamicBatch, onnx.Dim{Param: "c"}, onnx.Dim{Param: "h"}, onnx.Dim{Param: "w"})
	s := openTest(t, onnx.Encode(model), "symbolic.onnx", Options{Threads: 1, MaxBatch: 3})
	for i, batch := range []int{3, 1} {
		runAndCheck(t, s, m, batch, lcg(40+i))
	}
}
