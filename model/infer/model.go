package infer

import (
	"fmt"
	"strings"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// maxElements bounds one buffer (a whole batch of input or of one output), so
// that a crafted model declaring a huge image cannot make Open or Input
// allocate gigabytes; it is far above YOLO at 1280x1280 with batch 64.
const maxElements = 1 << 30

// layout is what a Session needs to know about a model's inputs and outputs.
type layout struct {
	input string
	// bindInput is the input's name in the session: input, or the FLOAT
	// input castBoundary put before a FLOAT16 one.
	bindInput  string
	h, w       int
	fixedBatch int  // the input's fixed batch size, or 0 when it is dynamic
	half       bool // a FLOAT16 input
	// u8 marks a UINT8 input [N,H,W,3]: letterboxed RGB bytes, which the
	// model itself transposes, casts and divides by 255 (u8input.Convert).
	u8      bool
	outputs []outputLayout
}

// outputLayout is one float output whose dim 0 is the batch.
type outputLayout struct {
	name    string
	dims    []int64 // dims[0] is overwritten with the batch size
	perItem int     // elements per batch item
	// symbolic marks an output whose dims after the batch are named, not
	// numbers (a dynamic export's "anchors"): Open learns them from one run.
	symbolic bool
	half     bool // a FLOAT16 output
	// bind is the output's name in the session: name, or the FLOAT output
	// castBoundary put after a FLOAT16 one.
	bind string
}

// inputPerItem is the number of input elements per image.
func (l *layout) inputPerItem() int { return 3 * l.h * l.w }

// inspect checks that m is a model this package can run and describes it.
// name is the file name or URI that errors mention.
// imgsz replaces a symbolic input height or width (a dynamic export).
func inspect(m *onnx.Model, name string, imgsz int) (*layout, error) {
	g := m.Graph
	if g == nil {
		return nil, fmt.Errorf("open model %s: %w: %w", name, ErrBadModel, onnx.ErrNoGraph)
	}
	// Models from IR version < 4 list initializers among the inputs too.
	inits := make(map[string]bool, len(g.Initializers))
	for _, t := range g.Initializers {
		inits[t.Name] = true
	}
	var ins []*onnx.ValueInfo
	for _, vi := range g.Inputs {
		if !inits[vi.Name] {
			ins = append(ins, vi)
		}
	}
	if len(ins) != 1 {
		names := make([]string, len(ins))
		for i, vi := range ins {
			names[i] = fmt.Sprintf("%q", vi.Name)
		}
		return nil, fmt.Errorf("open model %s: %w: %d inputs [%s], want one [N,3,H,W] float tensor",
			name, ErrBadInput, len(ins), strings.Join(names, " "))
	}
	l := &layout{input: ins[0].Name, bindInput: ins[0].Name}
	if err := l.checkInput(ins[0], imgsz); err != nil {
		return nil, fmt.Errorf("open model %s: %w: input %q %w", name, ErrBadInput, ins[0].Name, err)
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("open model %s: %w: no outputs", name, ErrBadModel)
	}
	for _, vi := range g.Outputs {
		o, err := l.checkOutput(vi)
		if err != nil {
			return nil, fmt.Errorf("open model %s: %w: output %q %w", name, ErrBadModel, vi.Name, err)
		}
		l.outputs = append(l.outputs, o)
	}
	return l, nil
}

// tensorType returns vi's tensor type, or an error saying what it lacks.
// FLOAT16 tensors are converted at the session boundary: callers see float32.
func tensorType(vi *onnx.ValueInfo) (*onnx.TensorType, error) {
	if vi.Type == nil || vi.Type.Tensor == nil {
		return nil, fmt.Errorf("is not a tensor")
	}
	tt := vi.Type.Tensor
	if tt.ElemType != onnx.Float && tt.ElemType != onnx.Float16 {
		return nil, fmt.Errorf("is %s, want FLOAT or FLOAT16", tt.ElemType)
	}
	if !tt.HasShape {
		return nil, fmt.Errorf("has no shape")
	}
	return tt, nil
}

func (l *layout) checkInput(vi *onnx.ValueInfo, imgsz int) error {
	if vi.Type != nil && vi.Type.Tensor != nil && vi.Type.Tensor.ElemType == onnx.Uint8 {
		return l.checkBytes(vi.Type.Tensor, imgsz)
	}
	tt, err := tensorType(vi)
	if err != nil {
		return err
	}
	l.half = tt.ElemType == onnx.Float16
	if len(tt.Shape) != 4 {
		return fmt.Errorf("has rank %d %s, want 4 [N,3,H,W]", len(tt.Shape), shapeString(tt.Shape))
	}
	n, c, h, w := tt.Shape[0], tt.Shape[1], tt.Shape[2], tt.Shape[3]
	if c.Value != 3 {
		return fmt.Errorf("has shape %s, want 3 channels [N,3,H,W]", shapeString(tt.Shape))
	}
	return l.checkSize(tt.Shape, n, h, w, imgsz)
}

// checkBytes checks a UINT8 input, which must be [N,H,W,3].
func (l *layout) checkBytes(tt *onnx.TensorType, imgsz int) error {
	if !tt.HasShape {
		return fmt.Errorf("has no shape")
	}
	if len(tt.Shape) != 4 || tt.Shape[3].Value != 3 {
		return fmt.Errorf("is UINT8 of shape %s, want [N,H,W,3] (letterboxed RGB bytes)", shapeString(tt.Shape))
	}
	l.u8 = true
	return l.checkSize(tt.Shape, tt.Shape[0], tt.Shape[1], tt.Shape[2], imgsz)
}

// checkSize sets the input's batch, height and width; imgsz stands for a
// symbolic height or width.
func (l *layout) checkSize(shape []onnx.Dim, n, h, w onnx.Dim, imgsz int) error {
	if h.Value <= 0 || w.Value <= 0 {
		if imgsz <= 0 {
			return fmt.Errorf("has shape %s with a symbolic height or width: give an input size (--imgsz) to run it at", shapeString(shape))
		}
		// A dynamic export runs at the size asked for.
		if h.Value <= 0 {
			h.Value = int64(imgsz)
		}
		if w.Value <= 0 {
			w.Value = int64(imgsz)
		}
	}
	if n.Value < 0 {
		return fmt.Errorf("has shape %s, want a positive or symbolic batch", shapeString(shape))
	}
	if h.Value*w.Value > maxElements/3 {
		return fmt.Errorf("has shape %s, over %d elements per image", shapeString(shape), maxElements)
	}
	l.h, l.w, l.fixedBatch = int(h.Value), int(w.Value), int(n.Value)
	return nil
}

func (l *layout) checkOutput(vi *onnx.ValueInfo) (outputLayout, error) {
	tt, err := tensorType(vi)
	if err != nil {
		return outputLayout{}, err
	}
	if len(tt.Shape) == 0 {
		return outputLayout{}, fmt.Errorf("is a scalar, want a batch dimension first")
	}
	// Dim 0 is the batch: symbolic, or the input's fixed batch size.
	if d := tt.Shape[0]; d.Value != 0 && int(d.Value) != l.fixedBatch {
		return outputLayout{}, fmt.Errorf("has shape %s, want the input's batch dimension first", shapeString(tt.Shape))
	}
	o := outputLayout{name: vi.Name, bind: vi.Name, dims: make([]int64, len(tt.Shape)), perItem: 1, half: tt.ElemType == onnx.Float16}
	for i, d := range tt.Shape[1:] {
		if d.Value <= 0 {
			// With a static input size the model still fixes these; a probe
			// run reads them.
			o.symbolic, o.perItem = true, 0
			return o, nil
		}
		if int64(o.perItem) > maxElements/d.Value {
			return outputLayout{}, fmt.Errorf("has shape %s, over %d elements per item", shapeString(tt.Shape), maxElements)
		}
		o.perItem *= int(d.Value)
		o.dims[i+1] = d.Value
	}
	return o, nil
}

// shapeString renders a shape as [N,3,640,640], with "?" for unknown dims.
func shapeString(shape []onnx.Dim) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		switch {
		case d.Param != "":
			parts[i] = d.Param
		case d.Value == 0:
			parts[i] = "?"
		default:
			parts[i] = fmt.Sprint(d.Value)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// castBoundary makes a model with a FLOAT16 input or outputs take and give
// FLOAT: a Cast after the input and one after each such output, so that
// callers see float32 while the model computes in float16. ONNX Runtime
// converts vectorised, on the device the model runs on (0.7 ns a value on
// this CPU, BenchmarkFloat16Boundary); converting in Go took 5 ns a value,
// 18 ms per 640x640 image and its output0. The FLOAT16 values keep their
// names, so nothing else in the graph changes; the new input and outputs
// get a suffix. It reports whether it changed m.
func castBoundary(m *onnx.Model, l *layout) bool {
	const suffix = "__vidpipe_float32"
	g := m.Graph
	changed := false
	if l.half {
		for i, vi := range g.Inputs {
			if vi.Name == l.input {
				l.bindInput = l.input + suffix
				g.Inputs[i] = onnx.TensorValue(l.bindInput, onnx.Float, vi.Type.Tensor.Shape...)
			}
		}
		cast := &onnx.Node{Name: l.bindInput, OpType: "Cast", Inputs: []string{l.bindInput}, Outputs: []string{l.input},
			Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float16))}}
		g.Nodes = append([]*onnx.Node{cast}, g.Nodes...)
		changed = true
	}
	for i := range l.outputs {
		o := &l.outputs[i]
		if !o.half {
			continue
		}
		o.bind = o.name + suffix
		for j, vi := range g.Outputs {
			if vi.Name == o.name {
				g.Outputs[j] = onnx.TensorValue(o.bind, onnx.Float, vi.Type.Tensor.Shape...)
			}
		}
		g.Nodes = append(g.Nodes, &onnx.Node{Name: o.bind, OpType: "Cast", Inputs: []string{o.name}, Outputs: []string{o.bind},
			Attrs: []*onnx.Attribute{onnx.Int("to", int64(onnx.Float))}})
		changed = true
	}
	return changed
}
