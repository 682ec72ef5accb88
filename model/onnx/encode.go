package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Encode serialises m as an ONNX ModelProto. Fields are written in field
// number order, as protoc does; unknown fields kept by Decode follow.
func Encode(m *Model) []byte {
	var b []byte
	b = putInt(b, 1, m.IRVersion)
	b = putString(b, 2, m.ProducerName)
	b = putString(b, 3, m.ProducerVersion)
	b = putString(b, 4, m.Domain)
	b = putInt(b, 5, m.ModelVersion)
	b = putString(b, 6, m.DocString)
	if m.Graph != nil {
		b = putMessage(b, 7, encodeGraph(m.Graph))
	}
	for _, op := range m.OpsetImports {
		var o []byte
		o = putString(o, 1, op.Domain)
		o = putInt(o, 2, op.Version)
		b = putMessage(b, 8, o)
	}
	for _, kv := range m.Metadata {
		var e []byte
		e = putString(e, 1, kv.Key)
		e = putString(e, 2, kv.Value)
		b = putMessage(b, 14, e)
	}
	return append(b, m.unknown...)
}

func encodeGraph(g *Graph) []byte {
	var b []byte
	for _, n := range g.Nodes {
		b = putMessage(b, 1, encodeNode(n))
	}
	b = putString(b, 2, g.Name)
	for _, t := range g.Initializers {
		b = putMessage(b, 5, encodeTensor(t))
	}
	b = putString(b, 10, g.DocString)
	for _, vi := range g.Inputs {
		b = putMessage(b, 11, encodeValueInfo(vi))
	}
	for _, vi := range g.Outputs {
		b = putMessage(b, 12, encodeValueInfo(vi))
	}
	for _, vi := range g.ValueInfo {
		b = putMessage(b, 13, encodeValueInfo(vi))
	}
	return append(b, g.unknown...)
}

func encodeNode(n *Node) []byte {
	var b []byte
	for _, s := range n.Inputs {
		b = putAlwaysBytes(b, 1, []byte(s))
	}
	for _, s := range n.Outputs {
		b = putAlwaysBytes(b, 2, []byte(s))
	}
	b = putString(b, 3, n.Name)
	b = putString(b, 4, n.OpType)
	for _, a := range n.Attrs {
		b = putMessage(b, 5, encodeAttribute(a))
	}
	b = putString(b, 6, n.DocString)
	b = putString(b, 7, n.Domain)
	return append(b, n.unknown...)
}

func encodeAttribute(a *Attribute) []byte {
	var b []byte
	b = putString(b, 1, a.Name)
	// The value field matching Type is written even when zero: proto2 presence
	// is what tells a reader that f=0.0 was meant.
	if a.F != 0 || a.Type == AttrFloat {
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	}
	if a.I != 0 || a.Type == AttrInt {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	}
	if a.S != nil || a.Type == AttrString {
		b = putAlwaysBytes(b, 4, a.S)
	}
	if a.T != nil {
		b = putMessage(b, 5, encodeTensor(a.T))
	}
	if a.G != nil {
		b = putMessage(b, 6, encodeGraph(a.G))
	}
	for _, f := range a.Floats {
		b = protowire.AppendTag(b, 7, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(f))
	}
	for _, i := range a.Ints {
		b = protowire.AppendTag(b, 8, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(i))
	}
	for _, s := range a.Strings {
		b = putAlwaysBytes(b, 9, s)
	}
	for _, t := range a.Tensors {
		b = putMessage(b, 10, encodeTensor(t))
	}
	for _, g := range a.Graphs {
		b = putMessage(b, 11, encodeGraph(g))
	}
	b = putString(b, 13, a.DocString)
	b = putInt(b, 20, int64(a.Type))
	b = putString(b, 21, a.RefAttrName)
	return append(b, a.unknown...)
}

func encodeTensor(t *Tensor) []byte {
	var b []byte
	b = putPackedVarints(b, 1, len(t.Dims), func(i int) uint64 { return uint64(t.Dims[i]) })
	b = putInt(b, 2, int64(t.DataType))
	if len(t.FloatData) > 0 {
		p := make([]byte, 0, 4*len(t.FloatData))
		for _, f := range t.FloatData {
			p = protowire.AppendFixed32(p, math.Float32bits(f))
		}
		b = putAlwaysBytes(b, 4, p)
	}
	b = putPackedVarints(b, 5, len(t.Int32Data), func(i int) uint64 { return uint64(int64(t.Int32Data[i])) })
	for _, s := range t.StringData {
		b = putAlwaysBytes(b, 6, s)
	}
	b = putPackedVarints(b, 7, len(t.Int64Data), func(i int) uint64 { return uint64(t.Int64Data[i]) })
	b = putString(b, 8, t.Name)
	if t.RawData != nil {
		b = putAlwaysBytes(b, 9, t.RawData)
	}
	if len(t.DoubleData) > 0 {
		p := make([]byte, 0, 8*len(t.DoubleData))
		for _, f := range t.DoubleData {
			p = protowire.AppendFixed64(p, math.Float64bits(f))
		}
		b = putAlwaysBytes(b, 10, p)
	}
	b = putPackedVarints(b, 11, len(t.Uint64Data), func(i int) uint64 { return t.Uint64Data[i] })
	b = putString(b, 12, t.DocString)
	return append(b, t.unknown...)
}

func encodeValueInfo(vi *ValueInfo) []byte {
	var b []byte
	b = putString(b, 1, vi.Name)
	if vi.Type != nil {
		b = putMessage(b, 2, encodeType(vi.Type))
	}
	b = putString(b, 3, vi.DocString)
	return append(b, vi.unknown...)
}

func encodeType(t *Type) []byte {
	var b []byte
	if tt := t.Tensor; tt != nil {
		var e []byte
		e = putInt(e, 1, int64(tt.ElemType))
		if tt.HasShape || len(tt.Shape) > 0 {
			var s []byte
			for _, d := range tt.Shape {
				var db []byte
				if d.Param != "" {
					db = putString(db, 2, d.Param)
				} else if d.Value != 0 {
					db = putInt(db, 1, d.Value)
				}
				db = putString(db, 3, d.Denotation)
				s = putMessage(s, 1, db)
			}
			e = putMessage(e, 2, s)
		}
		e = append(e, tt.unknown...)
		b = putMessage(b, 1, e)
	}
	b = putString(b, 6, t.Denotation)
	return append(b, t.unknown...)
}

func putInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func putString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return putAlwaysBytes(b, num, []byte(s))
}

func putAlwaysBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// putMessage writes an embedded message, even an empty one: its presence matters.
func putMessage(b []byte, num protowire.Number, msg []byte) []byte {
	return putAlwaysBytes(b, num, msg)
}

func putPackedVarints(b []byte, num protowire.Number, n int, at func(int) uint64) []byte {
	if n == 0 {
		return b
	}
	var p []byte
	for i := 0; i < n; i++ {
		p = protowire.AppendVarint(p, at(i))
	}
	return putAlwaysBytes(b, num, p)
}
