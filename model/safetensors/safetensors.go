// Package safetensors reads tensors from files in the Hugging Face
// safetensors format, so trained PyTorch weights can feed the model builders.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// Sentinel errors. Every returned error wraps one of them and names the file
// (and the tensor, where one is at fault).
var (
	// ErrHeader means the JSON header is malformed or describes an impossible tensor.
	ErrHeader = errors.New("malformed safetensors header")
	// ErrHeaderTooLarge means the header length exceeds MaxHeaderSize.
	ErrHeaderTooLarge = errors.New("safetensors header too large")
	// ErrTruncated means the file ends before its header or data does.
	ErrTruncated = errors.New("safetensors file truncated")
	// ErrOffsets means a tensor's data_offsets fall outside the data or overlap another tensor.
	ErrOffsets = errors.New("bad safetensors data offsets")
	// ErrMissing means the file holds no tensor of the requested name.
	ErrMissing = errors.New("tensor not found")
	// ErrShape means the stored shape differs from the requested one.
	ErrShape = errors.New("tensor shape mismatch")
	// ErrDtype means the tensor's dtype cannot be read as float32.
	ErrDtype = errors.New("unsupported tensor dtype")
)

// MaxHeaderSize caps the JSON header (the reference implementation uses the same 100 MB).
const MaxHeaderSize = 100 << 20

// dtypeSizes lists the dtypes of the format and their element sizes, so a
// file is validated whole even when it holds tensors we never read.
var dtypeSizes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// File is a decoded safetensors file held in memory.
type File struct {
	name     string
	data     []byte // the byte buffer after the header
	tensors  map[string]entry
	metadata map[string]string
}

type entry struct {
	dtype string
	shape []int64
	begin int64
	end   int64
}

type headerEntry struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Open reads and validates the safetensors file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat safetensors %s: %w", path, err)
	}
	// Check the header length before reading, so a crafted prefix cannot make
	// us read a huge file only to reject it.
	var prefix [8]byte
	if _, err := io.ReadFull(f, prefix[:]); err != nil {
		return nil, fmt.Errorf("read safetensors %s: %w: %d bytes, need at least 8", path, ErrTruncated, st.Size())
	}
	if n := binary.LittleEndian.Uint64(prefix[:]); n > MaxHeaderSize {
		return nil, fmt.Errorf("read safetensors %s: %w: %d bytes (max %d)", path, ErrHeaderTooLarge, n, MaxHeaderSize)
	}
	b := make([]byte, st.Size())
	copy(b, prefix[:])
	if _, err := io.ReadFull(f, b[8:]); err != nil {
		return nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	return Decode(b, path)
}

// Decode parses a safetensors file held in b; name labels errors (a path,
// usually). The returned File keeps b.
func Decode(b []byte, name string) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("decode safetensors %s: %w: %d bytes, need at least 8", name, ErrTruncated, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("decode safetensors %s: %w: %d bytes (max %d)", name, ErrHeaderTooLarge, n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("decode safetensors %s: %w: header of %d bytes, file has %d after the length", name, ErrTruncated, n, len(b)-8)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("decode safetensors %s: %w: %v", name, ErrHeader, err)
	}
	f := &File{name: name, data: b[8+n:], tensors: make(map[string]entry, len(raw))}
	for key, msg := range raw {
		if key == "__metadata__" {
			if err := json.Unmarshal(msg, &f.metadata); err != nil {
				return nil, fmt.Errorf("decode safetensors %s: %w: __metadata__: %v", name, ErrHeader, err)
			}
			continue
		}
		var h headerEntry
		if err := json.Unmarshal(msg, &h); err != nil {
			return nil, fmt.Errorf("decode safetensors %s: tensor %s: %w: %v", name, key, ErrHeader, err)
		}
		e, err := f.check(key, h)
		if err != nil {
			return nil, fmt.Errorf("decode safetensors %s: tensor %s: %w", name, key, err)
		}
		f.tensors[key] = e
	}
	if err := f.checkOverlap(); err != nil {
		return nil, fmt.Errorf("decode safetensors %s: %w", name, err)
	}
	return f, nil
}

// check validates one header entry against the data buffer.
func (f *File) check(key string, h headerEntry) (entry, error) {
	size, ok := dtypeSizes[h.Dtype]
	if !ok {
		return entry{}, fmt.Errorf("%w: unknown dtype %q", ErrHeader, h.Dtype)
	}
	if h.Shape == nil {
		return entry{}, fmt.Errorf("%w: no shape", ErrHeader)
	}
	count := int64(1)
	for _, d := range h.Shape {
		if d < 0 || (d > 0 && count > math.MaxInt64/size/d) {
			return entry{}, fmt.Errorf("%w: impossible shape %v", ErrHeader, h.Shape)
		}
		count *= d
	}
	if len(h.DataOffsets) != 2 {
		return entry{}, fmt.Errorf("%w: data_offsets %v is not [begin, end]", ErrHeader, h.DataOffsets)
	}
	begin, end := h.DataOffsets[0], h.DataOffsets[1]
	if begin < 0 || end < begin {
		return entry{}, fmt.Errorf("%w: [%d, %d]", ErrOffsets, begin, end)
	}
	if end > int64(len(f.data)) {
		// A short file and a crafted offset look the same from here.
		return entry{}, fmt.Errorf("%w or %w: [%d, %d] ends past the %d data bytes", ErrTruncated, ErrOffsets, begin, end, len(f.data))
	}
	if end-begin != count*size {
		return entry{}, fmt.Errorf("%w: [%d, %d] holds %d bytes, %s%v needs %d", ErrOffsets, begin, end, end-begin, h.Dtype, h.Shape, count*size)
	}
	return entry{dtype: h.Dtype, shape: h.Shape, begin: begin, end: end}, nil
}

// checkOverlap rejects tensors sharing bytes: a writer never produces them,
// and aliasing would let one crafted file alter two weights at once.
func (f *File) checkOverlap() error {
	names := make([]string, 0, len(f.tensors))
	for k, e := range f.tensors {
		if e.end > e.begin {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := f.tensors[names[i]], f.tensors[names[j]]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		return names[i] < names[j]
	})
	for i := 1; i < len(names); i++ {
		prev, cur := f.tensors[names[i-1]], f.tensors[names[i]]
		if cur.begin < prev.end {
			return fmt.Errorf("tensor %s: %w: [%d, %d] overlaps %s [%d, %d]", names[i], ErrOffsets, cur.begin, cur.end, names[i-1], prev.begin, prev.end)
		}
	}
	return nil
}

// Name is the label the file was opened or decoded with.
func (f *File) Name() string { return f.name }

// Names lists the tensors in the file, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for k := range f.tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Metadata returns the header's __metadata__ strings (nil when absent).
func (f *File) Metadata() map[string]string { return f.metadata }

// Shape returns the stored shape of the named tensor, and whether the file
// holds it, so a model builder can learn the tensor set without reading data.
func (f *File) Shape(name string) ([]int, bool) {
	e, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	s := make([]int, len(e.shape))
	for i, d := range e.shape {
		// check bounded each dimension by the data size, so it fits an int.
		s[i] = int(d)
	}
	return s, true
}

// Tensor returns the named tensor as float32, converting from F16, BF16 or
// F64. Its stored shape must equal shape exactly.
func (f *File) Tensor(name string, shape []int) ([]float32, error) {
	e, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("read tensor %s from %s: %w", name, f.name, ErrMissing)
	}
	if !sameShape(e.shape, shape) {
		return nil, fmt.Errorf("read tensor %s from %s: %w: file has %v, want %v", name, f.name, ErrShape, e.shape, shape)
	}
	b := f.data[e.begin:e.end]
	var out []float32
	switch e.dtype {
	case "F32":
		out = make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F16":
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = onnx.HalfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "BF16":
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case "F64":
		out = make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	default:
		return nil, fmt.Errorf("read tensor %s from %s: %w: %s (want F32, F16, BF16 or F64)", name, f.name, ErrDtype, e.dtype)
	}
	return out, nil
}

func sameShape(have []int64, want []int) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		if have[i] != int64(want[i]) {
			return false
		}
	}
	return true
}

// String summarises the file for logs.
func (f *File) String() string {
	return fmt.Sprintf("safetensors %s (%d tensors)", f.name, len(f.tensors))
}
