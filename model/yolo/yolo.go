// Package yolo builds YOLOv5s and RepYOLOv5s (v6/v7 topology) as ONNX graphs in
// their training form, with weights from a state_dict-named Source, so vidpipe
// can make detection models without Python.
package yolo

import (
	"errors"
	"fmt"
	"math"

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
)

// Architectures and rep modes accepted by Config.
const (
	ArchYOLOv5s    = "yolov5s"
	ArchRepYOLOv5s = "repyolov5s"

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

// Config selects the model. Zero fields take the defaults of yolov5s at 640.
type Config struct {
	Arch    string   // "yolov5s" (default) or "repyolov5s"
	Rep     string   // repyolov5s only: "downsample" (default) or "all"
	Width   float64  // channel multiple, default 0.5
	Depth   float64  // depth multiple, default 0.33
	ImgSize int      // square input side, a multiple of 32, default 640
	Classes int      // default 80 (or len(Names) when Names is set)
	Names   []string // class names for metadata; default COCO's 80 or "class0", "class1", ...
	Seed    int64    // seeds the weights when Weights is nil
	Weights Source   // nil means Seeded(Seed)
}

// withDefaults fills zero fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Arch == "" {
		c.Arch = ArchYOLOv5s
	}
	switch c.Arch {
	case ArchYOLOv5s:
		if c.Rep != "" {
			return c, fmt.Errorf("%w: rep %q needs arch %s", ErrConfig, c.Rep, ArchRepYOLOv5s)
		}
	case ArchRepYOLOv5s:
		if c.Rep == "" {
			c.Rep = RepDownsample
		}
		if c.Rep != RepDownsample && c.Rep != RepAll {
			return c, fmt.Errorf("%w: rep %q (want %s or %s)", ErrConfig, c.Rep, RepDownsample, RepAll)
		}
	default:
		return c, fmt.Errorf("%w: arch %q (want %s or %s)", ErrConfig, c.Arch, ArchYOLOv5s, ArchRepYOLOv5s)
	}
	if c.Width == 0 {
		c.Width = 0.5
	}
	if c.Depth == 0 {
		c.Depth = 0.33
	}
	// The negated form also rejects NaN.
	if !(c.Width > 0 && c.Width <= maxWidth) {
		return c, fmt.Errorf("%w: width %v (want 0 < width <= %v)", ErrConfig, c.Width, maxWidth)
	}
	if !(c.Depth > 0 && c.Depth <= maxDepth) {
		return c, fmt.Errorf("%w: depth %v (want 0 < depth <= %v)", ErrConfig, c.Depth, maxDepth)
	}
	if c.ImgSize == 0 {
		c.ImgSize = 640
	}
	if c.ImgSize < 32 || c.ImgSize > maxImgSize || c.ImgSize%32 != 0 {
		return c, fmt.Errorf("%w: image size %d (want a multiple of 32 up to %d)", ErrConfig, c.ImgSize, maxImgSize)
	}
	if c.Classes == 0 {
		c.Classes = 80
		if len(c.Names) > 0 {
			c.Classes = len(c.Names)
		}
	}
	if c.Classes < 1 || c.Classes > maxClasses {
		return c, fmt.Errorf("%w: %d classes (want 1 to %d)", ErrConfig, c.Classes, maxClasses)
	}
	switch {
	case len(c.Names) > 0 && len(c.Names) != c.Classes:
		return c, fmt.Errorf("%w: %d class names for %d classes", ErrConfig, len(c.Names), c.Classes)
	case len(c.Names) == 0 && c.Classes == len(detect.COCO80):
		c.Names = COCO80()
	case len(c.Names) == 0:
		c.Names = make([]string, c.Classes)
		for i := range c.Names {
			c.Names[i] = fmt.Sprintf("class%d", i)
		}
	}
	if c.Weights == nil {
		c.Weights = Seeded(c.Seed)
	}
	return c, nil
}

// width scales a channel count the way ultralytics' make_divisible does.
func (c Config) width(ch int) int {
	return int(math.Ceil(float64(ch)*c.Width/8)) * 8
}

// depth scales a repeat count; Python's round is half-to-even.
func (c Config) depth(n int) int {
	if n <= 1 {
		return n
	}
	return max(int(math.RoundToEven(float64(n)*c.Depth)), 1)
}

// Build returns the model in training form: every conv is Conv (no bias) +
// BatchNormalization + SiLU, and RepVGG blocks keep their three branches.
// Input "images" is [batch, 3, ImgSize, ImgSize]; output "output0" is
// [batch, anchors, 5+Classes] with boxes decoded to input pixels.
func Build(cfg Config) (*onnx.Model, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := newBuilder(cfg)
	b.network()
	if b.err != nil {
		return nil, fmt.Errorf("build %s: %w", cfg.Arch, b.err)
	}
	return &onnx.Model{
		IRVersion:    7,
		OpsetImports: []onnx.OpsetID{{Version: 13}},
		ProducerName: "vidpipe",
		Graph:        b.g,
		Metadata: []onnx.StringPair{
			{Key: "stride", Value: "32"},
			{Key: "names", Value: pyDict(cfg.Names)},
		},
	}, nil
}
