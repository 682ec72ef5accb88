package infer

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// TestOpenErrors feeds OpenFile models it must refuse. Each error must name
// the file and wrap the right sentinel; none may panic.
func TestOpenErrors(t *testing.T) {
	good := newTestModel(dynamicBatch, 8, 8, 4)
	valid := good.bytes()
	// edit returns the test model's bytes after fn changed its graph.
	edit := func(fn func(g *onnx.Graph)) []byte {
		m := good.model()
		fn(m.Graph)
		return onnx.Encode(m)
	}
	input := func(elem onnx.DataType, dims ...onnx.Dim) func(g *onnx.Graph) {
		return func(g *onnx.Graph) { g.Inputs[0] = onnx.TensorValue("images", elem, dims...) }
	}
	n, c3, d8 := dynamicBatch, onnx.Dim{Value: 3}, onnx.Dim{Value: 8}

	tests := []struct {
		name     string
		file     string // file name; empty: a path that does not exist
		bytes    []byte
		opts     Options
		want     error
		contains string
	}{
		{name: "missing file", want: fs.ErrNotExist},
		{name: "truncated", file: "half.onnx", bytes: valid[:len(valid)/2], want: ErrBadModel, contains: "malformed"},
		{name: "not onnx", file: "notes.onnx", bytes: []byte("this is not an onnx model\n"), want: ErrBadModel},
		{name: "png", file: "image.onnx", bytes: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), want: ErrBadModel},
		{name: "empty", file: "empty.onnx", bytes: nil, want: ErrBadModel, contains: "no graph"},
		{name: "no graph", file: "nograph.onnx", bytes: onnx.Encode(&onnx.Model{IRVersion: 8}), want: onnx.ErrNoGraph},
		{name: "rank 3", file: "rank3.onnx", bytes: edit(input(onnx.Float, n, d8, d8)),
			want: ErrBadInput, contains: `input "images" has rank 3`},
		{name: "int64 input", file: "int64.onnx", bytes: edit(input(onnx.Int64, n, c3, d8, d8)),
			want: ErrBadInput, contains: `input "images" is INT64, want FLOAT or FLOAT16`},
		{name: "one channel", file: "gray.onnx", bytes: edit(input(onnx.Float, n, onnx.Dim{Value: 1}, d8, d8)),
			want: ErrBadInput, contains: "3 channels"},
		{name: "dynamic height", file: "dynh.onnx", bytes: edit(input(onnx.Float, n, c3, onnx.Dim{Param: "h"}, d8)),
			want: ErrBadInput, contains: "symbolic height or width"},
		{name: "no input shape", file: "noshape.onnx", bytes: edit(func(g *onnx.Graph) { g.Inputs[0].Type.Tensor.HasShape, g.Inputs[0].Type.Tensor.Shape = false, nil }),
			want: ErrBadInput, contains: "no shape"},
		{name: "two inputs", file: "two.onnx", bytes: edit(func(g *onnx.Graph) {
			g.Inputs = append(g.Inputs, onnx.TensorValue("extra", onnx.Float, n, c3, d8, d8))
		}), want: ErrBadInput, contains: `2 inputs ["images" "extra"]`},
		{name: "output without batch", file: "nobatch.onnx", bytes: edit(func(g *onnx.Graph) {
			g.Outputs[1] = onnx.TensorValue("output1", onnx.Float, onnx.Dim{Value: 1}, c3, onnx.Dim{Value: 1}, onnx.Dim{Value: 1})
		}), want: ErrBadModel, contains: `output "output1"`},
		{name: "symbolic output of the wrong rank", file: "dynout.onnx", bytes: edit(func(g *onnx.Graph) {
			g.Outputs[0] = onnx.TensorValue("output0", onnx.Float, n, onnx.Dim{Param: "boxes"})
		}), want: ErrBadModel, contains: "declared 2"},
		{name: "int64 output", file: "intout.onnx", bytes: edit(func(g *onnx.Graph) {
			g.Outputs[1].Type.Tensor.ElemType = onnx.Int64
		}), want: ErrBadModel, contains: `output "output1" is INT64`},
		{name: "huge input", file: "huge.onnx", bytes: edit(input(onnx.Float, n, c3, onnx.Dim{Value: 1 << 20}, onnx.Dim{Value: 1 << 20})),
			want: ErrBadInput, contains: "elements per image"},
		// Passes our checks, but ONNX Runtime knows no such operator.
		{name: "unknown op", file: "unknownop.onnx", bytes: edit(func(g *onnx.Graph) { g.Nodes[1].OpType = "NoSuchOp" }),
			want: ErrBadModel, contains: "NoSuchOp"},
		{name: "bad device", file: "dev.onnx", bytes: valid, opts: Options{Device: "gpu"}, want: ErrBadDevice},
		{name: "negative threads", file: "threads.onnx", bytes: valid, opts: Options{Threads: -1}, want: ErrBadOptions},
		{name: "negative batch", file: "batch.onnx", bytes: valid, opts: Options{MaxBatch: -2}, want: ErrBadOptions},
		{name: "batch too big", file: "bigbatch.onnx", bytes: valid, opts: Options{MaxBatch: 1 << 25}, want: ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.onnx")
			if tt.file != "" {
				path = writeModel(t, tt.file, tt.bytes)
			}
			s, err := OpenFile(context.Background(), path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("OpenFile succeeded, want %v", tt.want)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.want) {
				t.Errorf("error does not wrap %v", tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file %s", path)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error does not say %q", tt.contains)
			}
		})
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, newTestModel(dynamicBatch, 8, 8, 4).bytes(), "cancelled.onnx", Options{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled.onnx") {
		t.Errorf("Open with a cancelled context = %v, want context.Canceled naming the model", err)
	}
}

// TestOpenInitializerInputs accepts IR < 4 models, which list initializers
// among the graph inputs.
func TestOpenInitializerInputs(t *testing.T) {
	m := newTestModel(dynamicBatch, 8, 8, 4)
	om := m.model()
	om.IRVersion = 3
	om.OpsetImports[0].Version = 9
	for _, init := range om.Graph.Initializers {
		om.Graph.Inputs = append(om.Graph.Inputs, onnx.TensorValue(init.Name, onnx.Float, dimsOf(init.Dims)...))
	}
	s := openTest(t, onnx.Encode(om), "ir3.onnx", Options{Threads: 1})
	runAndCheck(t, s, m, 1, lcg(7))
}

func dimsOf(dims []int64) []onnx.Dim {
	d := make([]onnx.Dim, len(dims))
	for i, v := range dims {
		d[i] = onnx.Dim{Value: v}
	}
	return d
}
