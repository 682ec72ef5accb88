package yolo

import (
	"embed"
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ModelFile is a parsed YOLOv5 model file: the YAML that YOLOv5's and
// YOLOv5-Lite's parse_model read (nc, depth_multiple, width_multiple,
// anchors, backbone and head rows).
//
// Modules: Conv, Focus, Bottleneck, BottleneckCSP, C3, SPP, SPPF,
// RepVGGBlock (training form, or deploy form with rbr_reparam), nn.Upsample
// (nearest), Concat and Detect, with or without nn./common. prefixes; and
// C3RepVGG, vidpipe's own: a C3 whose Bottleneck 3x3 (cv2) is a
// RepVGGBlock, which the all-RepVGG yolov5s variant needs.
//
// Keys of vidpipe's own, which upstream files lack: bn_eps (BatchNorm
// epsilon, default 1e-3) and csp_activation (BottleneckCSP's activation
// after its shared BN: nn.SiLU(), YOLOv5 v6.0 on and the default, or
// nn.LeakyReLU(0.1), YOLOv5 v4.0-v5.0 and YOLOv5-Lite).
type ModelFile struct {
	Name          string // label for errors: a path or a built-in name
	NC            int
	DepthMultiple float64
	WidthMultiple float64
	// Anchors are per level, in input pixels (w0, h0, w1, h1, ...). Nil when
	// the file gives only AnchorCount, as `anchors: 3` files do: then the
	// anchors must come from the weights.
	Anchors     [][]float64
	AnchorCount int
	// BNEps is the BatchNorm epsilon, 1e-3 (what YOLOv5's initialize_weights
	// sets) unless the file has the vidpipe key bn_eps.
	BNEps float64
	// CSPLeaky selects LeakyReLU(0.1) after BottleneckCSP's BN, as YOLOv5
	// v4.0-v5.0 (and YOLOv5-Lite) built it; a checkpoint's module tree says which.
	CSPLeaky bool
	Rows     []Row // backbone rows, then head rows, as parse_model enumerates them
}

// Row is one [from, number, module, args] line.
type Row struct {
	From    []int // -1 is the previous layer; others are absolute layer indices
	Multi   bool  // from was a list
	Number  int
	Module  string // as written, e.g. "nn.Upsample"
	Args    []any  // nil, bool, int, float64, string or []any, after parse_model's eval
	Section string // "backbone" or "head"
	Index   int    // row number within its section
	Line    int    // line in the file
}

// where names a row in errors the way a user finds it in the file.
func (r Row) where() string {
	return fmt.Sprintf("row %d of %s (line %d)", r.Index, r.Section, r.Line)
}

//go:embed models/*.yaml
var builtinFiles embed.FS

// BuiltinModelFile returns one of vidpipe's own model files by name:
// "yolov5s" (v6.0 topology), "repyolov5s-downsample", "repyolov5s-all"
// (yolov5s with RepVGG blocks) and "repyolov5s-v5" (the seed's v5.0
// topology: Focus, SPP, RepVGG on the six stride-2 convs).
func BuiltinModelFile(name string) (*ModelFile, error) {
	b, err := builtinFiles.ReadFile("models/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: no built-in model file %q (have %s)", ErrConfig, name, strings.Join(BuiltinModelFiles(), ", "))
	}
	return ParseModelFile(b, name+".yaml")
}

// BuiltinModelFiles lists the names BuiltinModelFile accepts.
func BuiltinModelFiles() []string {
	entries, _ := builtinFiles.ReadDir("models")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// BuiltinModelFileText returns the YAML of a built-in model file, so a user
// can start their own from it.
func BuiltinModelFileText(name string) ([]byte, error) {
	b, err := builtinFiles.ReadFile("models/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: no built-in model file %q", ErrConfig, name)
	}
	return b, nil
}

// ReadModelFile reads and parses a model file.
func ReadModelFile(p string) (*ModelFile, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read model file: %w", err)
	}
	return ParseModelFile(b, p)
}

// Limits on a model file, so a typo cannot ask for an impossible network.
const (
	maxRows    = 1000
	maxRepeats = 100
)

// ParseModelFile parses a model file; name labels errors. JSON is YAML, so
// a checkpoint's model.yaml dict written with encoding/json parses too.
func ParseModelFile(b []byte, name string) (*ModelFile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse model file %s: %w: %v", name, ErrModelFile, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("parse model file %s: %w: not a YAML mapping", name, ErrModelFile)
	}
	f := &ModelFile{Name: name, DepthMultiple: 1, WidthMultiple: 1, BNEps: 1e-3}
	bad := func(n *yaml.Node, format string, a ...any) error {
		return fmt.Errorf("parse model file %s: line %d: %w: %s", name, n.Line, ErrModelFile, fmt.Sprintf(format, a...))
	}
	top := doc.Content[0]
	seen := map[string]bool{}
	var backbone, head *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		seen[k.Value] = true
		switch k.Value {
		case "nc":
			n, ok := intValue(v)
			if !ok || n < 1 || n > maxClasses {
				return nil, bad(v, "nc %q (want 1 to %d)", v.Value, maxClasses)
			}
			f.NC = n
		case "depth_multiple", "width_multiple":
			x, ok := floatValue(v)
			if !ok || !(x > 0 && x <= 4) {
				return nil, bad(v, "%s %q (want 0 < x <= 4)", k.Value, v.Value)
			}
			if k.Value == "depth_multiple" {
				f.DepthMultiple = x
			} else {
				f.WidthMultiple = x
			}
		case "bn_eps":
			x, ok := floatValue(v)
			if !ok || !(x > 0 && x < 1) {
				return nil, bad(v, "bn_eps %q (want 0 < eps < 1)", v.Value)
			}
			f.BNEps = x
		case "anchors":
			if err := f.parseAnchors(v, bad); err != nil {
				return nil, err
			}
		case "activation":
			// YOLOv5 v7.0 evaluates this as Conv's default activation.
			if a := strings.TrimPrefix(strings.TrimPrefix(v.Value, "nn."), "torch.nn."); a != "SiLU()" {
				return nil, bad(v, "activation %q: only nn.SiLU() is supported", v.Value)
			}
		case "csp_activation":
			switch strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(v.Value, "torch.nn."), "nn."), " ", "") {
			case "SiLU()":
			case "LeakyReLU(0.1)":
				f.CSPLeaky = true
			default:
				return nil, bad(v, "csp_activation %q (want nn.SiLU() or nn.LeakyReLU(0.1))", v.Value)
			}
		case "backbone":
			backbone = v
		case "head":
			head = v
		case "ch":
			if n, ok := intValue(v); !ok || n != 3 {
				return nil, bad(v, "ch %q: only 3 input channels are supported", v.Value)
			}
		default:
			// Files carry comments and extra keys (inplace, ...) that do not
			// change the network; they are ignored as upstream ignores them.
		}
	}
	for _, k := range []string{"nc", "anchors", "backbone", "head"} {
		if !seen[k] {
			return nil, fmt.Errorf("parse model file %s: %w: no %s", name, ErrModelFile, k)
		}
	}
	for _, sec := range []struct {
		name string
		node *yaml.Node
	}{{"backbone", backbone}, {"head", head}} {
		if sec.node.Kind != yaml.SequenceNode {
			return nil, bad(sec.node, "%s is not a list of rows", sec.name)
		}
		for i, rn := range sec.node.Content {
			row, err := parseRow(rn, sec.name, i)
			if err != nil {
				return nil, fmt.Errorf("parse model file %s: %w", name, err)
			}
			f.Rows = append(f.Rows, row)
			if len(f.Rows) > maxRows {
				return nil, bad(rn, "more than %d rows", maxRows)
			}
		}
	}
	if len(f.Rows) == 0 {
		return nil, fmt.Errorf("parse model file %s: %w: no rows", name, ErrModelFile)
	}
	return f, nil
}

func (f *ModelFile) parseAnchors(v *yaml.Node, bad func(*yaml.Node, string, ...any) error) error {
	if v.Kind == yaml.ScalarNode {
		n, ok := intValue(v)
		if !ok || n < 1 || n > 32 {
			return bad(v, "anchors %q (want a list of per-level lists, or a count per level)", v.Value)
		}
		f.AnchorCount = n
		return nil
	}
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return bad(v, "anchors is not a list of per-level lists")
	}
	for l, lv := range v.Content {
		if lv.Kind != yaml.SequenceNode || len(lv.Content) == 0 || len(lv.Content)%2 != 0 {
			return bad(lv, "anchors level %d: want an even number of pixel sizes", l)
		}
		var level []float64
		for _, e := range lv.Content {
			x, ok := floatValue(e)
			if !ok || !(x > 0 && x < 1e5) {
				return bad(e, "anchors level %d: %q is not a positive size", l, e.Value)
			}
			level = append(level, x)
		}
		if l > 0 && len(level) != len(f.Anchors[0]) {
			return bad(lv, "anchors level %d has %d anchors, level 0 has %d", l, len(level)/2, len(f.Anchors[0])/2)
		}
		f.Anchors = append(f.Anchors, level)
	}
	f.AnchorCount = len(f.Anchors[0]) / 2
	return nil
}

func parseRow(n *yaml.Node, section string, i int) (Row, error) {
	r := Row{Section: section, Index: i, Line: n.Line}
	if n.Kind != yaml.SequenceNode || len(n.Content) != 4 {
		return r, fmt.Errorf("%s: %w: want [from, number, module, args]", r.where(), ErrModelFile)
	}
	from, num, mod, args := n.Content[0], n.Content[1], n.Content[2], n.Content[3]
	switch from.Kind {
	case yaml.ScalarNode:
		x, ok := intValue(from)
		if !ok {
			return r, fmt.Errorf("%s: %w: from %q is not a layer index", r.where(), ErrModelFile, from.Value)
		}
		r.From = []int{x}
	case yaml.SequenceNode:
		r.Multi = true
		for _, e := range from.Content {
			x, ok := intValue(e)
			if !ok {
				return r, fmt.Errorf("%s: %w: from %q is not a layer index", r.where(), ErrModelFile, e.Value)
			}
			r.From = append(r.From, x)
		}
		if len(r.From) == 0 {
			return r, fmt.Errorf("%s: %w: empty from list", r.where(), ErrModelFile)
		}
	default:
		return r, fmt.Errorf("%s: %w: from is neither an index nor a list", r.where(), ErrModelFile)
	}
	k, ok := intValue(num)
	if !ok || k < 1 || k > maxRepeats {
		return r, fmt.Errorf("%s: %w: number %q (want 1 to %d)", r.where(), ErrModelFile, num.Value, maxRepeats)
	}
	r.Number = k
	if mod.Kind != yaml.ScalarNode || mod.Value == "" {
		return r, fmt.Errorf("%s: %w: module is not a name", r.where(), ErrModelFile)
	}
	r.Module = mod.Value
	if args.Kind != yaml.SequenceNode {
		return r, fmt.Errorf("%s: %w: args is not a list", r.where(), ErrModelFile)
	}
	for _, a := range args.Content {
		v, err := argValue(a)
		if err != nil {
			return r, fmt.Errorf("%s: %w: %v", r.where(), ErrModelFile, err)
		}
		r.Args = append(r.Args, v)
	}
	return r, nil
}

// argValue converts a YAML arg node into what parse_model's eval of it
// gives: names it can resolve later (nc, anchors) stay strings.
func argValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.SequenceNode:
		var out []any
		for _, e := range n.Content {
			v, err := argValue(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
	default:
		return nil, fmt.Errorf("arg at line %d is neither a value nor a list", n.Line)
	}
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
	case "!!int":
		if v, ok := intValue(n); ok {
			return v, nil
		}
		return nil, fmt.Errorf("arg %q at line %d is out of range", n.Value, n.Line)
	case "!!float":
		if v, ok := floatValue(n); ok {
			return v, nil
		}
		return nil, fmt.Errorf("arg %q at line %d is not a number", n.Value, n.Line)
	}
	// A string: Python's eval turns these literals into values; a name it
	// cannot resolve stays the string (parse_model swallows the NameError).
	switch s := strings.TrimSpace(n.Value); s {
	case "None":
		return nil, nil
	case "True":
		return true, nil
	case "False":
		return false, nil
	default:
		if v, err := strconv.Atoi(s); err == nil {
			return v, nil
		}
		if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			return v, nil
		}
		return s, nil
	}
}

func intValue(n *yaml.Node) (int, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	return int(v), err == nil
}

func floatValue(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!str") {
		return 0, false
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	return v, err == nil && !math.IsInf(v, 0) && !math.IsNaN(v)
}

// moduleName strips the prefixes parse_model's eval accepts (nn., torch.nn.,
// common., models.common.), so "nn.Upsample" and "Upsample" are one module.
func moduleName(s string) string {
	for _, p := range []string{"torch.nn.", "nn.", "models.common.", "common.", "models.experimental.", "experimental."} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest
		}
	}
	return s
}

// stem is a file name without directory and .yaml/.yml suffix.
func stem(name string) string {
	base := path.Base(strings.ReplaceAll(name, `\`, "/"))
	for _, ext := range []string{".yaml", ".yml"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}
