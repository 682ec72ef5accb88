// Package checkpoint turns a trained PyTorch checkpoint (a YOLOv5 or
// YOLOv5-Lite .pt file, or a plain state_dict with its model file) into the
// deploy-form ONNX model vidpipe runs, so users bring their .pt without
// exporting it in Python first.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/torchpt"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// Sentinel errors.
var (
	// ErrNoModelFile means the checkpoint holds no model file (a state_dict)
	// and none was given.
	ErrNoModelFile = errors.New("checkpoint has no model file")
	// ErrModule means the checkpoint's module tree holds a module vidpipe
	// cannot build, or one that disagrees with the model file.
	ErrModule = errors.New("unsupported module")
	// ErrMetadata means the checkpoint's names or strides disagree with its model.
	ErrMetadata = errors.New("checkpoint metadata disagrees with the model")
)

// Options of an import. The zero value takes everything from the checkpoint.
type Options struct {
	// ModelFile is used when the checkpoint holds no model file (a
	// state_dict), and overrides the checkpoint's own otherwise.
	ModelFile *yolo.ModelFile
	ImgSize   int  // square input side, default 640
	Train     bool // keep the training form (BatchNormalization, RepVGG branches)
}

// Result is an imported model with what the import used.
type Result struct {
	Model  *onnx.Model
	Build  *yolo.Report
	Fuse   *fuse.Report // nil in training form
	Source string       // the checkpoint's kind and class, for logs
}

// Import reads the checkpoint at path and builds its model.
func Import(path string, opts Options) (*Result, error) {
	f, err := torchpt.Open(path)
	if err != nil {
		return nil, err
	}
	return FromFile(f, opts)
}

// FromFile builds the model of an opened checkpoint: its model file (or
// opts.ModelFile), its weights with their anchors, its class names; then
// fuses it unless opts.Train.
func FromFile(f *torchpt.File, opts Options) (*Result, error) {
	mf := opts.ModelFile
	if mf == nil {
		y := f.YAML()
		if y == nil {
			return nil, fmt.Errorf("import %s: %w: it is a %s; give its model file (--cfg)", f.Name(), ErrNoModelFile, f.Kind())
		}
		b, err := json.Marshal(y)
		if err != nil {
			return nil, fmt.Errorf("import %s: model file: %w", f.Name(), err)
		}
		if mf, err = yolo.ParseModelFile(b, f.Name()+" (its model file)"); err != nil {
			return nil, fmt.Errorf("import %s: %w", f.Name(), err)
		}
	}
	if len(f.Modules()) > 0 {
		leaky, err := checkModules(f, mf)
		if err != nil {
			return nil, err
		}
		mf.CSPLeaky = leaky
	}
	cfg := yolo.Config{ModelFile: mf, ImgSize: opts.ImgSize, Weights: f, Names: f.ClassNames()}
	m, rep, err := yolo.BuildReport(cfg)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", f.Name(), err)
	}
	if s := f.Strides(); len(s) > 0 && !sameStrides(s, rep.Strides) {
		return nil, fmt.Errorf("import %s: %w: checkpoint strides %v, model file gives %v", f.Name(), ErrMetadata, s, rep.Strides)
	}
	res := &Result{Model: m, Build: rep, Source: f.String()}
	if !opts.Train {
		fr, err := fuse.Model(m)
		if err != nil {
			return nil, fmt.Errorf("import %s: fuse: %w", f.Name(), err)
		}
		res.Fuse = &fr
	}
	return res, nil
}

func sameStrides(a []float64, b []int) bool {
	return slices.EqualFunc(a, b, func(x float64, y int) bool { return x == float64(y) })
}

// Module classes by their last name: those the builder makes (YOLOv5 and
// YOLOv5-Lite's models.common, vidpipe's C3RepVGG) and the torch layers
// inside them. Anything else in a module tree is a layer vidpipe would not
// build, so the import stops rather than produce a different network.
// (YOLOv5 v7.0 pickles its model as models.yolo.DetectionModel.)
var (
	rowModules = []string{"Conv", "Focus", "C3", "C3RepVGG", "Bottleneck", "BottleneckCSP",
		"SPP", "SPPF", "RepVGGBlock", "Upsample", "Concat", "Detect"}
	innerModules = []string{"Model", "DetectionModel", "Sequential", "ModuleList", "Conv2d", "BatchNorm2d",
		"MaxPool2d", "Identity", "SiLU", "LeakyReLU"}
)

// checkModules compares the checkpoint's module tree with the model file,
// row by row, and reports whether BottleneckCSP uses LeakyReLU (YOLOv5
// v4.0-v5.0 and YOLOv5-Lite) rather than SiLU: a model file cannot say.
func checkModules(f *torchpt.File, mf *yolo.ModelFile) (leaky bool, err error) {
	for _, prefix := range f.Modules() {
		class, _ := f.ModuleType(prefix)
		base := lastName(class)
		if !slices.Contains(rowModules, base) && !slices.Contains(innerModules, base) {
			return false, fmt.Errorf("import %s: %w: checkpoint has an unknown module type %s at %s", f.Name(), ErrModule, class, prefix)
		}
		// Activations are built as SiLU; only BottleneckCSP's own may be LeakyReLU.
		if base == "LeakyReLU" {
			owner, _ := f.ModuleType(strings.TrimSuffix(prefix, ".act"))
			if !strings.HasSuffix(prefix, ".act") || lastName(owner) != "BottleneckCSP" {
				return false, fmt.Errorf("import %s: %w: activation %s at %s (vidpipe builds SiLU there)", f.Name(), ErrModule, class, prefix)
			}
			leaky = true
		}
	}
	for i, row := range mf.Rows {
		prefix := fmt.Sprintf("model.%d", i)
		class, ok := f.ModuleType(prefix)
		if ok && lastName(class) == "Sequential" { // a row repeated n times
			class, ok = f.ModuleType(prefix + ".0")
		}
		want := lastName(row.Module)
		if !ok {
			return false, fmt.Errorf("import %s: %w: layer %d is %s in the model file; the checkpoint has no module %s", f.Name(), ErrModule, i, want, prefix)
		}
		if got := lastName(class); got != want {
			return false, fmt.Errorf("import %s: %w: layer %d is %s in the model file; the checkpoint has %s there", f.Name(), ErrModule, i, want, class)
		}
	}
	return leaky, nil
}

// lastName is a dotted class or module name's last part: "models.common.C3" → "C3".
func lastName(s string) string {
	return s[strings.LastIndexByte(s, '.')+1:]
}
