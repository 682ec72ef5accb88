// Package onnx reads and writes ONNX model files with a small protobuf codec of
// its own. It models the parts of onnx.proto that vidpipe builds and rewrites
// (graphs, nodes, attributes, tensors, value infos) and keeps every other field
// verbatim, so a decode followed by an encode loses nothing.
package onnx

import (
	"errors"
	"fmt"
	"os"
)

// Sentinel errors. Decoding errors wrap one of them with the position at fault.
var (
	// ErrMalformed means the bytes are not a valid protobuf encoding of an ONNX message.
	ErrMalformed = errors.New("malformed onnx protobuf")
	// ErrTooDeep means graphs nest deeper than MaxDepth (a crafted file, most likely).
	ErrTooDeep = errors.New("onnx graphs nested too deep")
	// ErrNoGraph means the model holds no graph.
	ErrNoGraph = errors.New("onnx model has no graph")
	// ErrTensorData means a tensor's data does not match its type and dims.
	ErrTensorData = errors.New("tensor data does not match its type and shape")
)

// MaxDepth bounds how deeply subgraphs (If/Loop bodies) may nest.
const MaxDepth = 32

// Model is an ONNX ModelProto.
type Model struct {
	IRVersion       int64
	OpsetImports    []OpsetID
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           *Graph
	Metadata        []StringPair

	unknown []byte // fields not modelled here (training_info, functions, ...), kept verbatim
}

// OpsetID is an OperatorSetIdProto.
type OpsetID struct {
	Domain  string
	Version int64
}

// StringPair is a StringStringEntryProto, as used by metadata_props.
type StringPair struct {
	Key, Value string
}

// Graph is a GraphProto.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []*ValueInfo
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo
	DocString    string

	unknown []byte
}

// Node is a NodeProto: one operator application.
type Node struct {
	Name      string
	OpType    string
	Domain    string
	DocString string
	Inputs    []string
	Outputs   []string
	Attrs     []*Attribute

	unknown []byte
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// Attribute types used by the codec.
const (
	AttrUndefined AttrType = 0
	AttrFloat     AttrType = 1
	AttrInt       AttrType = 2
	AttrString    AttrType = 3
	AttrTensor    AttrType = 4
	AttrGraph     AttrType = 5
	AttrFloats    AttrType = 6
	AttrInts      AttrType = 7
	AttrStrings   AttrType = 8
	AttrTensors   AttrType = 9
	AttrGraphs    AttrType = 10
)

// Attribute is an AttributeProto. Type says which value field is meaningful.
type Attribute struct {
	Name        string
	Type        AttrType
	F           float32
	I           int64
	S           []byte
	T           *Tensor
	G           *Graph
	Floats      []float32
	Ints        []int64
	Strings     [][]byte
	Tensors     []*Tensor
	Graphs      []*Graph
	DocString   string
	RefAttrName string

	unknown []byte
}

// DataType is TensorProto.DataType.
type DataType int32

// Tensor element types.
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Uint16    DataType = 4
	Int16     DataType = 5
	Int32     DataType = 6
	Int64     DataType = 7
	String    DataType = 8
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
	Uint32    DataType = 12
	Uint64    DataType = 13
	BFloat16  DataType = 16
)

var dataTypeNames = map[DataType]string{
	Undefined: "UNDEFINED", Float: "FLOAT", Uint8: "UINT8", Int8: "INT8", Uint16: "UINT16",
	Int16: "INT16", Int32: "INT32", Int64: "INT64", String: "STRING", Bool: "BOOL",
	Float16: "FLOAT16", Double: "DOUBLE", Uint32: "UINT32", Uint64: "UINT64", BFloat16: "BFLOAT16",
}

func (d DataType) String() string {
	if s, ok := dataTypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("DataType(%d)", int32(d))
}

// Tensor is a TensorProto. Data lives in RawData (little endian) or in one of
// the typed slices, as the producer chose.
type Tensor struct {
	Name       string
	Dims       []int64
	DataType   DataType
	RawData    []byte
	FloatData  []float32
	Int32Data  []int32
	Int64Data  []int64
	DoubleData []float64
	Uint64Data []uint64
	StringData [][]byte
	DocString  string

	unknown []byte // segment, external_data, data_location
}

// ValueInfo is a ValueInfoProto: a named, typed value (graph input or output).
type ValueInfo struct {
	Name      string
	Type      *Type
	DocString string

	unknown []byte
}

// Type is a TypeProto. Only tensor types are modelled; others stay in unknown.
type Type struct {
	Tensor     *TensorType
	Denotation string

	unknown []byte
}

// TensorType is TypeProto.Tensor. A nil Shape means the rank is unknown.
type TensorType struct {
	ElemType DataType
	Shape    []Dim
	HasShape bool

	unknown []byte
}

// Dim is one dimension: a fixed Value, a symbolic Param, or neither (unknown).
type Dim struct {
	Value      int64
	Param      string
	Denotation string
}

// ReadFile decodes the ONNX model stored at path.
func ReadFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read onnx model: %w", err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("read onnx model %s: %w", path, err)
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("read onnx model %s: %w", path, ErrNoGraph)
	}
	return m, nil
}

// WriteFile encodes m and writes it to path.
func WriteFile(path string, m *Model) error {
	if err := os.WriteFile(path, Encode(m), 0o644); err != nil {
		return fmt.Errorf("write onnx model: %w", err)
	}
	return nil
}
