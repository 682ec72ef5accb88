package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Tensor is a float32 tensor to encode.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Encode writes tensors as a safetensors file with F32 data, in name order,
// so tests and tools can produce weight files without Python.
func Encode(tensors map[string]Tensor) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	header := make(map[string]headerEntry, len(tensors))
	var off int64
	for _, k := range names {
		t := tensors[k]
		n := 1
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("encode tensor %s: %w: negative dim in %v", k, ErrShape, t.Shape)
			}
			n *= d
			shape[i] = int64(d)
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("encode tensor %s: %w: shape %v holds %d values, data has %d", k, ErrShape, t.Shape, n, len(t.Data))
		}
		header[k] = headerEntry{Dtype: "F32", Shape: shape, DataOffsets: []int64{off, off + 4*int64(n)}}
		off += 4 * int64(n)
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("encode safetensors header: %w", err)
	}
	for len(h)%8 != 0 { // the format pads the header with spaces to align the data
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+int64(len(h))+off)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, k := range names {
		for _, v := range tensors[k].Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}
