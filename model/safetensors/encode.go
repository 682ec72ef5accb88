package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// Tensor is a float32 tensor to encode. Half stores it as F16 (rounded to
// nearest even), which halves a shipped weight file.
type Tensor struct {
	Shape []int
	Data  []float32
	Half  bool
}

// Encode writes tensors as a safetensors file, in name order, so tests and
// tools can produce weight files without Python. Metadata, if any, goes
// under the header's "__metadata__" key.
func Encode(tensors map[string]Tensor, metadata map[string]string) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	header := make(map[string]any, len(tensors)+1)
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
		dtype, size := "F32", int64(4)
		if t.Half {
			dtype, size = "F16", 2
		}
		header[k] = headerEntry{Dtype: dtype, Shape: shape, DataOffsets: []int64{off, off + size*int64(n)}}
		off += size * int64(n)
	}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
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
		t := tensors[k]
		for _, v := range t.Data {
			if t.Half {
				out = binary.LittleEndian.AppendUint16(out, onnx.FloatToHalf(v))
			} else {
				out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
			}
		}
	}
	return out, nil
}
