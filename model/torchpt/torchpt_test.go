package torchpt

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The fixtures and expected.json are written by testdata/gen_fixtures.py
// with real torch; expected.json holds what torch.load reads back.
type expectedTensor struct {
	Shape  []int     `json:"shape"`
	DType  string    `json:"dtype"`
	SHA256 string    `json:"sha256"`
	Values []float64 `json:"values"`
}

type expectedFixture struct {
	File       string                    `json:"file"`
	Kind       string                    `json:"kind"`
	ModelClass string                    `json:"model_class"`
	YAML       map[string]any            `json:"yaml"`
	ClassNames []string                  `json:"class_names"`
	Strides    []float64                 `json:"strides"`
	Modules    [][2]string               `json:"modules"`
	Names      []string                  `json:"names"`
	Tensors    map[string]expectedTensor `json:"tensors"`
}

type expectedFile struct {
	Fixtures           []expectedFixture `json:"fixtures"`
	ModelStateDictKeys []string          `json:"model_state_dict_keys"`
}

func loadExpected(t *testing.T) expectedFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Fixtures) < 7 {
		t.Fatalf("expected.json lists %d fixtures, want at least 7", len(e.Fixtures))
	}
	return e
}

func digest(vs []float32) string {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFixturesMatchTorch compares every tensor and all metadata with what
// torch itself loaded from the same files.
func TestFixturesMatchTorch(t *testing.T) {
	exp := loadExpected(t)
	for _, fx := range exp.Fixtures {
		t.Run(fx.File, func(t *testing.T) {
			path := filepath.Join("testdata", fx.File)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind() != fx.Kind {
				t.Errorf("Kind = %q, want %q", f.Kind(), fx.Kind)
			}
			if !slices.Equal(f.Names(), fx.Names) {
				t.Errorf("Names =\n %v\nwant (torch's state_dict keys)\n %v", f.Names(), fx.Names)
			}
			for _, name := range fx.Names {
				want := fx.Tensors[name]
				shape, ok := f.Shape(name)
				if !ok || !slices.Equal(shape, want.Shape) {
					t.Errorf("%s: Shape = %v, %v, want %v", name, shape, ok, want.Shape)
					continue
				}
				if got := f.DType(name); got != want.DType {
					t.Errorf("%s: DType = %q, want %q", name, got, want.DType)
				}
				vals, err := f.Tensor(name, want.Shape)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				for i, v := range want.Values {
					if float64(vals[i]) != v {
						t.Errorf("%s[%d] = %v, torch has %v", name, i, vals[i], v)
					}
				}
				if got := digest(vals); got != want.SHA256 {
					t.Errorf("%s: float32 values differ from torch's (sha256 %s, want %s)", name, got, want.SHA256)
				}
			}
			if f.ModelClass() != fx.ModelClass {
				t.Errorf("ModelClass = %q, want %q", f.ModelClass(), fx.ModelClass)
			}
			if !slices.Equal(f.ClassNames(), fx.ClassNames) {
				t.Errorf("ClassNames = %q, want %q", f.ClassNames(), fx.ClassNames)
			}
			if !slices.Equal(f.Strides(), fx.Strides) {
				t.Errorf("Strides = %v, want %v", f.Strides(), fx.Strides)
			}
			// JSON erases the int/float distinction; TestYAMLTypes checks it.
			if got := roundTrip(t, f.YAML()); !reflect.DeepEqual(got, roundTrip(t, fx.YAML)) {
				t.Errorf("YAML =\n %v\nwant\n %v", got, fx.YAML)
			}
			var prefixes []string
			for _, m := range fx.Modules {
				prefixes = append(prefixes, m[0])
				if typ, ok := f.ModuleType(m[0]); !ok || typ != m[1] {
					t.Errorf("ModuleType(%q) = %q, %v, want %q", m[0], typ, ok, m[1])
				}
			}
			if got := f.Modules(); !slices.Equal(got, prefixes) {
				t.Errorf("Modules = %v, want (named_modules) %v", got, prefixes)
			}
			if fx.ModelClass != "" {
				if typ, _ := f.ModuleType(""); typ != fx.ModelClass {
					t.Errorf("ModuleType(\"\") = %q, want %q", typ, fx.ModelClass)
				}
			}
		})
	}
}

func roundTrip(t *testing.T, v map[string]any) any {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestYOLONamesAreModelStateDict checks the flattening against
// model.state_dict().keys() taken from the live module, not the reloaded file.
func TestYOLONamesAreModelStateDict(t *testing.T) {
	exp := loadExpected(t)
	f, err := Open(filepath.Join("testdata", "yolo_ckpt.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Names(), exp.ModelStateDictKeys) {
		t.Fatalf("Names = %v, want %v", f.Names(), exp.ModelStateDictKeys)
	}
	// The non-persistent buffer is on the module but not in the state_dict.
	if _, ok := f.Shape("model.2.anchor_grid"); ok {
		t.Error("non-persistent buffer model.2.anchor_grid is listed")
	}
	if typ, ok := f.ModuleType("model.0"); !ok || typ != "models.common.Focus" {
		t.Errorf(`ModuleType("model.0") = %q, %v`, typ, ok)
	}
	if typ, ok := f.ModuleType("model.9"); ok {
		t.Errorf(`ModuleType("model.9") = %q, want none`, typ)
	}
}

func TestYAMLTypes(t *testing.T) {
	f, err := Open(filepath.Join("testdata", "yolo_ckpt.pt"))
	if err != nil {
		t.Fatal(err)
	}
	y := f.YAML()
	checks := []struct {
		name      string
		got, want any
	}{
		{"nc", y["nc"], int64(3)},
		{"depth_multiple", y["depth_multiple"], 0.33},
		{"fused", y["fused"], false},
		{"ratio (a tuple)", y["ratio"], []any{int64(1), 2.5}},
		{"head[0]", y["head"].([]any)[0], []any{int64(-1), int64(1), "nn.Upsample", []any{nil, int64(2), "nearest"}}},
		{"anchors[0]", y["anchors"].([]any)[0], []any{int64(10), int64(13), int64(16), int64(30), int64(33), int64(23)}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("yaml %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestMysteryModule(t *testing.T) {
	f, err := Open(filepath.Join("testdata", "mystery.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if typ, ok := f.ModuleType("model.2"); !ok || typ != "models.common.MysteryBlock" {
		t.Errorf(`ModuleType("model.2") = %q, %v, want models.common.MysteryBlock`, typ, ok)
	}
}

func TestTensorErrors(t *testing.T) {
	path := filepath.Join("testdata", "dtypes.pt")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Tensor("nope", []int{1})
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), path) {
		t.Errorf("missing tensor: %v", err)
	}
	_, err = f.Tensor("base", []int{4, 3})
	if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "base") || !strings.Contains(err.Error(), "[3 4]") {
		t.Errorf("wrong shape: %v", err)
	}
	if _, ok := f.Shape("nope"); ok {
		t.Error("Shape of a missing tensor reports ok")
	}
	if f.DType("nope") != "" {
		t.Error("DType of a missing tensor is not empty")
	}
}

// TestBadFiles: each bad input is refused with an error naming the file and
// the cause, never a panic.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		path string
		want error
		text string
	}{
		{filepath.Join("testdata", "legacy.pt"), ErrLegacyFormat, "legacy (non-zip) torch format"},
		{filepath.Join("testdata", "evil.pt"), ErrUnknownFunction, "pickle calls unknown function posix.system"},
		{filepath.Join("testdata", "truncated.pt"), ErrTruncated, "truncated"},
		{write("empty.pt", nil), ErrTruncated, "empty"},
		{write("text.pt", []byte("hello, not a checkpoint")), ErrNotTorch, "not a zip"},
		{write("bare.pkl", []byte("\x80\x02}q\x00.")), ErrNotTorch, "bare pickle"},
		{write("legacy-cut.pt", legacyMagic[:6]), ErrLegacyFormat, "truncated"},
		{filepath.Join(dir, "absent.pt"), os.ErrNotExist, "no such file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			_, err := Open(tt.path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.path) || !strings.Contains(msg, tt.text) {
				t.Errorf("error %q does not name the file and %q", msg, tt.text)
			}
		})
	}
}

// zipOf builds a torch-style archive from records, under prefix "ck".
func zipOf(t *testing.T, records map[string][]byte, order ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, name := range order {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(records[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tensorPickle is {'w': _rebuild_tensor_v2(storage(FloatStorage, '0', numel), offset, size, stride)}.
func tensorPickle(storageType string, numel, offset byte, size, stride []byte) []byte {
	p := []byte("\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n")
	p = append(p, storageType+"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK"...)
	p = append(p, numel, 't', 'Q', 'K', offset, '(')
	for _, s := range size {
		p = append(p, 'K', s)
	}
	p = append(p, 't', '(')
	for _, s := range stride {
		p = append(p, 'K', s)
	}
	p = append(p, "t\x89ccollections\nOrderedDict\n)RtRs."...)
	return p
}

// fromTypePickle wraps a tensor the way torch 2.x pickles one that has
// Python attributes: _rebuild_from_type_v2(inner, torch.Tensor, args, state).
func fromTypePickle(inner string) []byte {
	p := []byte("\x80\x02}X\x01\x00\x00\x00wctorch._tensor\n_rebuild_from_type_v2\n(c" + inner + "\nctorch\nTensor\n(")
	p = append(p, "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ"...)
	p = append(p, "K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt}X\x04\x00\x00\x00noteK\x01stRs."...)
	return p
}

func TestRebuildFromType(t *testing.T) {
	rec := map[string][]byte{"ck/data/0": {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}}
	rec["ck/data.pkl"] = fromTypePickle("torch._utils\n_rebuild_tensor_v2")
	b := zipOf(t, rec, "ck/data.pkl", "ck/data/0")
	f, err := Read(bytes.NewReader(b), int64(len(b)), "fromtype.pt")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Tensor("w", []int{2}); err != nil || !slices.Equal(v, []float32{1, 2}) {
		t.Fatalf("Tensor = %v, %v, want [1 2]", v, err)
	}
	rec["ck/data.pkl"] = fromTypePickle("posix\nsystem")
	b = zipOf(t, rec, "ck/data.pkl", "ck/data/0")
	_, err = Read(bytes.NewReader(b), int64(len(b)), "fromtype-evil.pt")
	if !errors.Is(err, ErrUnknownFunction) || !strings.Contains(err.Error(), "posix.system") || !strings.Contains(err.Error(), "fromtype-evil.pt") {
		t.Fatalf("err = %v, want ErrUnknownFunction naming posix.system", err)
	}
}

func TestCraftedArchives(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	tests := []struct {
		name    string
		records map[string][]byte
		order   []string
		want    error
		text    string
	}{
		{"ok", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 6, 0, []byte{2, 3}, []byte{3, 1}), "ck/data/0": f32(6)},
			[]string{"ck/data.pkl", "ck/data/0"}, nil, ""},
		{"storage record shorter than declared", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 6, 0, []byte{2, 3}, []byte{3, 1}), "ck/data/0": f32(5)},
			[]string{"ck/data.pkl", "ck/data/0"}, ErrCorrupt, "holds 20 bytes"},
		{"storage record missing", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 6, 0, []byte{2, 3}, []byte{3, 1})},
			[]string{"ck/data.pkl"}, ErrCorrupt, "no record ck/data/0"},
		{"view past the storage", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 6, 1, []byte{2, 3}, []byte{3, 1}), "ck/data/0": f32(6)},
			[]string{"ck/data.pkl", "ck/data/0"}, ErrCorrupt, "reaches element 6 of 6"},
		{"huge stride", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 6, 0, []byte{2, 3}, []byte{200, 1}), "ck/data/0": f32(6)},
			[]string{"ck/data.pkl", "ck/data/0"}, ErrCorrupt, "reaches element"},
		{"expanded view too large", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 1, 0, []byte{255, 255, 255, 255}, []byte{0, 0, 0, 0}), "ck/data/0": f32(1)},
			[]string{"ck/data.pkl", "ck/data/0"}, ErrLimit, "elements"},
		{"unknown storage type", map[string][]byte{"ck/data.pkl": tensorPickle("QInt8Storage", 6, 0, []byte{2, 3}, []byte{3, 1}), "ck/data/0": f32(6)},
			[]string{"ck/data.pkl", "ck/data/0"}, ErrCorrupt, "unknown type torch.QInt8Storage"},
		{"no data.pkl", map[string][]byte{"ck/version": []byte("3\n")},
			[]string{"ck/version"}, ErrNotTorch, "no ck/data.pkl"},
		{"torchscript", map[string][]byte{"ck/data.pkl": []byte("N."), "ck/constants.pkl": []byte("N.")},
			[]string{"ck/data.pkl", "ck/constants.pkl"}, ErrTorchScript, "TorchScript"},
		{"not in a directory", map[string][]byte{"data.pkl": []byte("N.")},
			[]string{"data.pkl"}, ErrNotTorch, "archive directory"},
		{"pickle of None", map[string][]byte{"ck/data.pkl": []byte("\x80\x02N.")},
			[]string{"ck/data.pkl"}, ErrNoWeights, "holds a None"},
		{"bad opcode", map[string][]byte{"ck/data.pkl": []byte("\x80\x02\xff.")},
			[]string{"ck/data.pkl"}, ErrCorrupt, "unknown opcode 0xff"},
		{"checkpoint without weights", map[string][]byte{"ck/data.pkl": []byte("\x80\x02}(X\x05\x00\x00\x00modelNX\x03\x00\x00\x00emaNu.")},
			[]string{"ck/data.pkl"}, ErrNoWeights, "both None"},
		{"big endian", map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 1, 0, []byte{1}, []byte{1}), "ck/data/0": {0x3f, 0xc0, 0, 0}, "ck/byteorder": []byte("big")},
			[]string{"ck/data.pkl", "ck/data/0", "ck/byteorder"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := zipOf(t, tt.records, tt.order...)
			f, err := Read(bytes.NewReader(b), int64(len(b)), tt.name+".pt")
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				shape, _ := f.Shape("w")
				if _, err := f.Tensor("w", shape); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.name+".pt") || !strings.Contains(msg, tt.text) {
				t.Errorf("error %q does not name the file and %q", msg, tt.text)
			}
		})
	}
}

func TestBigEndianValue(t *testing.T) {
	b := zipOf(t, map[string][]byte{"ck/data.pkl": tensorPickle("FloatStorage", 1, 0, []byte{1}, []byte{1}), "ck/data/0": {0x3f, 0xc0, 0, 0}, "ck/byteorder": []byte("big")},
		"ck/data.pkl", "ck/data/0", "ck/byteorder")
	f, err := Read(bytes.NewReader(b), int64(len(b)), "be.pt")
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Tensor("w", []int{1})
	if err != nil || v[0] != 1.5 {
		t.Fatalf("Tensor = %v, %v, want [1.5]", v, err)
	}
}

// TestDeclaredSizesRefusedBeforeReading: a zip entry that claims more bytes
// than the limits is refused from its header, before any is read.
func TestDeclaredSizesRefusedBeforeReading(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	fw, err := w.CreateRaw(&zip.FileHeader{Name: "ck/data.pkl", Method: zip.Store, UncompressedSize64: 1 << 40, CompressedSize64: 2})
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte("N."))
	w.Close()
	_, err = Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "huge.pt")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "huge.pt") {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
	_, err = Read(bytes.NewReader(nil), MaxFileSize+1, "toolarge.pt")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "toolarge.pt") {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
}
