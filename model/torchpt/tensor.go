package torchpt

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/pickle"
)

// readStorages reads the records of the storages the state_dict (and the
// model's stride) use; those of an optimizer or an unused ema stay on disk.
func (f *File) readStorages(a *archive) error {
	need := make([]*tensor, 0, len(f.tensors)+1)
	for _, n := range f.names {
		need = append(need, f.tensors[n])
	}
	if t := f.strideTensor; t != nil {
		need = append(need, t)
	}
	for _, t := range need {
		t.bigEndian = a.bigEndian
		if t.st.data != nil || t.st.numel == 0 {
			continue
		}
		b, err := readEntry(t.st.entry, t.st.numel*int64(t.st.dtype.size))
		if err != nil {
			return err
		}
		t.st.data = b
	}
	return nil
}

// findStride remembers the model's stride attribute, when it is a tensor, so
// its storage is read with the state_dict's.
func (f *File) findStride(attrs *pickle.Dict) error {
	v, ok := attrs.Get("stride")
	if !ok || v == nil {
		return nil
	}
	switch x := v.(type) {
	case *tensor:
		f.strideTensor = x
	case *pickle.List, pickle.Tuple:
		items := x.(pickle.Tuple)
		if l, ok := x.(*pickle.List); ok {
			items = l.Items
		}
		for _, it := range items {
			switch n := it.(type) {
			case int64:
				f.strides = append(f.strides, float64(n))
			case float64:
				f.strides = append(f.strides, n)
			default:
				return fmt.Errorf("%w: model stride holds a %s", ErrCorrupt, describe(it))
			}
		}
	default:
		return fmt.Errorf("%w: model stride is a %s, want a tensor or list", ErrCorrupt, describe(v))
	}
	return nil
}

func (f *File) loadStrides() error {
	t := f.strideTensor
	if t == nil {
		return nil
	}
	vals, err := t.float32s()
	if err != nil {
		return fmt.Errorf("model stride: %w", err)
	}
	f.strides = make([]float64, len(vals))
	for i, v := range vals {
		f.strides[i] = float64(v)
	}
	return nil
}

// Shape returns the stored shape of the named tensor.
func (f *File) Shape(name string) ([]int, bool) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(t.shape), true
}

// DType names the named tensor's element type as torch does ("float16",
// "float32", "bfloat16", "int64", ...); "" when there is no such tensor.
func (f *File) DType(name string) string {
	t, ok := f.tensors[name]
	if !ok {
		return ""
	}
	return t.dtype.name
}

// Tensor returns the named tensor as float32 in row-major order, converting
// from float16, bfloat16, float64 and the integer types, and following its
// storage offset and strides. Its stored shape must equal shape exactly.
func (f *File) Tensor(name string, shape []int) ([]float32, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("read tensor %s from %s: %w", name, f.name, ErrMissing)
	}
	if !slices.Equal(t.shape, shape) {
		return nil, fmt.Errorf("read tensor %s from %s: %w: file has %v, want %v", name, f.name, ErrShape, t.shape, shape)
	}
	out, err := t.float32s()
	if err != nil {
		return nil, fmt.Errorf("read tensor %s from %s: %w", name, f.name, err)
	}
	return out, nil
}

func (t *tensor) float32s() ([]float32, error) {
	var order binary.ByteOrder = binary.LittleEndian
	if t.bigEndian {
		order = binary.BigEndian
	}
	conv, err := converter(t.dtype, order)
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.numel)
	if t.numel == 0 {
		return out, nil
	}
	data, size := t.st.data, int64(t.dtype.size)
	pos := t.offset
	idx := make([]int, len(t.shape))
	for i := range out {
		out[i] = conv(data[pos*size:])
		// Step the index like an odometer, last dimension fastest.
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.shape[d] {
				break
			}
			pos -= t.stride[d] * int64(t.shape[d])
			idx[d] = 0
		}
	}
	return out, nil
}

func converter(dt dtype, order binary.ByteOrder) (func([]byte) float32, error) {
	switch dt.name {
	case "float32":
		return func(b []byte) float32 { return math.Float32frombits(order.Uint32(b)) }, nil
	case "float16":
		return func(b []byte) float32 { return onnx.HalfToFloat(order.Uint16(b)) }, nil
	case "bfloat16":
		return func(b []byte) float32 { return math.Float32frombits(uint32(order.Uint16(b)) << 16) }, nil
	case "float64":
		return func(b []byte) float32 { return float32(math.Float64frombits(order.Uint64(b))) }, nil
	case "int64":
		return func(b []byte) float32 { return float32(int64(order.Uint64(b))) }, nil
	case "int32":
		return func(b []byte) float32 { return float32(int32(order.Uint32(b))) }, nil
	case "int16":
		return func(b []byte) float32 { return float32(int16(order.Uint16(b))) }, nil
	case "int8":
		return func(b []byte) float32 { return float32(int8(b[0])) }, nil
	case "uint8", "bool":
		return func(b []byte) float32 { return float32(b[0]) }, nil
	}
	return nil, fmt.Errorf("%w: %s (want a float or integer type)", ErrDtype, dt.name)
}
