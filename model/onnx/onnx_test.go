package onnx

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

const tinyFixture = "testdata/tiny.onnx"

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(tinyFixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeTorchExport(t *testing.T) {
	m, err := ReadFile(tinyFixture)
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion == 0 || len(m.OpsetImports) == 0 || m.OpsetImports[0].Version != 13 {
		t.Fatalf("header: ir %d opsets %+v", m.IRVersion, m.OpsetImports)
	}
	g := m.Graph
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "images" {
		t.Fatalf("inputs: %+v", g.Inputs)
	}
	shape := g.Inputs[0].Type.Tensor.Shape
	if len(shape) != 4 || shape[0].Param != "batch" || shape[1].Value != 3 || shape[3].Value != 8 {
		t.Fatalf("input shape: %+v", shape)
	}
	if g.Outputs[0].Name != "output0" {
		t.Fatalf("output: %q", g.Outputs[0].Name)
	}
	var conv *Node
	for _, n := range g.Nodes {
		if n.OpType == "Conv" {
			conv = n
		}
	}
	if conv == nil {
		t.Fatal("no Conv node")
	}
	if got := conv.AttrInts("pads", nil); !reflect.DeepEqual(got, []int64{1, 1, 1, 1}) {
		t.Errorf("conv pads = %v", got)
	}
	ix := NewIndex(g)
	w, err := ix.Initializers[conv.Inputs[1]].Floats()
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 4*3*3*3 {
		t.Errorf("conv weight has %d values", len(w))
	}
	if got := Params(g); got != 4*3*3*3+4 {
		t.Errorf("Params = %d, want %d", got, 4*3*3*3+4)
	}
	if m.Metadata[len(m.Metadata)-1] != (StringPair{"stride", "32"}) {
		t.Errorf("metadata = %+v", m.Metadata)
	}
}

func TestRoundTripIsStable(t *testing.T) {
	b := readFixture(t)
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	once := Encode(m)
	m2, err := Decode(once)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatal("decode(encode(m)) differs from m")
	}
	if twice := Encode(m2); !bytes.Equal(once, twice) {
		t.Fatal("encoding is not stable")
	}
}

// TestRoundTripMatchesOnnxPackage asks the reference implementation whether
// re-encoding changed anything: the protobuf messages must compare equal.
func TestRoundTripMatchesOnnxPackage(t *testing.T) {
	m, err := ReadFile(tinyFixture)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "again.onnx")
	if err := WriteFile(out, m); err != nil {
		t.Fatal(err)
	}
	script := `import onnx, sys
a, b = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
onnx.checker.check_model(b)
sys.exit(0 if a == b else 3)`
	cmd := exec.Command("/usr/bin/python3", "-c", script, tinyFixture, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("onnx reference disagrees (python3-onnx missing? run scripts/setup.sh --test): %v\n%s", err, msg)
	}
}

func TestBuiltModelRoundTrips(t *testing.T) {
	g := &Graph{
		Name: "g",
		Nodes: []*Node{{
			Name: "conv", OpType: "Conv", Inputs: []string{"images", "w"}, Outputs: []string{"y"},
			Attrs: []*Attribute{Ints("pads", 0, 0, 0, 0), Int("group", 1), FloatAttr("alpha", 0), StringAttr("mode", "")},
		}},
		Initializers: []*Tensor{NewFloat("w", []int64{1, 3, 1, 1}, []float32{1, -2, 0.5}), NewInt64("shape", []int64{2}, []int64{-1, 7})},
		Inputs:       []*ValueInfo{TensorValue("images", Float, Dim{Param: "batch"}, Dim{Value: 3}, Dim{Value: 4}, Dim{Value: 4})},
		Outputs:      []*ValueInfo{TensorValue("y", Float)},
	}
	m := &Model{IRVersion: 7, OpsetImports: []OpsetID{{Version: 13}}, Graph: g, Metadata: []StringPair{{"k", "v"}}}
	back, err := Decode(Encode(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, back) {
		t.Fatalf("round trip changed the model:\n%+v\n%+v", m.Graph.Nodes[0].Attrs, back.Graph.Nodes[0].Attrs)
	}
	// Zero-valued attributes must survive: proto2 presence carries them.
	if a := back.Graph.Nodes[0].Attr("alpha"); a == nil || a.Type != AttrFloat || a.F != 0 {
		t.Errorf("alpha attribute = %+v", a)
	}
	v, err := back.Graph.Initializers[1].Int64s()
	if err != nil || !reflect.DeepEqual(v, []int64{-1, 7}) {
		t.Errorf("int64 initializer = %v, %v", v, err)
	}
}

func TestUnknownFieldsAreKept(t *testing.T) {
	m := &Model{IRVersion: 7, Graph: &Graph{Name: "g"}}
	b := Encode(m)
	// Field 20 (training_info) as an opaque message, then field 99 as a varint.
	extra := []byte{0xa2, 0x01, 0x02, 0x08, 0x01, 0x98, 0x06, 0x05}
	m2, err := Decode(append(b, extra...))
	if err != nil {
		t.Fatal(err)
	}
	if got := Encode(m2); !bytes.Equal(got, append(b, extra...)) {
		t.Fatalf("unknown fields lost: %x", got)
	}
}

func TestTensorData(t *testing.T) {
	tests := []struct {
		name    string
		tensor  *Tensor
		want    []float32
		wantErr error
	}{
		{"raw float", NewFloat("a", []int64{2}, []float32{1.5, -2}), []float32{1.5, -2}, nil},
		{"float_data", &Tensor{Name: "b", Dims: []int64{1, 2}, DataType: Float, FloatData: []float32{3, 4}}, []float32{3, 4}, nil},
		{"doubles", &Tensor{Name: "c", Dims: []int64{1}, DataType: Double, DoubleData: []float64{0.25}}, []float32{0.25}, nil},
		{"half raw", &Tensor{Name: "d", Dims: []int64{2}, DataType: Float16, RawData: []byte{0x00, 0x3c, 0x00, 0xc0}}, []float32{1, -2}, nil},
		{"scalar", NewFloat("e", nil, []float32{9}), []float32{9}, nil},
		{"short raw", &Tensor{Name: "f", Dims: []int64{3}, DataType: Float, RawData: make([]byte, 8)}, nil, ErrTensorData},
		{"count mismatch", &Tensor{Name: "g", Dims: []int64{3}, DataType: Float, FloatData: []float32{1}}, nil, ErrTensorData},
		{"negative dim", &Tensor{Name: "h", Dims: []int64{-1}, DataType: Float}, nil, ErrTensorData},
		{"huge dims", &Tensor{Name: "i", Dims: []int64{1 << 40, 1 << 40}, DataType: Float}, nil, ErrTensorData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.tensor.Floats()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := NewInt64("x", []int64{1}, []int64{1}).Floats(); err == nil {
		t.Error("INT64 tensor read as floats without error")
	}
}

func TestBadFiles(t *testing.T) {
	good := readFixture(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"missing", filepath.Join(dir, "nope.onnx"), os.ErrNotExist},
		{"truncated", write("truncated.onnx", good[:len(good)/2]), ErrMalformed},
		{"text", write("text.onnx", []byte("this is not an onnx model\n")), ErrMalformed},
		{"empty", write("empty.onnx", nil), ErrNoGraph},
		{"wrong wire type", write("wire.onnx", []byte{0x0a, 0x01, 0x00}), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFile(tc.path)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(filepath.Base(tc.path))) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestNestingIsBounded(t *testing.T) {
	// A graph whose node carries a graph attribute, nested MaxDepth+2 times.
	g := &Graph{Name: "leaf"}
	for i := 0; i < MaxDepth+2; i++ {
		g = &Graph{Nodes: []*Node{{OpType: "If", Attrs: []*Attribute{{Name: "then_branch", Type: AttrGraph, G: g}}}}}
	}
	_, err := Decode(Encode(&Model{Graph: g}))
	if !errors.Is(err, ErrTooDeep) {
		t.Fatalf("err = %v, want ErrTooDeep", err)
	}
}

func TestPrune(t *testing.T) {
	g := &Graph{
		Nodes: []*Node{
			{Name: "a", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"a"}},
			{Name: "dead1", OpType: "Relu", Inputs: []string{"a"}, Outputs: []string{"d1"}},
			{Name: "dead2", OpType: "Add", Inputs: []string{"d1", "c"}, Outputs: []string{"d2"}},
			{Name: "b", OpType: "Add", Inputs: []string{"a", "k"}, Outputs: []string{"y"}},
		},
		Initializers: []*Tensor{NewFloat("c", nil, []float32{1}), NewFloat("k", nil, []float32{2})},
		Outputs:      []*ValueInfo{{Name: "y"}},
	}
	if n := Prune(g); n != 2 {
		t.Fatalf("Prune removed %d nodes, want 2", n)
	}
	if len(g.Nodes) != 2 || g.Nodes[0].Name != "a" || g.Nodes[1].Name != "b" {
		t.Fatalf("nodes left: %v", g.Nodes)
	}
	if len(g.Initializers) != 1 || g.Initializers[0].Name != "k" {
		t.Fatalf("initializers left: %v", g.Initializers)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes the same.
		m2, err := Decode(Encode(m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatal("round trip changed a decoded model")
		}
		if m.Graph != nil {
			for _, init := range m.Graph.Initializers {
				_, _ = init.Floats()
				_, _ = init.Int64s()
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	data := readFixture(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
