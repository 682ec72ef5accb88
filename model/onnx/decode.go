package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Decode parses an ONNX ModelProto. It never panics on bad input: every
// failure is an error wrapping ErrMalformed or ErrTooDeep.
func Decode(b []byte) (*Model, error) {
	m := &Model{}
	err := walk(b, "ModelProto", func(f field) error {
		switch f.num {
		case 1:
			return f.int64(&m.IRVersion)
		case 2:
			return f.string(&m.ProducerName)
		case 3:
			return f.string(&m.ProducerVersion)
		case 4:
			return f.string(&m.Domain)
		case 5:
			return f.int64(&m.ModelVersion)
		case 6:
			return f.string(&m.DocString)
		case 7:
			g, err := decodeGraph(f, 0)
			m.Graph = g
			return err
		case 8:
			var op OpsetID
			err := f.message("OperatorSetIdProto", func(f field) error {
				switch f.num {
				case 1:
					return f.string(&op.Domain)
				case 2:
					return f.int64(&op.Version)
				}
				return f.skip()
			})
			m.OpsetImports = append(m.OpsetImports, op)
			return err
		case 14:
			var kv StringPair
			err := f.message("StringStringEntryProto", func(f field) error {
				switch f.num {
				case 1:
					return f.string(&kv.Key)
				case 2:
					return f.string(&kv.Value)
				}
				return f.skip()
			})
			m.Metadata = append(m.Metadata, kv)
			return err
		}
		return f.keep(&m.unknown)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func decodeGraph(f field, depth int) (*Graph, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w (more than %d levels)", ErrTooDeep, MaxDepth)
	}
	g := &Graph{}
	err := f.message("GraphProto", func(f field) error {
		switch f.num {
		case 1:
			n, err := decodeNode(f, depth)
			g.Nodes = append(g.Nodes, n)
			return err
		case 2:
			return f.string(&g.Name)
		case 5:
			t, err := decodeTensor(f)
			g.Initializers = append(g.Initializers, t)
			return err
		case 10:
			return f.string(&g.DocString)
		case 11, 12, 13:
			vi, err := decodeValueInfo(f)
			switch f.num {
			case 11:
				g.Inputs = append(g.Inputs, vi)
			case 12:
				g.Outputs = append(g.Outputs, vi)
			default:
				g.ValueInfo = append(g.ValueInfo, vi)
			}
			return err
		}
		return f.keep(&g.unknown)
	})
	return g, err
}

func decodeNode(f field, depth int) (*Node, error) {
	n := &Node{}
	err := f.message("NodeProto", func(f field) error {
		switch f.num {
		case 1:
			return f.appendString(&n.Inputs)
		case 2:
			return f.appendString(&n.Outputs)
		case 3:
			return f.string(&n.Name)
		case 4:
			return f.string(&n.OpType)
		case 5:
			a, err := decodeAttribute(f, depth)
			n.Attrs = append(n.Attrs, a)
			return err
		case 6:
			return f.string(&n.DocString)
		case 7:
			return f.string(&n.Domain)
		}
		return f.keep(&n.unknown)
	})
	return n, err
}

func decodeAttribute(f field, depth int) (*Attribute, error) {
	a := &Attribute{}
	err := f.message("AttributeProto", func(f field) error {
		switch f.num {
		case 1:
			return f.string(&a.Name)
		case 2:
			return f.float32(&a.F)
		case 3:
			return f.int64(&a.I)
		case 4:
			return f.bytes(&a.S)
		case 5:
			t, err := decodeTensor(f)
			a.T = t
			return err
		case 6:
			g, err := decodeGraph(f, depth+1)
			a.G = g
			return err
		case 7:
			return f.float32s(&a.Floats)
		case 8:
			return f.int64s(&a.Ints)
		case 9:
			var s []byte
			err := f.bytes(&s)
			a.Strings = append(a.Strings, s)
			return err
		case 10:
			t, err := decodeTensor(f)
			a.Tensors = append(a.Tensors, t)
			return err
		case 11:
			g, err := decodeGraph(f, depth+1)
			a.Graphs = append(a.Graphs, g)
			return err
		case 13:
			return f.string(&a.DocString)
		case 20:
			var t int64
			err := f.int64(&t)
			a.Type = AttrType(t)
			return err
		case 21:
			return f.string(&a.RefAttrName)
		}
		return f.keep(&a.unknown)
	})
	return a, err
}

func decodeTensor(f field) (*Tensor, error) {
	t := &Tensor{}
	err := f.message("TensorProto", func(f field) error {
		switch f.num {
		case 1:
			return f.int64s(&t.Dims)
		case 2:
			var d int64
			err := f.int64(&d)
			t.DataType = DataType(d)
			return err
		case 4:
			return f.float32s(&t.FloatData)
		case 5:
			var v []int64
			if err := f.int64s(&v); err != nil {
				return err
			}
			for _, x := range v {
				t.Int32Data = append(t.Int32Data, int32(x))
			}
			return nil
		case 6:
			var s []byte
			err := f.bytes(&s)
			t.StringData = append(t.StringData, s)
			return err
		case 7:
			return f.int64s(&t.Int64Data)
		case 8:
			return f.string(&t.Name)
		case 9:
			return f.bytes(&t.RawData)
		case 10:
			return f.float64s(&t.DoubleData)
		case 11:
			var v []int64
			if err := f.int64s(&v); err != nil {
				return err
			}
			for _, x := range v {
				t.Uint64Data = append(t.Uint64Data, uint64(x))
			}
			return nil
		case 12:
			return f.string(&t.DocString)
		}
		return f.keep(&t.unknown)
	})
	return t, err
}

func decodeValueInfo(f field) (*ValueInfo, error) {
	vi := &ValueInfo{}
	err := f.message("ValueInfoProto", func(f field) error {
		switch f.num {
		case 1:
			return f.string(&vi.Name)
		case 2:
			t, err := decodeType(f)
			vi.Type = t
			return err
		case 3:
			return f.string(&vi.DocString)
		}
		return f.keep(&vi.unknown)
	})
	return vi, err
}

func decodeType(f field) (*Type, error) {
	t := &Type{}
	err := f.message("TypeProto", func(f field) error {
		switch f.num {
		case 1:
			tt := &TensorType{}
			t.Tensor = tt
			return f.message("TypeProto.Tensor", func(f field) error {
				switch f.num {
				case 1:
					var e int64
					err := f.int64(&e)
					tt.ElemType = DataType(e)
					return err
				case 2:
					tt.HasShape = true
					return f.message("TensorShapeProto", func(f field) error {
						if f.num != 1 {
							return f.skip()
						}
						var d Dim
						err := f.message("Dimension", func(f field) error {
							switch f.num {
							case 1:
								return f.int64(&d.Value)
							case 2:
								return f.string(&d.Param)
							case 3:
								return f.string(&d.Denotation)
							}
							return f.skip()
						})
						tt.Shape = append(tt.Shape, d)
						return err
					})
				}
				return f.keep(&tt.unknown)
			})
		case 6:
			return f.string(&t.Denotation)
		}
		return f.keep(&t.unknown)
	})
	return t, err
}

// field is one decoded protobuf field: its number and wire type, the value's
// bytes (for length-delimited fields) or scalar, and the raw encoding of the
// whole field so unknown fields can be kept verbatim.
type field struct {
	msg    string
	num    protowire.Number
	typ    protowire.Type
	scalar uint64
	data   []byte
	raw    []byte
}

// walk calls fn for every field of the message encoded in b.
func walk(b []byte, msg string, fn func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %s: bad tag: %v", ErrMalformed, msg, protowire.ParseError(n))
		}
		f := field{msg: msg, num: num, typ: typ}
		m := n
		switch typ {
		case protowire.VarintType:
			v, k := protowire.ConsumeVarint(b[n:])
			f.scalar, m = v, n+k
			if k < 0 {
				m = k
			}
		case protowire.Fixed32Type:
			v, k := protowire.ConsumeFixed32(b[n:])
			f.scalar, m = uint64(v), n+k
			if k < 0 {
				m = k
			}
		case protowire.Fixed64Type:
			v, k := protowire.ConsumeFixed64(b[n:])
			f.scalar, m = v, n+k
			if k < 0 {
				m = k
			}
		case protowire.BytesType:
			v, k := protowire.ConsumeBytes(b[n:])
			f.data, m = v, n+k
			if k < 0 {
				m = k
			}
		default:
			k := protowire.ConsumeFieldValue(num, typ, b[n:])
			m = n + k
			if k < 0 {
				m = k
			}
		}
		if m < 0 {
			return fmt.Errorf("%w: %s field %d: %v", ErrMalformed, msg, num, protowire.ParseError(m))
		}
		f.raw = b[:m]
		if err := fn(f); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

func (f field) wrong() error {
	return fmt.Errorf("%w: %s field %d has wire type %d", ErrMalformed, f.msg, f.num, f.typ)
}

func (f field) skip() error { return nil }

func (f field) keep(dst *[]byte) error {
	*dst = append(*dst, f.raw...)
	return nil
}

func (f field) message(name string, fn func(field) error) error {
	if f.typ != protowire.BytesType {
		return f.wrong()
	}
	return walk(f.data, name, fn)
}

func (f field) int64(dst *int64) error {
	if f.typ != protowire.VarintType {
		return f.wrong()
	}
	*dst = int64(f.scalar)
	return nil
}

func (f field) float32(dst *float32) error {
	if f.typ != protowire.Fixed32Type {
		return f.wrong()
	}
	*dst = math.Float32frombits(uint32(f.scalar))
	return nil
}

func (f field) bytes(dst *[]byte) error {
	if f.typ != protowire.BytesType {
		return f.wrong()
	}
	*dst = append([]byte{}, f.data...)
	return nil
}

func (f field) string(dst *string) error {
	if f.typ != protowire.BytesType {
		return f.wrong()
	}
	*dst = string(f.data)
	return nil
}

func (f field) appendString(dst *[]string) error {
	var s string
	if err := f.string(&s); err != nil {
		return err
	}
	*dst = append(*dst, s)
	return nil
}

// int64s reads a repeated varint field, packed or not.
func (f field) int64s(dst *[]int64) error {
	switch f.typ {
	case protowire.VarintType:
		*dst = append(*dst, int64(f.scalar))
		return nil
	case protowire.BytesType:
		b := f.data
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: %s field %d: packed varint: %v", ErrMalformed, f.msg, f.num, protowire.ParseError(n))
			}
			*dst = append(*dst, int64(v))
			b = b[n:]
		}
		return nil
	}
	return f.wrong()
}

// float32s reads a repeated float field, packed or not.
func (f field) float32s(dst *[]float32) error {
	switch f.typ {
	case protowire.Fixed32Type:
		*dst = append(*dst, math.Float32frombits(uint32(f.scalar)))
		return nil
	case protowire.BytesType:
		if len(f.data)%4 != 0 {
			return fmt.Errorf("%w: %s field %d: packed floats of %d bytes", ErrMalformed, f.msg, f.num, len(f.data))
		}
		for i := 0; i < len(f.data); i += 4 {
			*dst = append(*dst, math.Float32frombits(binary.LittleEndian.Uint32(f.data[i:])))
		}
		return nil
	}
	return f.wrong()
}

// float64s reads a repeated double field, packed or not.
func (f field) float64s(dst *[]float64) error {
	switch f.typ {
	case protowire.Fixed64Type:
		*dst = append(*dst, math.Float64frombits(f.scalar))
		return nil
	case protowire.BytesType:
		if len(f.data)%8 != 0 {
			return fmt.Errorf("%w: %s field %d: packed doubles of %d bytes", ErrMalformed, f.msg, f.num, len(f.data))
		}
		for i := 0; i < len(f.data); i += 8 {
			*dst = append(*dst, math.Float64frombits(binary.LittleEndian.Uint64(f.data[i:])))
		}
		return nil
	}
	return f.wrong()
}
