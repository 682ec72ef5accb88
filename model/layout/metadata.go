package layout

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// metadata is what a model's metadata_props say about its outputs.
type metadata struct {
	names []string // nil when absent
	// namesErr is why names could not be read; the model still loads, with
	// class ids for names, as before layouts were told apart.
	namesErr error
	strides  []int // detect.DefaultStrides when absent
	// stridesSet marks strides that came from the model.
	stridesSet bool
	// anchors are (w, h) pixel pairs per level; nil when absent.
	anchors [][]float32
	// candidates is k of a model yolo.WithCandidates rewrote to return its
	// k rows of highest objectness (0: not rewritten).
	candidates int
}

// readMetadata reads names, stride, anchors and vidpipe_candidates.
func readMetadata(m *onnx.Model) (*metadata, error) {
	md := &metadata{strides: slices.Clone(detect.DefaultStrides[:])}
	md.names, md.namesErr = yolo.ClassNames(m)
	var anchors string
	for _, kv := range m.Metadata {
		switch kv.Key {
		case "stride":
			s, err := parseStrides(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("metadata stride %.40q: %w", kv.Value, err)
			}
			md.strides, md.stridesSet = s, true
		case "anchors":
			anchors = kv.Value
		case "vidpipe_candidates":
			k, err := strconv.Atoi(strings.TrimSpace(kv.Value))
			if err != nil || k < 1 {
				return nil, fmt.Errorf("metadata vidpipe_candidates %.40q is not a positive integer", kv.Value)
			}
			md.candidates = k
		}
	}
	if anchors != "" {
		a, err := parseAnchors(anchors, len(md.strides))
		if err != nil {
			return nil, fmt.Errorf("metadata anchors %.60q: %w", anchors, err)
		}
		md.anchors = a
	}
	return md, nil
}

// anchorsPerLevel is the number of anchors per grid cell: the metadata's,
// or YOLOv5's 3.
func (md *metadata) anchorsPerLevel() int {
	if md.anchors != nil {
		return len(md.anchors[0]) / 2
	}
	return 3
}

// parseStrides reads ultralytics' stride entry, the largest stride ("32":
// levels 8, 16, 32; "64": 8 to 64), or a list of them ("[8, 16, 32]").
func parseStrides(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		v, err := parseNumbers(s)
		if err != nil {
			return nil, err
		}
		if v.depth() != 1 || len(v.list) == 0 {
			return nil, fmt.Errorf("want a flat list of strides")
		}
		out := make([]int, len(v.list))
		for i, e := range v.list {
			n := int(e.num)
			if float64(n) != e.num || n < 1 || n > 1<<12 || i > 0 && n <= out[i-1] {
				return nil, fmt.Errorf("strides must be ascending positive integers")
			}
			out[i] = n
		}
		return out, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int(f)) {
		return nil, fmt.Errorf("not an integer")
	}
	top := int(f)
	if top < 8 || top > 1<<12 || top&(top-1) != 0 {
		return nil, fmt.Errorf("largest stride %d is not a power of two from 8 up", top)
	}
	var out []int
	for st := 8; st <= top; st *= 2 {
		out = append(out, st)
	}
	return out, nil
}

// parseAnchors reads (w, h) pixel pairs per level: a list per level
// ("[[10,13, 16,30, 33,23], [...], [...]]"), a list of pairs per level
// ("[[[10,13], [16,30], ...], ...]"), or one flat list split evenly over
// the levels.
func parseAnchors(s string, levels int) ([][]float32, error) {
	v, err := parseNumbers(s)
	if err != nil {
		return nil, err
	}
	var out [][]float32
	switch d := v.depth(); {
	case d == 1 || d == 2 && len(v.list) != levels && allPairs(v.list):
		// One list for all levels, of numbers or of pairs.
		flat := v.flatten()
		if levels < 1 || len(flat) == 0 || len(flat)%(2*levels) != 0 {
			return nil, fmt.Errorf("%d values do not split into (w, h) pairs over %d levels", len(flat), levels)
		}
		per := len(flat) / levels
		for l := range levels {
			out = append(out, flat[l*per:(l+1)*per])
		}
	case d == 2 || d == 3:
		for _, l := range v.list {
			out = append(out, l.flatten())
		}
	default:
		return nil, fmt.Errorf("want a list of numbers per level")
	}
	for i, l := range out {
		if len(l) == 0 || len(l)%2 != 0 || len(l) != len(out[0]) {
			return nil, fmt.Errorf("level %d has %d values, want the same even number at every level", i, len(l))
		}
		for _, x := range l {
			if !(x > 0 && x < 1<<16) {
				return nil, fmt.Errorf("level %d: anchor size %v is not a positive pixel size", i, x)
			}
		}
	}
	return out, nil
}

func allPairs(vs []value) bool {
	for _, v := range vs {
		if len(v.list) != 2 {
			return false
		}
	}
	return true
}

// value is a parsed number or nested list of numbers.
type value struct {
	num  float64
	list []value
	leaf bool
}

// depth is 0 for a number, 1 for a list of numbers, and so on; a list
// mixing depths reports -1.
func (v value) depth() int {
	if v.leaf {
		return 0
	}
	if len(v.list) == 0 {
		return 1
	}
	d := v.list[0].depth()
	for _, e := range v.list[1:] {
		if e.depth() != d {
			return -1
		}
	}
	if d < 0 {
		return -1
	}
	return d + 1
}

func (v value) flatten() []float32 {
	if v.leaf {
		return []float32{float32(v.num)}
	}
	var out []float32
	for _, e := range v.list {
		out = append(out, e.flatten()...)
	}
	return out
}

// maxNumbers bounds a metadata list, so a crafted entry costs little.
const maxNumbers = 1 << 12

// parseNumbers parses nested brackets of numbers, as str() of a Python list
// or a JSON array writes them; parentheses count as brackets (tuples).
func parseNumbers(s string) (value, error) {
	p := numParser{s: s}
	v, err := p.parse(0)
	if err != nil {
		return value{}, err
	}
	p.space()
	if p.i != len(p.s) {
		return value{}, fmt.Errorf("unexpected %.10q after the list", p.s[p.i:])
	}
	return v, nil
}

type numParser struct {
	s string
	i int
	n int
}

func (p *numParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *numParser) parse(depth int) (value, error) {
	p.space()
	if p.i >= len(p.s) {
		return value{}, fmt.Errorf("unexpected end")
	}
	if c := p.s[p.i]; c == '[' || c == '(' {
		if depth > 4 {
			return value{}, fmt.Errorf("lists nested too deep")
		}
		end := byte(']')
		if c == '(' {
			end = ')'
		}
		p.i++
		var v value
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return v, nil
			}
			e, err := p.parse(depth + 1)
			if err != nil {
				return value{}, err
			}
			v.list = append(v.list, e)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			} else if p.i >= len(p.s) || p.s[p.i] != end {
				return value{}, fmt.Errorf("want ',' or %q at offset %d", end, p.i)
			}
		}
	}
	j := p.i
	for j < len(p.s) && strings.IndexByte("+-.0123456789eE", p.s[j]) >= 0 {
		j++
	}
	f, err := strconv.ParseFloat(p.s[p.i:j], 64)
	if err != nil {
		return value{}, fmt.Errorf("not a number at offset %d", p.i)
	}
	if p.n++; p.n > maxNumbers {
		return value{}, fmt.Errorf("over %d numbers", maxNumbers)
	}
	p.i = j
	return value{num: f, leaf: true}, nil
}
