package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// build assembles a file from a header and a data section, as a writer would.
func build(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func le32(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestTensorDtypes(t *testing.T) {
	var data []byte
	data = append(data, le32(1.5, -2, 0.25, 3)...) // a F32 [2,2] at 0..16
	for _, h := range []uint16{0x3c00, 0xc000, 0x0001, 0x7bff} {
		data = binary.LittleEndian.AppendUint16(data, h) // b F16 [4] at 16..24: 1, -2, 2^-24, 65504
	}
	for _, v := range []float32{1, -0.5} {
		data = binary.LittleEndian.AppendUint16(data, uint16(math.Float32bits(v)>>16)) // c BF16 [2] at 24..28
	}
	data = binary.LittleEndian.AppendUint64(data, math.Float64bits(0.1)) // d F64 [1] at 28..36
	data = binary.LittleEndian.AppendUint64(data, 7)                     // e I64 [] at 36..44
	header := `{"__metadata__":{"format":"pt"},` +
		`"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"b":{"dtype":"F16","shape":[4],"data_offsets":[16,24]},` +
		`"c":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]},` +
		`"d":{"dtype":"F64","shape":[1],"data_offsets":[28,36]},` +
		`"e":{"dtype":"I64","shape":[],"data_offsets":[36,44]}}`
	f, err := Decode(build(header, data), "mem.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Names(), []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if f.Metadata()["format"] != "pt" {
		t.Errorf("Metadata() = %v, want format=pt", f.Metadata())
	}
	tests := []struct {
		name  string
		shape []int
		want  []float32
	}{
		{"a", []int{2, 2}, []float32{1.5, -2, 0.25, 3}},
		{"b", []int{4}, []float32{1, -2, 1.0 / (1 << 24), 65504}},
		{"c", []int{2}, []float32{1, -0.5}},
		{"d", []int{1}, []float32{0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.Tensor(tt.name, tt.shape)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tensor(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestTensorErrors(t *testing.T) {
	header := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}`
	f, err := Decode(build(header, make([]byte, 12)), "weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tensor string
		shape  []int
		want   error
		substr []string
	}{
		{"missing", "nope", []int{2}, ErrMissing, []string{"nope", "weights.safetensors"}},
		{"shape", "w", []int{1, 2}, ErrShape, []string{"w", "weights.safetensors", "[2]", "[1 2]"}},
		{"dtype", "i", []int{1}, ErrDtype, []string{"i", "weights.safetensors", "I32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Tensor(tt.tensor, tt.shape)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Tensor(%s) error = %v, want %v", tt.tensor, err, tt.want)
			}
			for _, s := range tt.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   []byte
		want   error
		substr string
	}{
		{"empty", nil, ErrTruncated, ""},
		{"short length", []byte{1, 0, 0}, ErrTruncated, ""},
		{"header too large", binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1), ErrHeaderTooLarge, ""},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), ErrTruncated, ""},
		{"not json", build(`{"a":`, nil), ErrHeader, ""},
		{"not an object", build(`[1,2]`, nil), ErrHeader, ""},
		{"bad entry", build(`{"a":{"dtype":7}}`, nil), ErrHeader, "a"},
		{"bad metadata", build(`{"__metadata__":{"k":1}}`, nil), ErrHeader, "__metadata__"},
		{"unknown dtype", build(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), ErrHeader, "F128"},
		{"no shape", build(`{"a":{"dtype":"F32","data_offsets":[0,0]}}`, nil), ErrHeader, "a"},
		{"negative dim", build(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrHeader, "a"},
		{"overflowing shape", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrHeader, "a"},
		{"one offset", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, make([]byte, 4)), ErrHeader, "a"},
		{"offset past end", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), ErrOffsets, "a"},
		{"negative offset", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), ErrOffsets, "a"},
		{"reversed offsets", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), ErrOffsets, "a"},
		{"size mismatch", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrOffsets, "a"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrOffsets, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.file, "bad.safetensors")
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "bad.safetensors") || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("error %q does not name the file and %q", err, tt.substr)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	good, err := Encode(map[string]Tensor{
		"x":     {Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"empty": {Shape: []int{0}, Data: nil},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("round trip", func(t *testing.T) {
		f, err := Open(write("good.safetensors", good))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Tensor("x", []int{2, 3})
		if err != nil {
			t.Fatal(err)
		}
		if want := []float32{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
			t.Errorf("Tensor(x) = %v, want %v", got, want)
		}
		if got, err := f.Tensor("empty", []int{0}); err != nil || len(got) != 0 {
			t.Errorf("Tensor(empty) = %v, %v; want empty, nil", got, err)
		}
	})
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"truncated data", good[:len(good)-1], ErrTruncated},
		{"truncated length", good[:5], ErrTruncated},
		{"header too large", binary.LittleEndian.AppendUint64(nil, 1<<40), ErrHeaderTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tt.name, " ", "_")+".safetensors", tt.file)
			_, err := Open(p)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Open error = %v, want %v naming %s", err, tt.want, p)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := Open(filepath.Join(dir, "nope.safetensors")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open error = %v, want not exist", err)
		}
	})
}

// TestEncodeHalfAndMetadata: F16 tensors read back as the float32 values
// they round to, beside F32 ones, with the metadata kept.
func TestEncodeHalfAndMetadata(t *testing.T) {
	in := []float32{1, -2.5, 0.1, 65504, 1e-8}
	b, err := Encode(map[string]Tensor{
		"h": {Shape: []int{5}, Data: in, Half: true},
		"f": {Shape: []int{1}, Data: []float32{0.1}},
	}, map[string]string{"names": "{0: 'person'}"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(b, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata()["names"]; got != "{0: 'person'}" {
		t.Errorf("metadata names = %q", got)
	}
	h, err := f.Tensor("h", []int{5})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2.5, 0.099975586, 65504, 0}
	for i := range want {
		if h[i] != want[i] {
			t.Errorf("h[%d] = %v, want %v (F16 of %v)", i, h[i], want[i], in[i])
		}
	}
	if v, err := f.Tensor("f", []int{1}); err != nil || v[0] != 0.1 {
		t.Errorf("f = %v, %v; want [0.1] as F32", v, err)
	}
	if len(b) != 8+int(binary.LittleEndian.Uint64(b))+5*2+4 {
		t.Errorf("file is %d bytes: F16 data should take 2 bytes a value", len(b))
	}
}

func TestEncodeErrors(t *testing.T) {
	for name, tt := range map[string]Tensor{
		"count":        {Shape: []int{3}, Data: []float32{1}},
		"negative dim": {Shape: []int{-1, -1}, Data: []float32{1}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Encode(map[string]Tensor{"t": tt}, nil); !errors.Is(err, ErrShape) {
				t.Errorf("Encode error = %v, want %v", err, ErrShape)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	good, err := Encode(map[string]Tensor{"a": {Shape: []int{2}, Data: []float32{1, 2}}, "b": {Shape: []int{1, 1}, Data: []float32{3}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(build(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"__metadata__":{"k":"v"}}`, make([]byte, 4)))
	f.Add(build(`{"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F64","shape":[1],"data_offsets":[2,10]}}`, make([]byte, 10)))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(b, "fuzz")
		if err != nil {
			return
		}
		for _, name := range file.Names() {
			shape, ok := file.Shape(name)
			if !ok {
				t.Fatalf("Names lists %s, Shape does not know it", name)
			}
			_, _ = file.Tensor(name, shape)
		}
	})
}
