package layout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
)

// graphOf is a model whose graph has only the value infos Decide reads:
// a FLOAT [1,3,size,size] input and outputs of the given dims (after the
// batch), with metadata as key, value pairs.
func graphOf(size int, outs [][]int64, meta ...string) (*onnx.Model, [][]int64) {
	g := &onnx.Graph{Inputs: []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float,
		onnx.Dim{Value: 1}, onnx.Dim{Value: 3}, onnx.Dim{Value: int64(size)}, onnx.Dim{Value: int64(size)})}}
	for i, d := range outs {
		dims := []onnx.Dim{{Value: 1}}
		for _, v := range d {
			dims = append(dims, onnx.Dim{Value: v})
		}
		g.Outputs = append(g.Outputs, onnx.TensorValue(fmt.Sprintf("out%d", i), onnx.Float, dims...))
	}
	m := &onnx.Model{Graph: g}
	for i := 0; i+1 < len(meta); i += 2 {
		m.Metadata = append(m.Metadata, onnx.StringPair{Key: meta[i], Value: meta[i+1]})
	}
	return m, outs
}

func names(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%d: 'c%d'", i, i)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestDecide(t *testing.T) {
	custom := [][]float32{{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}, {13, 14, 15, 16, 17, 18}}
	tests := []struct {
		name    string
		size    int
		outs    [][]int64
		meta    []string
		kind    Kind
		classes int
		heads   []int
		anchors [][]float32
		want    error  // a refusal
		says    string // in the refusal
	}{
		{name: "yolov5 640", size: 640, outs: [][]int64{{25200, 85}}, kind: YOLOv5, classes: 80},
		{name: "yolov5 with names", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"names", names(80), "stride", "32"}, kind: YOLOv5, classes: 80},
		{name: "yolov5 p6", size: 640, outs: [][]int64{{25500, 85}}, meta: []string{"stride", "64"}, kind: YOLOv5, classes: 80},
		{name: "yolov5 p6 without stride", size: 640, outs: [][]int64{{25500, 85}}, want: ErrLayout, says: "neither 25500 rows = 3 anchors × 8400 cells"},
		{name: "yolov5 candidates", size: 640, outs: [][]int64{{2000, 85}}, meta: []string{"vidpipe_candidates", "2000"}, kind: YOLOv5, classes: 80},
		{name: "yolov8 640", size: 640, outs: [][]int64{{84, 8400}}, kind: YOLOv8, classes: 80},
		{name: "yolov8 one class", size: 320, outs: [][]int64{{5, 2100}}, kind: YOLOv8, classes: 1},
		{name: "yolov8 names mismatch", size: 640, outs: [][]int64{{84, 8400}}, meta: []string{"names", names(81)}, want: ErrClasses, says: "84 rows are 4+80 classes, names has 81"},
		{name: "yolov5 names mismatch", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"names", names(79)}, want: ErrClasses, says: "85 columns are 5+80 classes, names has 79"},
		// [N,A,84] without objectness, A = cells: YOLOv8 transposed.
		{name: "transposed v8", size: 640, outs: [][]int64{{8400, 84}}, meta: []string{"names", names(80)}, want: ErrLayout, says: "rows transposed"},
		{name: "transposed v8 without names", size: 640, outs: [][]int64{{8400, 84}}, want: ErrLayout, says: "rows transposed"},
		// At 64x64 (84 cells), [N,252,84] reads as YOLOv5 with 79 classes
		// or YOLOv8 with 248: the names tell.
		{name: "ambiguous", size: 64, outs: [][]int64{{252, 84}}, want: ErrLayout, says: "fits YOLOv5 [N,A,5+nc] with 79 classes and YOLOv8 [N,4+nc,A] with 248"},
		{name: "ambiguous, names say v5", size: 64, outs: [][]int64{{252, 84}}, meta: []string{"names", names(79)}, kind: YOLOv5, classes: 79},
		{name: "ambiguous, names say v8", size: 64, outs: [][]int64{{252, 84}}, meta: []string{"names", names(248)}, kind: YOLOv8, classes: 248},
		{name: "ambiguous, names say neither", size: 64, outs: [][]int64{{252, 84}}, meta: []string{"names", names(80)}, want: ErrClasses, says: "names has 80"},
		{name: "size not a stride multiple", size: 100, outs: [][]int64{{84, 210}}, want: ErrLayout, says: "not a multiple of the strides"},
		{name: "no classes", size: 640, outs: [][]int64{{25200, 5}}, want: ErrLayout, says: "neither"},
		{name: "raw heads conv, shuffled", size: 640, outs: [][]int64{{255, 40, 40}, {255, 80, 80}, {255, 20, 20}},
			kind: RawHeads, classes: 80, heads: []int{1, 0, 2}, anchors: [][]float32{detect.DefaultAnchors[0][:], detect.DefaultAnchors[1][:], detect.DefaultAnchors[2][:]}},
		{name: "raw heads permuted, nested anchors", size: 64, outs: [][]int64{{3, 8, 8, 7}, {3, 4, 4, 7}, {3, 2, 2, 7}},
			meta: []string{"anchors", "[[1,2,3,4,5,6],[7,8,9,10,11,12],[13,14,15,16,17,18]]"}, kind: RawHeads, classes: 2, heads: []int{0, 1, 2}, anchors: custom},
		{name: "raw heads, flat anchors", size: 64, outs: [][]int64{{21, 8, 8}, {21, 4, 4}, {21, 2, 2}},
			meta: []string{"anchors", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]"}, kind: RawHeads, classes: 2, heads: []int{0, 1, 2}, anchors: custom},
		{name: "raw heads, anchor pairs", size: 64, outs: [][]int64{{21, 8, 8}, {21, 4, 4}, {21, 2, 2}},
			meta: []string{"anchors", "[[[1,2],[3,4],[5,6]],[[7,8],[9,10],[11,12]],[[13,14],[15,16],[17,18]]]"}, kind: RawHeads, classes: 2, heads: []int{0, 1, 2}, anchors: custom},
		{name: "raw heads, flat pairs", size: 64, outs: [][]int64{{21, 8, 8}, {21, 4, 4}, {21, 2, 2}},
			meta: []string{"anchors", "[(1,2),(3,4),(5,6),(7,8),(9,10),(11,12),(13,14),(15,16),(17,18)]"}, kind: RawHeads, classes: 2, heads: []int{0, 1, 2}, anchors: custom},
		{name: "raw heads, 2 anchors per cell", size: 64, outs: [][]int64{{14, 8, 8}, {14, 4, 4}, {14, 2, 2}},
			meta: []string{"anchors", "[[1,2,3,4],[7,8,9,10],[13,14,15,16]]"}, kind: RawHeads, classes: 2, heads: []int{0, 1, 2},
			anchors: [][]float32{{1, 2, 3, 4}, {7, 8, 9, 10}, {13, 14, 15, 16}}},
		{name: "four raw heads without anchors", size: 640, outs: [][]int64{{255, 80, 80}, {255, 40, 40}, {255, 20, 20}, {255, 10, 10}},
			want: ErrLayout, says: "need their anchors"},
		{name: "raw heads of different classes", size: 640, outs: [][]int64{{255, 80, 80}, {258, 40, 40}, {255, 20, 20}}, want: ErrLayout, says: "disagree on the class count"},
		{name: "raw heads, same stride twice", size: 640, outs: [][]int64{{255, 80, 80}, {255, 80, 80}, {255, 20, 20}}, want: ErrLayout, says: "two heads at stride 8"},
		{name: "raw heads, uneven grid", size: 640, outs: [][]int64{{255, 80, 80}, {255, 30, 30}, {255, 20, 20}}, want: ErrLayout, says: "does not divide"},
		{name: "raw heads vs names", size: 640, outs: [][]int64{{255, 80, 80}, {255, 40, 40}, {255, 20, 20}}, meta: []string{"names", names(2)}, want: ErrClasses, says: "names has 2"},
		{name: "raw heads vs anchors levels", size: 640, outs: [][]int64{{255, 80, 80}, {255, 40, 40}, {255, 20, 20}},
			meta: []string{"anchors", "[[1,2,3,4,5,6],[7,8,9,10,11,12]]"}, want: ErrLayout, says: "anchors metadata has 2 levels"},
		{name: "output0 beside its heads", size: 640, outs: [][]int64{{25200, 85}, {3, 80, 80, 85}, {3, 40, 40, 85}, {3, 20, 20, 85}}, kind: YOLOv5, classes: 80},
		{name: "output0 beside other heads", size: 640, outs: [][]int64{{25200, 85}, {3, 80, 80, 7}, {3, 40, 40, 7}, {3, 20, 20, 7}}, want: ErrLayout, says: "has 80 classes, its raw heads 2"},
		{name: "output0 beside protos", size: 640, outs: [][]int64{{25200, 117}, {32, 160, 160}}, want: ErrLayout, says: "not its raw heads"},
		{name: "two decoded outputs", size: 640, outs: [][]int64{{25200, 85}, {25200, 85}}, want: ErrLayout, says: "2 outputs of rank 3"},
		{name: "rank 2", size: 640, outs: [][]int64{{1000}}, want: ErrLayout, says: "rank 2"},
		{name: "one 5-D output", size: 640, outs: [][]int64{{3, 80, 80, 85}}, want: ErrLayout, says: "one 5-D output"},
		{name: "unknown dims", size: 640, outs: [][]int64{{0, 85}}, want: ErrLayout, says: "not known"},
		{name: "bad stride", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"stride", "abc"}, want: ErrMetadata, says: "stride"},
		{name: "stride not a power of two", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"stride", "24"}, want: ErrMetadata, says: "power of two"},
		{name: "bad anchors", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"anchors", "[[10,13,16],[30]]"}, want: ErrMetadata, says: "anchors"},
		{name: "negative anchors", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"anchors", "[-1,2,3,4,5,6]"}, want: ErrMetadata, says: "not a positive pixel size"},
		{name: "bad candidates", size: 640, outs: [][]int64{{25200, 85}}, meta: []string{"vidpipe_candidates", "-4"}, want: ErrMetadata, says: "vidpipe_candidates"},
		{name: "no outputs", size: 640, want: ErrLayout, says: "found no outputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, dims := graphOf(tt.size, tt.outs, tt.meta...)
			l, err := Decide(m, "m.onnx", tt.size, tt.size, dims)
			if tt.want != nil {
				if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.says) || !strings.HasPrefix(fmt.Sprint(err), "model m.onnx: ") {
					t.Fatalf("Decide = %v, %v; want %v saying %q", l, err, tt.want, tt.says)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Kind != tt.kind || l.Classes != tt.classes || l.Cols() != 5+tt.classes {
				t.Fatalf("layout %s, want %s with %d classes", l, tt.kind, tt.classes)
			}
			if tt.heads != nil && !slices.Equal(l.Heads, tt.heads) {
				t.Errorf("heads %v, want %v", l.Heads, tt.heads)
			}
			for i, a := range tt.anchors {
				if !slices.Equal(l.Levels[i].Anchors, a) {
					t.Errorf("level %d anchors %v, want %v", i, l.Levels[i].Anchors, a)
				}
			}
		})
	}
}

func TestDecideInput(t *testing.T) {
	m, dims := graphOf(640, [][]int64{{25200, 85}})
	if _, err := Decide(m, "m.onnx", 480, 640, dims); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "640x480 is not square") {
		t.Errorf("rectangular: %v", err)
	}
	if _, err := Decide(m, "m.onnx", 640, 640, dims[:0]); !errors.Is(err, ErrLayout) {
		t.Errorf("shapes of the wrong count: %v", err)
	}
	if _, err := Decide(&onnx.Model{}, "m.onnx", 640, 640, nil); !errors.Is(err, onnx.ErrNoGraph) {
		t.Errorf("no graph: %v", err)
	}
	// Unreadable names load, with a note, as class ids.
	m, dims = graphOf(640, [][]int64{{25200, 85}}, "names", "['a', 'b']")
	l, err := Decide(m, "m.onnx", 640, 640, dims)
	if err != nil || l.Names != nil || len(l.Notes) != 1 {
		t.Errorf("unreadable names: %v, %v", l, err)
	}
}

// TestRowsBadOutputs feeds the decoder outputs that do not match its layout:
// errors, never a panic.
func TestRowsBadOutputs(t *testing.T) {
	v5 := &Layout{Kind: YOLOv5, Classes: 2, Output: 0}
	v8 := &Layout{Kind: YOLOv8, Classes: 2, Output: 0}
	raw := &Layout{Kind: RawHeads, Classes: 2, Heads: []int{0, 1, 2}, Levels: []detect.HeadLevel{
		{NY: 2, NX: 2, Stride: 8, Anchors: []float32{1, 1}}, {NY: 1, NX: 1, Stride: 16, Anchors: []float32{1, 1}}, {NY: 1, NX: 1, Stride: 32, Anchors: []float32{1, 1}}}}
	short := infer.Output{Name: "o", Shape: []int64{1, 10, 7}, Data: make([]float32, 20)}
	for _, tc := range []struct {
		l    *Layout
		outs []infer.Output
	}{
		{v5, nil},
		{v5, []infer.Output{short}},
		{v5, []infer.Output{{Name: "o", Shape: []int64{1, 10, 8}, Data: make([]float32, 80)}}},
		{v5, []infer.Output{{Name: "o", Shape: []int64{1, 10}, Data: make([]float32, 10)}}},
		{v8, []infer.Output{{Name: "o", Shape: []int64{1, 6, 10}, Data: make([]float32, 59)}}},
		{v8, []infer.Output{{Name: "o", Shape: []int64{1, 7, 10}, Data: make([]float32, 70)}}},
		{raw, []infer.Output{short}},
		{raw, []infer.Output{short, short, short}},
		{&Layout{Kind: 9}, []infer.Output{short}},
	} {
		if _, _, err := tc.l.NewDecoder().Rows(tc.outs, 0, 0.25); err == nil {
			t.Errorf("%s on %v: no error", tc.l.Kind, tc.outs)
		}
	}
	if _, _, err := v5.NewDecoder().Rows([]infer.Output{short}, -1, 0.25); err == nil {
		t.Error("image -1: no error")
	}
}

func FuzzMetadata(f *testing.F) {
	for _, s := range []string{"32", "[8, 16, 32]", "[[10,13,16,30,33,23],[30,61,62,45,59,119],[116,90,156,198,373,326]]",
		"[(1,2),(3,4)]", "[[[1,2]]]", "[", "[1,,2]", "[[[[[[1]]]]]]", "1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := parseAnchors(s, 3); err == nil {
			for _, l := range a {
				if len(l) == 0 || len(l)%2 != 0 {
					t.Fatalf("anchors %q: level %v", s, l)
				}
			}
		}
		if st, err := parseStrides(s); err == nil && len(st) == 0 {
			t.Fatalf("strides %q: none", s)
		}
	})
}
