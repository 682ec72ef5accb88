package layout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
)

// OpenFile reads the model at path and opens it as Open does.
func OpenFile(ctx context.Context, path string, opts infer.Options) (*infer.Session, *Layout, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The path error would repeat the path; keep only its cause.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("open model %s: %w", path, err)
	}
	return Open(ctx, b, path, opts)
}

// Open opens model (an ONNX file's bytes, named name in errors) as
// infer.Open does and decides its layout from the shapes the session runs
// at. A model whose layout is refused is closed again and its error says
// what was found and what is accepted.
func Open(ctx context.Context, model []byte, name string, opts infer.Options) (*infer.Session, *Layout, error) {
	m, err := onnx.Decode(model)
	if err != nil {
		return nil, nil, fmt.Errorf("open model %s: %w: %w", name, infer.ErrBadModel, err)
	}
	// Refuse what the declared outputs already rule out before ONNX
	// Runtime spends a session on it.
	if h, w, dims, ok := declared(m, opts.ImgSize); ok {
		if _, err := Decide(m, name, h, w, dims); err != nil {
			return nil, nil, err
		}
	} else if err := checkTypes(m, name, opts.ImgSize); err != nil {
		return nil, nil, err
	}
	s, err := infer.Open(ctx, model, name, opts)
	if err != nil {
		return nil, nil, err
	}
	h, w := s.InputSize()
	l, err := Decide(m, name, h, w, s.OutputDims())
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, l, nil
}

// Check decides the layout of model without keeping a session: from the
// declared shapes when the model states them, otherwise (a dynamic export)
// from a probe run on a one-thread CPU session at opts.ImgSize, closed
// again. It is the check of a process that loads a model without running
// it, and of one that must refuse a model before it starts any work.
func Check(ctx context.Context, model []byte, name string, opts infer.Options) (*Layout, error) {
	m, err := onnx.Decode(model)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w: %w", name, infer.ErrBadModel, err)
	}
	if h, w, dims, ok := declared(m, opts.ImgSize); ok {
		return Decide(m, name, h, w, dims)
	}
	probe := infer.Options{Threads: 1, MaxBatch: 1, LibraryPath: opts.LibraryPath, ImgSize: opts.ImgSize}
	s, l, err := Open(ctx, model, name, probe)
	if err != nil {
		return nil, err
	}
	s.Close()
	return l, nil
}

// checkTypes refuses, from the declared outputs, element types no layout
// has (an INT64 output, say), for a model whose shapes need a session.
func checkTypes(m *onnx.Model, name string, imgsz int) error {
	if m.Graph == nil {
		return nil // infer.Open says so
	}
	for _, vi := range m.Graph.Outputs {
		if t := elemType(vi); t != onnx.Float && t != onnx.Float16 {
			dims := make([][]int64, len(m.Graph.Outputs))
			for i, vi := range m.Graph.Outputs {
				dims[i] = declaredDims(vi)
			}
			h, w, _ := inputSize(m, imgsz)
			_, err := Decide(m, name, h, w, dims)
			return err
		}
	}
	return nil
}

// declared returns the input size and output dims the model states, with
// imgsz for a symbolic height or width; ok is false when any output dim is
// symbolic, the input is not [N,3,H,W], or something else infer.Open must
// judge.
func declared(m *onnx.Model, imgsz int) (h, w int, dims [][]int64, ok bool) {
	if m.Graph == nil {
		return 0, 0, nil, false
	}
	h, w, ok = inputSize(m, imgsz)
	if !ok {
		return 0, 0, nil, false
	}
	dims = make([][]int64, len(m.Graph.Outputs))
	for i, vi := range m.Graph.Outputs {
		d := declaredDims(vi)
		if d == nil {
			return 0, 0, nil, false
		}
		for _, v := range d {
			if v <= 0 {
				return 0, 0, nil, false
			}
		}
		dims[i] = d
	}
	return h, w, dims, true
}

// declaredDims are an output's declared dims after the batch (0 where
// symbolic), or nil when it has no shape.
func declaredDims(vi *onnx.ValueInfo) []int64 {
	if vi.Type == nil || vi.Type.Tensor == nil || !vi.Type.Tensor.HasShape || len(vi.Type.Tensor.Shape) == 0 {
		return nil
	}
	shape := vi.Type.Tensor.Shape[1:]
	d := make([]int64, len(shape))
	for i, s := range shape {
		d[i] = max(s.Value, 0)
	}
	return d
}

// imageInput is the model's one input that is not an initializer, or nil.
func imageInput(m *onnx.Model) *onnx.ValueInfo {
	inits := make(map[string]bool, len(m.Graph.Initializers))
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	var in *onnx.ValueInfo
	for _, vi := range m.Graph.Inputs {
		if inits[vi.Name] {
			continue
		}
		if in != nil {
			return nil
		}
		in = vi
	}
	return in
}

// inputSize is the image input's height and width, imgsz where symbolic:
// [N,3,H,W], or [N,H,W,3] for a UINT8 input.
func inputSize(m *onnx.Model, imgsz int) (h, w int, ok bool) {
	in := imageInput(m)
	if in == nil || declaredDims(in) == nil || len(in.Type.Tensor.Shape) != 4 {
		return 0, 0, false
	}
	dim := func(d onnx.Dim) int {
		if d.Value > 0 {
			return int(d.Value)
		}
		return imgsz
	}
	s := in.Type.Tensor.Shape
	if elemType(in) == onnx.Uint8 {
		h, w = dim(s[1]), dim(s[2])
	} else {
		h, w = dim(s[2]), dim(s[3])
	}
	return h, w, h > 0 && w > 0
}
