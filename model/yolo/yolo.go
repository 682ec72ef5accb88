// Package yolo builds YOLOv5-family detectors as ONNX graphs from YOLOv5
// model files (the YAML that YOLOv5 and YOLOv5-Lite train from), with
// weights from a state_dict-named Source, so vidpipe can run the models
// people train without Python.
package yolo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/onnx"
)

// Sentinel errors.
var (
	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("invalid model config")
	// ErrWeight means a Source returned a tensor of the wrong size, or Seeded
	// was asked for a tensor it has no rule for.
	ErrWeight = errors.New("bad weight tensor")
	// ErrModelFile means a model file is malformed or asks for a module or
	// argument vidpipe does not build.
	ErrModelFile = errors.New("bad model file")
	// ErrUnused means the weights hold tensors the model file has no place for.
	ErrUnused = errors.New("weights do not fit the model file")
)

// Architectures and rep modes accepted by Config: shorthands for the
// built-in model files (see BuiltinModelFile).
const (
	ArchYOLOv5s    = "yolov5s"
	ArchRepYOLOv5s = "repyolov5s"
	// ArchRepYOLOv5sV5 is the seed's own RepYOLOv5s, YOLOv5 v5.0 topology.
	ArchRepYOLOv5sV5 = "repyolov5s-v5"

	// RepDownsample turns the six stride-2 3x3 convs (layers 1, 3, 5, 7, 18, 21) into RepVGG blocks.
	RepDownsample = "downsample"
	// RepAll also turns the eleven bottleneck 3x3 convs into RepVGG blocks (with identity branches).
	RepAll = "all"
)

// Limits keep a mistyped flag from asking for a model that cannot fit in memory.
const (
	maxWidth   = 2.0 // yolov5x is 1.25
	maxDepth   = 3.0
	maxImgSize = 4096
	maxClasses = 10000
)

// Config selects the model. Zero fields take the model file's values, and
// yolov5s at 640 when neither Arch nor ModelFile is set.
type Config struct {
	Arch string // shorthand for a built-in model file: "yolov5s" (default), "repyolov5s" or "repyolov5s-v5"
	Rep  string // repyolov5s only: "downsample" (default) or "all"
	// ModelFile is a parsed model file; set it instead of Arch and Rep.
	ModelFile *ModelFile
	Width     float64  // overrides the file's width_multiple when set
	Depth     float64  // overrides the file's depth_multiple when set
	ImgSize   int      // square input side, a multiple of 32, default 640
	Classes   int      // overrides the file's nc when set (default len(Names) when Names is set)
	Names     []string // class names for metadata; default the weights', COCO's 80 or "class0", "class1", ...
	Seed      int64    // seeds the weights when Weights is nil
	Weights   Source   // nil means Seeded(Seed)
}

// Report says what a build used and where it came from, so a caller can
// log it: anchors and names never come silently from defaults.
type Report struct {
	ModelFile   string
	Layers      int
	Classes     int
	Strides     []int
	Anchors     [][]float32 // per level, in input pixels
	AnchorsFrom string      // "weights model.24.anchors", "weights model.24.anchor_grid" or "model file"
	NamesFrom   string      // "config", "weights metadata", "COCO (default)" or "class ids (default)"
	Seeded      bool        // the weights are Seeded, not trained
}

// String is one line for logs.
func (r *Report) String() string {
	return fmt.Sprintf("%s: %d layers, %d classes, strides %v, anchors from %s %s, names from %s",
		r.ModelFile, r.Layers, r.Classes, r.Strides, r.AnchorsFrom, formatAnchors(r.Anchors), r.NamesFrom)
}

// resolved is a Config after withDefaults, with its model file chosen.
type resolved struct {
	Config
	file      *ModelFile
	graphName string
	namesFrom string
}

// withDefaults picks the model file, fills zero fields and validates the rest.
func (c Config) withDefaults() (resolved, error) {
	r := resolved{Config: c}
	if c.ModelFile != nil {
		if c.Arch != "" || c.Rep != "" {
			return r, fmt.Errorf("%w: arch %q and rep %q with a model file (choose one)", ErrConfig, c.Arch, c.Rep)
		}
		r.file, r.graphName = c.ModelFile, stem(c.ModelFile.Name)
	} else {
		if r.Arch == "" {
			r.Arch = ArchYOLOv5s
		}
		file := r.Arch
		switch r.Arch {
		case ArchYOLOv5s, ArchRepYOLOv5sV5:
			if c.Rep != "" {
				return r, fmt.Errorf("%w: rep %q needs arch %s", ErrConfig, c.Rep, ArchRepYOLOv5s)
			}
		case ArchRepYOLOv5s:
			if r.Rep == "" {
				r.Rep = RepDownsample
			}
			if r.Rep != RepDownsample && r.Rep != RepAll {
				return r, fmt.Errorf("%w: rep %q (want %s or %s)", ErrConfig, r.Rep, RepDownsample, RepAll)
			}
			file = r.Arch + "-" + r.Rep
		default:
			return r, fmt.Errorf("%w: arch %q (want %s, %s or %s)", ErrConfig, r.Arch, ArchYOLOv5s, ArchRepYOLOv5s, ArchRepYOLOv5sV5)
		}
		f, err := BuiltinModelFile(file)
		if err != nil {
			return r, err
		}
		r.file, r.graphName = f, r.Arch
	}
	// The negated forms also reject NaN.
	if r.Width != 0 && !(r.Width > 0 && r.Width <= maxWidth) {
		return r, fmt.Errorf("%w: width %v (want 0 < width <= %v)", ErrConfig, r.Width, maxWidth)
	}
	if r.Depth != 0 && !(r.Depth > 0 && r.Depth <= maxDepth) {
		return r, fmt.Errorf("%w: depth %v (want 0 < depth <= %v)", ErrConfig, r.Depth, maxDepth)
	}
	if r.Width == 0 {
		r.Width = r.file.WidthMultiple
	}
	if r.Depth == 0 {
		r.Depth = r.file.DepthMultiple
	}
	if r.ImgSize == 0 {
		r.ImgSize = 640
	}
	if r.ImgSize < 32 || r.ImgSize > maxImgSize || r.ImgSize%32 != 0 {
		return r, fmt.Errorf("%w: image size %d (want a multiple of 32 up to %d)", ErrConfig, r.ImgSize, maxImgSize)
	}
	if r.Weights == nil {
		r.Weights = Seeded(r.Seed)
	}
	r.namesFrom = "config"
	if len(r.Names) == 0 {
		names, err := weightNames(r.Weights)
		if err != nil {
			return r, err
		}
		if len(names) > 0 {
			r.Names, r.namesFrom = names, "weights metadata"
		}
	}
	if r.Classes == 0 && len(r.Names) > 0 {
		r.Classes = len(r.Names)
	}
	if r.Classes == 0 {
		r.Classes = r.file.NC
	}
	if r.Classes < 1 || r.Classes > maxClasses {
		return r, fmt.Errorf("%w: %d classes (want 1 to %d)", ErrConfig, r.Classes, maxClasses)
	}
	switch {
	case len(r.Names) > 0 && len(r.Names) != r.Classes:
		return r, fmt.Errorf("%w: %d class names for %d classes (names from %s)", ErrConfig, len(r.Names), r.Classes, r.namesFrom)
	case len(r.Names) == 0 && r.Classes == len(detect.COCO80):
		r.Names, r.namesFrom = COCO80(), "COCO (default)"
	case len(r.Names) == 0:
		r.Names, r.namesFrom = make([]string, r.Classes), "class ids (default)"
		for i := range r.Names {
			r.Names[i] = fmt.Sprintf("class%d", i)
		}
	}
	return r, nil
}

// weightNames reads class names a Source keeps in its metadata ("names",
// as a Python dict literal like the ONNX metadata), if it has any.
func weightNames(src Source) ([]string, error) {
	m, ok := src.(interface{ Metadata() map[string]string })
	if !ok {
		return nil, nil
	}
	s, ok := m.Metadata()["names"]
	if !ok {
		return nil, nil
	}
	names, err := parseNames(s)
	if err != nil {
		return nil, fmt.Errorf("%w: names in the weights' metadata: %v", ErrConfig, err)
	}
	return names, nil
}

// Build returns the model in training form: every conv is Conv (no bias) +
// BatchNormalization + SiLU, and RepVGG blocks keep their three branches
// (unless the model file or the weights hold them in deploy form).
// Input "images" is [batch, 3, ImgSize, ImgSize]; output "output0" is
// [batch, anchors, 5+Classes] with boxes decoded to input pixels.
func Build(cfg Config) (*onnx.Model, error) {
	m, _, err := BuildReport(cfg)
	return m, err
}

// BuildReport is Build, also saying where the anchors and names came from.
func BuildReport(cfg Config) (*onnx.Model, *Report, error) {
	r, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	f := r.file
	_, seeded := r.Weights.(seeded)
	rep := &Report{ModelFile: f.Name, Layers: len(f.Rows), Classes: r.Classes, NamesFrom: r.namesFrom, Seeded: seeded}
	b := newBuilder(r.graphName, r.Weights, f.BNEps)
	b.leaky = f.CSPLeaky
	spec := netSpec{nc: r.Classes, img: r.ImgSize, gd: r.Depth, gw: r.Width, anchors: f.Anchors, na: f.AnchorCount}
	if err := b.network(f, spec, rep); err != nil {
		return nil, nil, fmt.Errorf("build %s: %w", f.Name, err)
	}
	if err := b.checkUnused(); err != nil {
		return nil, nil, fmt.Errorf("build %s: %w", f.Name, err)
	}
	strides := make([]string, len(rep.Strides))
	for i, s := range rep.Strides {
		strides[i] = strconv.Itoa(s)
	}
	return &onnx.Model{
		IRVersion:    7,
		OpsetImports: []onnx.OpsetID{{Version: 13}},
		ProducerName: "vidpipe",
		Graph:        b.g,
		Metadata: []onnx.StringPair{
			// ultralytics writes the largest stride; the per-level ones and the
			// anchors let a reader decode raw heads without the model file.
			{Key: "stride", Value: strconv.Itoa(maxInt(rep.Strides))},
			{Key: "names", Value: pyDict(r.Names)},
			{Key: "strides", Value: "[" + strings.Join(strides, ", ") + "]"},
			{Key: "anchors", Value: formatAnchors(rep.Anchors)},
		},
	}, rep, nil
}

// checkUnused refuses weights that hold tensors no layer read: they belong
// to layers this file lacks, and building without them would be silent.
func (b *builder) checkUnused() error {
	ls, ok := b.src.(lister)
	if !ok {
		return nil
	}
	var unused []string
	for _, n := range ls.Names() {
		if b.used[n] || strings.HasSuffix(n, ".num_batches_tracked") || strings.HasSuffix(n, ".anchor_grid") {
			continue
		}
		unused = append(unused, n)
	}
	if len(unused) == 0 {
		return nil
	}
	first := unused[0]
	if sh, ok := b.src.(shaper); ok {
		s, _ := sh.Shape(first)
		first = fmt.Sprintf("%s %v", first, s)
	}
	noun := "tensors"
	if len(unused) == 1 {
		noun = "tensor"
	}
	return fmt.Errorf("%w: the weights have %d %s this model file does not use, first %s", ErrUnused, len(unused), noun, first)
}

func maxInt(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// formatAnchors writes anchors as a model file's anchors list.
func formatAnchors(a [][]float32) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, l := range a {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('[')
		for j, x := range l {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
		}
		sb.WriteByte(']')
	}
	sb.WriteByte(']')
	return sb.String()
}
