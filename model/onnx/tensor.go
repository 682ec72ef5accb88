package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
)

// NewFloat returns a FLOAT tensor holding data in raw little-endian form.
func NewFloat(name string, dims []int64, data []float32) *Tensor {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, Dims: append([]int64(nil), dims...), DataType: Float, RawData: raw}
}

// NewInt64 returns an INT64 tensor holding data in raw little-endian form.
func NewInt64(name string, dims []int64, data []int64) *Tensor {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &Tensor{Name: name, Dims: append([]int64(nil), dims...), DataType: Int64, RawData: raw}
}

// NumElements is the product of the tensor's dims (1 for a scalar), or -1
// when a dim is negative or the product overflows.
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return -1
		}
		n *= d
	}
	return n
}

// Floats returns the tensor's values as float32, converting from FLOAT,
// FLOAT16 or DOUBLE storage. The element count must match the dims.
func (t *Tensor) Floats() ([]float32, error) {
	n := t.NumElements()
	if n < 0 {
		return nil, fmt.Errorf("tensor %q: %w: dims %v", t.Name, ErrTensorData, t.Dims)
	}
	var out []float32
	switch {
	case len(t.unknownExternal()) > 0:
		return nil, fmt.Errorf("tensor %q: external data is not supported; save the model with all tensors inside", t.Name)
	case t.DataType == Float && t.RawData != nil:
		if int64(len(t.RawData)) != 4*n {
			return nil, fmt.Errorf("tensor %q: %w: %d raw bytes for %d FLOAT values", t.Name, ErrTensorData, len(t.RawData), n)
		}
		out = make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
	case t.DataType == Float:
		out = append([]float32(nil), t.FloatData...)
	case t.DataType == Double && t.RawData != nil:
		if int64(len(t.RawData)) != 8*n {
			return nil, fmt.Errorf("tensor %q: %w: %d raw bytes for %d DOUBLE values", t.Name, ErrTensorData, len(t.RawData), n)
		}
		out = make([]float32, n)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.RawData[8*i:])))
		}
	case t.DataType == Double:
		out = make([]float32, len(t.DoubleData))
		for i, v := range t.DoubleData {
			out[i] = float32(v)
		}
	case t.DataType == Float16 && t.RawData != nil:
		if int64(len(t.RawData)) != 2*n {
			return nil, fmt.Errorf("tensor %q: %w: %d raw bytes for %d FLOAT16 values", t.Name, ErrTensorData, len(t.RawData), n)
		}
		out = make([]float32, n)
		for i := range out {
			out[i] = HalfToFloat(binary.LittleEndian.Uint16(t.RawData[2*i:]))
		}
	case t.DataType == Float16:
		// FLOAT16 values travel in int32_data, one per element.
		out = make([]float32, len(t.Int32Data))
		for i, v := range t.Int32Data {
			out[i] = HalfToFloat(uint16(v))
		}
	default:
		return nil, fmt.Errorf("tensor %q: data type %s is not a float type", t.Name, t.DataType)
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("tensor %q: %w: %d values for dims %v", t.Name, ErrTensorData, len(out), t.Dims)
	}
	return out, nil
}

// Int64s returns the tensor's values as int64, from INT64 or INT32 storage.
func (t *Tensor) Int64s() ([]int64, error) {
	n := t.NumElements()
	if n < 0 {
		return nil, fmt.Errorf("tensor %q: %w: dims %v", t.Name, ErrTensorData, t.Dims)
	}
	var out []int64
	switch {
	case t.DataType == Int64 && t.RawData != nil:
		if int64(len(t.RawData)) != 8*n {
			return nil, fmt.Errorf("tensor %q: %w: %d raw bytes for %d INT64 values", t.Name, ErrTensorData, len(t.RawData), n)
		}
		out = make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.RawData[8*i:]))
		}
	case t.DataType == Int64:
		out = append([]int64(nil), t.Int64Data...)
	case t.DataType == Int32 && t.RawData != nil:
		if int64(len(t.RawData)) != 4*n {
			return nil, fmt.Errorf("tensor %q: %w: %d raw bytes for %d INT32 values", t.Name, ErrTensorData, len(t.RawData), n)
		}
		out = make([]int64, n)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.RawData[4*i:])))
		}
	case t.DataType == Int32:
		out = make([]int64, len(t.Int32Data))
		for i, v := range t.Int32Data {
			out[i] = int64(v)
		}
	default:
		return nil, fmt.Errorf("tensor %q: data type %s is not an integer type", t.Name, t.DataType)
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("tensor %q: %w: %d values for dims %v", t.Name, ErrTensorData, len(out), t.Dims)
	}
	return out, nil
}

// unknownExternal reports the kept bytes when the tensor refers to external
// data (data_location = EXTERNAL or external_data entries).
func (t *Tensor) unknownExternal() []byte {
	var ext []byte
	_ = walk(t.unknown, "TensorProto", func(f field) error {
		if f.num == 13 || (f.num == 14 && f.scalar == 1) {
			ext = append(ext, f.raw...)
		}
		return nil
	})
	return ext
}

// HalfToFloat converts an IEEE 754 binary16 value to float32.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// FloatToHalf converts a float32 to the nearest IEEE 754 binary16 value,
// ties to even, as a cast in torch or ONNX Runtime does: values beyond the
// half range become infinities, NaN stays NaN.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	if exp > 112 && exp < 143 {
		// A normal half, the common case, without branches: rebias the
		// exponent, add just under half a unit (one more when the kept
		// mantissa is odd: ties to even) and let a carry run on.
		v := b&0x7fffffff - 112<<23
		v += 0xfff + (v>>13)&1
		return sign | uint16(v>>13)
	}
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	var h, rem, half uint32
	if e := exp - 112; e > 0 {
		if e >= 0x1f {
			return sign | 0x7c00
		}
		h, rem, half = uint32(e)<<10|mant>>13, mant&0x1fff, 0x1000
	} else {
		// A half subnormal counts units of 2^-24.
		shift := uint32(126 - exp)
		if shift > 25 {
			return sign
		}
		m := mant | 0x800000
		h, rem, half = m>>shift, m&(1<<shift-1), 1<<(shift-1)
	}
	// A carry out of the mantissa moves into the exponent, as it should.
	if rem > half || rem == half && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}

// Attr returns the node's attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttrInt returns an INT attribute's value, or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

// AttrInts returns an INTS attribute's values, or def when absent.
func (n *Node) AttrInts(name string, def []int64) []int64 {
	if a := n.Attr(name); a != nil {
		return a.Ints
	}
	return def
}

// AttrFloat returns a FLOAT attribute's value, or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.F
	}
	return def
}

// AttrString returns a STRING attribute's value, or def when absent.
func (n *Node) AttrString(name string, def string) string {
	if a := n.Attr(name); a != nil {
		return string(a.S)
	}
	return def
}

// Int builds an INT attribute.
func Int(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, I: v} }

// Ints builds an INTS attribute.
func Ints(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: v}
}

// FloatAttr builds a FLOAT attribute.
func FloatAttr(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}

// StringAttr builds a STRING attribute.
func StringAttr(name, v string) *Attribute {
	return &Attribute{Name: name, Type: AttrString, S: []byte(v)}
}

// TensorValue builds a graph input or output of the given element type and
// shape; a dim of -1 or a non-empty param makes it symbolic.
func TensorValue(name string, elem DataType, shape ...Dim) *ValueInfo {
	return &ValueInfo{Name: name, Type: &Type{Tensor: &TensorType{ElemType: elem, Shape: shape, HasShape: true}}}
}
