// Package layout tells, when a model loads, which detection output layout an
// ONNX model has (YOLOv5 decoded, YOLOv5 raw heads, YOLOv8/YOLO11) and
// decodes each image's outputs accordingly. A model read with the wrong
// layout gives garbage without an error, so anything it cannot tell apart
// is refused at load, before a job starts.
package layout

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/onnx"
)

// Sentinel errors; every refusal wraps one of them.
var (
	// ErrLayout means the model's outputs are not a layout vidpipe reads,
	// or fit more than one.
	ErrLayout = errors.New("unsupported output layout")
	// ErrClasses means the class count of the outputs disagrees with the
	// model's names metadata.
	ErrClasses = errors.New("class count does not match the names metadata")
	// ErrInput means an input vidpipe cannot feed: not square.
	ErrInput = errors.New("unsupported model input")
	// ErrMetadata means a stride, anchors or vidpipe_candidates metadata
	// entry that cannot be read.
	ErrMetadata = errors.New("bad model metadata")
)

// Accepted names the layouts vidpipe reads, for refusals.
const Accepted = "YOLOv5 decoded [N,A,5+nc] (cx,cy,w,h,obj,classes; A = anchors·Σ cells over the strides); " +
	"YOLOv5 raw heads, one per stride, [N,na,ny,nx,5+nc] or [N,na·(5+nc),ny,nx]; " +
	"YOLOv8/YOLO11 [N,4+nc,A] (cx,cy,w,h,classes; A = Σ cells); " +
	"a decoded output beside its raw heads; FLOAT or FLOAT16; a square input"

// Kind is an output layout.
type Kind uint8

const (
	// YOLOv5 is one decoded output [N, A, 5+nc]: cx, cy, w, h, obj, classes.
	YOLOv5 Kind = iota + 1
	// RawHeads are YOLOv5's Detect convolutions before sigmoid and decode,
	// one output per stride.
	RawHeads
	// YOLOv8 is one output [N, 4+nc, A]: cx, cy, w, h, classes after the
	// sigmoid, no objectness (YOLOv8 and YOLO11).
	YOLOv8
)

func (k Kind) String() string {
	switch k {
	case YOLOv5:
		return "YOLOv5 decoded [N,A,5+nc]"
	case RawHeads:
		return "YOLOv5 raw heads"
	case YOLOv8:
		return "YOLOv8/YOLO11 [N,4+nc,A]"
	}
	return fmt.Sprintf("layout(%d)", uint8(k))
}

// Layout is what was decided about a model when it loaded.
type Layout struct {
	Kind    Kind
	Classes int
	// Names are the class names from the metadata, nil when it has none.
	Names []string
	// Size is the square input size the model runs at.
	Size int
	// Float16 marks a model whose input or outputs are FLOAT16.
	Float16 bool
	// Bytes marks a model that takes letterboxed uint8 RGB [N,H,W,3] and
	// converts it itself (u8input.Convert): callers fill
	// infer.Session.InputBytes with the frame's bytes, not floats.
	Bytes bool
	// Output is the index, in the model's output order, of the decoded
	// output (YOLOv5, YOLOv8), and Rows its rows (YOLOv5) or anchors
	// (YOLOv8) as the model gives them.
	Output, Rows int
	// Heads are the raw heads' output indices in level order (RawHeads),
	// HeadLayout their memory order and Levels their grids, strides and
	// anchors.
	Heads      []int
	HeadLayout detect.HeadLayout
	Levels     []detect.HeadLevel
	// Strides are the levels' strides.
	Strides []int
	// AnchorsFrom says where raw heads' anchors come from: "metadata" or
	// "defaults" (YOLOv5's, when the model has none).
	AnchorsFrom string
	// Ignored are outputs not read: raw heads beside a decoded output.
	Ignored []string
	// Notes are things the load log should say (unreadable names, default
	// anchors).
	Notes []string
	// Candidates is k of a model rewritten to return its k best rows.
	Candidates int
}

// String describes the layout in one line, for the load log.
func (l *Layout) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d classes, input %dx%d, strides %v", l.Kind, l.Classes, l.Size, l.Size, l.Strides)
	if l.Kind == RawHeads {
		fmt.Fprintf(&b, ", %d heads, anchors from %s", len(l.Heads), l.AnchorsFrom)
	}
	if l.Float16 {
		b.WriteString(", float16")
	}
	if l.Bytes {
		b.WriteString(", uint8 input")
	}
	if len(l.Ignored) > 0 {
		fmt.Fprintf(&b, ", ignoring outputs %s", strings.Join(l.Ignored, " "))
	}
	return b.String()
}

// output is one model output as the decision sees it.
type output struct {
	name string
	typ  onnx.DataType
	dims []int64 // after the batch; 0 or less: not known
}

func (o output) String() string {
	parts := []string{"N"}
	for _, d := range o.dims {
		if d > 0 {
			parts = append(parts, fmt.Sprint(d))
		} else {
			parts = append(parts, "?")
		}
	}
	return fmt.Sprintf("%s %s [%s]", o.name, o.typ, strings.Join(parts, ","))
}

func describe(outs []output) string {
	if len(outs) == 0 {
		return "no outputs"
	}
	s := make([]string, len(outs))
	for i, o := range outs {
		s[i] = o.String()
	}
	return fmt.Sprintf("%d output(s) %s", len(outs), strings.Join(s, ", "))
}

// Decide tells the layout of model m (named name in errors), running at
// an h x w input, whose outputs, in the model's order, have dims (without
// the batch dimension; the shapes a session learned when the model names
// them symbolically).
func Decide(m *onnx.Model, name string, h, w int, dims [][]int64) (*Layout, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("model %s: %w", name, onnx.ErrNoGraph)
	}
	if len(dims) != len(m.Graph.Outputs) {
		return nil, fmt.Errorf("model %s: %w: %d output shapes for %d outputs", name, ErrLayout, len(dims), len(m.Graph.Outputs))
	}
	outs := make([]output, len(dims))
	for i, vi := range m.Graph.Outputs {
		outs[i] = output{name: vi.Name, typ: elemType(vi), dims: dims[i]}
	}
	l, err := decide(m, h, w, outs)
	if r := (*reason)(nil); errors.As(err, &r) {
		return nil, fmt.Errorf("model %s: %w: found %s, input %s: %s; vidpipe reads %s",
			name, r.sentinel, describe(outs), sizeString(h, w), r.why, Accepted)
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	return l, nil
}

func sizeString(h, w int) string {
	if h <= 0 || w <= 0 {
		return "of unknown size"
	}
	return fmt.Sprintf("%dx%d", w, h)
}

func elemType(vi *onnx.ValueInfo) onnx.DataType {
	if vi.Type == nil || vi.Type.Tensor == nil {
		return onnx.Undefined
	}
	return vi.Type.Tensor.ElemType
}

// reason is why a layout is refused, without the model's name and outputs,
// which Decide adds once.
type reason struct {
	sentinel error
	why      string
}

func (r *reason) Error() string { return r.why }
func (r *reason) Unwrap() error { return r.sentinel }

func refuse(sentinel error, format string, args ...any) error {
	return &reason{sentinel: sentinel, why: fmt.Sprintf(format, args...)}
}

func decide(m *onnx.Model, h, w int, outs []output) (*Layout, error) {
	if len(outs) == 0 {
		return nil, refuse(ErrLayout, "a detection model has at least one")
	}
	for _, o := range outs {
		if o.typ != onnx.Float && o.typ != onnx.Float16 {
			return nil, refuse(ErrLayout, "output %s is %s, want FLOAT or FLOAT16", o.name, o.typ)
		}
	}
	if h != w || h <= 0 {
		return nil, fmt.Errorf("%w: input %dx%d is not square: vidpipe letterboxes frames to a square; export the model at one size (--imgsz S)", ErrInput, w, h)
	}
	md, err := readMetadata(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMetadata, err)
	}
	var dec, heads []int
	for i, o := range outs {
		for _, d := range o.dims {
			if d <= 0 {
				return nil, refuse(ErrLayout, "output %s has dimensions not known at this input size", o.name)
			}
		}
		switch len(o.dims) {
		case 2:
			dec = append(dec, i)
		case 3, 4:
			heads = append(heads, i)
		default:
			return nil, refuse(ErrLayout, "output %s has rank %d", o.name, len(o.dims)+1)
		}
	}
	l := &Layout{Size: h, Names: md.names, Strides: md.strides, Candidates: md.candidates, Float16: isHalf(m), Bytes: isBytes(m)}
	if md.namesErr != nil {
		l.Names = nil
		l.Notes = append(l.Notes, fmt.Sprintf("class names unreadable, using class ids: %v", md.namesErr))
	}
	md.names = l.Names
	switch {
	case len(dec) == 1 && len(heads) == 0:
		if err := decoded(l, md, outs, dec[0]); err != nil {
			return nil, err
		}
	case len(dec) == 0 && len(heads) > 0:
		if len(outs) == 1 {
			return nil, refuse(ErrLayout, "one %d-D output is neither a decoded layout nor a set of raw heads (one per stride)", len(outs[0].dims)+1)
		}
		if err := rawHeads(l, md, outs, heads, true); err != nil {
			return nil, err
		}
	case len(dec) == 1 && len(heads) > 0:
		// Ultralytics exports may keep the raw heads beside output0: read
		// output0, provided the others are its heads, not something else
		// (a segmentation model's mask prototypes, say).
		if err := decoded(l, md, outs, dec[0]); err != nil {
			return nil, err
		}
		if l.Kind != YOLOv5 {
			return nil, refuse(ErrLayout, "a %s output beside %d other output(s): extra outputs are understood only as YOLOv5 raw heads beside YOLOv5 output0", l.Kind, len(heads))
		}
		beside := *l
		if err := rawHeads(&beside, md, outs, heads, false); err != nil {
			return nil, refuse(ErrLayout, "output %s is decoded, but the other outputs are not its raw heads (%v)", outs[dec[0]].name, err)
		}
		if beside.Classes != l.Classes {
			return nil, refuse(ErrLayout, "output %s has %d classes, its raw heads %d", outs[dec[0]].name, l.Classes, beside.Classes)
		}
		for _, i := range heads {
			l.Ignored = append(l.Ignored, outs[i].name)
		}
	default:
		return nil, refuse(ErrLayout, "%d outputs of rank 3: which to read cannot be told", len(dec))
	}
	return l, nil
}

func isHalf(m *onnx.Model) bool {
	for _, vs := range [][]*onnx.ValueInfo{m.Graph.Inputs, m.Graph.Outputs} {
		for _, vi := range vs {
			if elemType(vi) == onnx.Float16 {
				return true
			}
		}
	}
	return false
}

// isBytes reports whether the image input is UINT8: letterboxed bytes.
func isBytes(m *onnx.Model) bool {
	in := imageInput(m)
	return in != nil && elemType(in) == onnx.Uint8
}

// cells is Σ (size/s)² over the strides, or 0 when size is not a multiple
// of one of them.
func cells(size int, strides []int) int {
	n := 0
	for _, s := range strides {
		if size%s != 0 {
			return 0
		}
		n += (size / s) * (size / s)
	}
	return n
}

// decoded decides a single decoded output [N, r, c]: YOLOv5 (r rows of
// 5+nc) or YOLOv8 (4+nc rows of r anchors), by the anchor-count arithmetic
// and the names.
func decoded(l *Layout, md *metadata, outs []output, i int) error {
	o := outs[i]
	size := l.Size
	r, c := int(o.dims[0]), int(o.dims[1])
	na := md.anchorsPerLevel()
	n := cells(size, md.strides)
	if n == 0 {
		return refuse(ErrLayout, "input size %d is not a multiple of the strides %v", size, md.strides)
	}
	nc5, nc8 := c-5, r-4
	v5 := nc5 >= 1 && (r == na*n || md.candidates > 0 && r == md.candidates)
	v8 := nc8 >= 1 && c == n
	names := len(md.names)
	switch {
	case v5 && v8 && names == 0:
		return refuse(ErrLayout, "fits YOLOv5 [N,A,5+nc] with %d classes and YOLOv8 [N,4+nc,A] with %d classes; a names metadata entry would tell them apart", nc5, nc8)
	case v5 && v8 && names != nc5 && names != nc8:
		return refuse(ErrClasses, "YOLOv5 reading gives %d classes, YOLOv8 reading %d, names has %d", nc5, nc8, names)
	case v5 && (names == 0 || names == nc5):
		l.Kind, l.Classes = YOLOv5, nc5
	case v8 && (names == 0 || names == nc8):
		l.Kind, l.Classes = YOLOv8, nc8
	case v5:
		return refuse(ErrClasses, "YOLOv5 [N,A,5+nc]: %d columns are 5+%d classes, names has %d", c, nc5, names)
	case v8:
		return refuse(ErrClasses, "YOLOv8 [N,4+nc,A]: %d rows are 4+%d classes, names has %d", r, nc8, names)
	case r == n && c-4 >= 1 && (names == 0 || names == c-4):
		return refuse(ErrLayout, "%d rows are one per cell (%d), not %d per cell as YOLOv5 [N,A,5+nc] has: this reads as YOLOv8 rows transposed, [N,A,4+nc] without objectness; export the default [N,4+nc,A]", r, n, na)
	default:
		return refuse(ErrLayout, "neither %d rows = %d anchors × %d cells (YOLOv5 [N,A,5+nc]) nor %d columns = %d cells (YOLOv8 [N,4+nc,A]) at strides %v", r, na, n, c, n, md.strides)
	}
	l.Output, l.Rows = i, r
	if l.Kind == YOLOv8 {
		l.Rows = c
	}
	return nil
}

// rawHeads decides raw Detect heads, one output per stride. needAnchors is
// false for heads beside a decoded output, which are not read.
func rawHeads(l *Layout, md *metadata, outs []output, idx []int, needAnchors bool) error {
	size := l.Size
	rank := len(outs[idx[0]].dims)
	for _, i := range idx {
		if len(outs[i].dims) != rank {
			return refuse(ErrLayout, "raw heads of different ranks")
		}
	}
	// Finest grid first: levels in stride order.
	idx = slices.Clone(idx)
	slices.SortStableFunc(idx, func(a, b int) int {
		// dims[1] is ny in both memory orders.
		return int(outs[b].dims[1] - outs[a].dims[1])
	})
	na := md.anchorsPerLevel()
	layout := detect.LayoutConv
	if rank == 4 {
		layout = detect.LayoutPermuted
	}
	var strides []int
	var levels []detect.HeadLevel
	nc := 0
	for k, i := range idx {
		d := outs[i].dims
		var ny, nx, no int64
		if rank == 4 { // [na, ny, nx, 5+nc]
			if int(d[0]) != na {
				return refuse(ErrLayout, "head %s has %d anchors per cell, want %d", outs[i].name, d[0], na)
			}
			ny, nx, no = d[1], d[2], d[3]
		} else { // [na*(5+nc), ny, nx]
			if d[0]%int64(na) != 0 {
				return refuse(ErrLayout, "head %s has %d channels, not a multiple of %d anchors", outs[i].name, d[0], na)
			}
			ny, nx, no = d[1], d[2], d[0]/int64(na)
		}
		if int64(size)%ny != 0 || int64(size)%nx != 0 || ny != nx {
			return refuse(ErrLayout, "head %s grid %dx%d does not divide the input evenly", outs[i].name, nx, ny)
		}
		s := size / int(ny)
		if k > 0 && s <= strides[k-1] {
			return refuse(ErrLayout, "two heads at stride %d", s)
		}
		if k > 0 && int(no)-5 != nc {
			return refuse(ErrLayout, "heads disagree on the class count (%d and %d)", nc, no-5)
		}
		nc = int(no) - 5
		strides = append(strides, s)
		levels = append(levels, detect.HeadLevel{NY: int(ny), NX: int(nx), Stride: float32(s)})
	}
	if nc < 1 {
		return refuse(ErrLayout, "heads of %d columns per anchor leave no classes", nc+5)
	}
	if md.stridesSet && !slices.Equal(strides, md.strides) {
		return refuse(ErrLayout, "heads at strides %v, the stride metadata says %v", strides, md.strides)
	}
	if n := len(md.names); n > 0 && n != nc {
		return refuse(ErrClasses, "raw heads: %d columns per anchor are 5+%d classes, names has %d", nc+5, nc, n)
	}
	l.Kind, l.Classes, l.Strides, l.HeadLayout = RawHeads, nc, strides, layout
	l.Heads = idx
	if !needAnchors {
		return nil
	}
	switch {
	case md.anchors != nil:
		if len(md.anchors) != len(levels) {
			return refuse(ErrLayout, "%d heads, the anchors metadata has %d levels", len(levels), len(md.anchors))
		}
		for k := range levels {
			levels[k].Anchors = slices.Clone(md.anchors[k])
		}
		l.AnchorsFrom = "metadata"
	case slices.Equal(strides, detect.DefaultStrides[:]) && na == 3:
		for k := range levels {
			levels[k].Anchors = slices.Clone(detect.DefaultAnchors[k][:])
		}
		l.AnchorsFrom = "defaults"
		l.Notes = append(l.Notes, "raw heads without anchors metadata: decoding with the YOLOv5 default anchors (wrong boxes if training changed them)")
	default:
		return refuse(ErrLayout, "raw heads at strides %v need their anchors: the model has no anchors metadata and YOLOv5's defaults are for strides 8, 16, 32", strides)
	}
	l.Levels = levels
	return nil
}
