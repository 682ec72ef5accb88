package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/model/bench"
	"github.com/vidpipe/vidpipe/model/checkpoint"
	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/half"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
	"github.com/vidpipe/vidpipe/model/u8input"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// convertFlags are the precision and input options of the commands that
// write a model.
type convertFlags struct {
	half, full bool
	input      string
}

const (
	halfHelp  = "Write float16 weights and activations, keeping float32 input, outputs and Detect decode (Cast at the boundaries): callers do not change."
	inputHelp = "Input the model takes: float (NCHW in [0,1]) or u8 (letterboxed RGB bytes [N,H,W,3]; the model does the transpose, cast and /255 itself)."
)

func (f *convertFlags) registerInput(cmd *kingpin.CmdClause) {
	cmd.Flag("input", inputHelp).Default("float").EnumVar(&f.input, "float", "u8")
}

// apply converts m as the flags ask, the precision first: the uint8
// input then feeds whichever float type the model takes.
func (f *convertFlags) apply(m *onnx.Model, name string, logger *slog.Logger) error {
	switch {
	case f.full:
		n, err := half.Convert(m)
		if err != nil {
			return fmt.Errorf("convert %s: %w", name, err)
		}
		logger.Info("converted to float16", "form", "full", "values", n)
	case f.half:
		rep, err := half.Mixed(m)
		if err != nil {
			return fmt.Errorf("convert %s: %w", name, err)
		}
		logger.Info("converted to float16", "form", "mixed", "summary", rep.String())
	}
	if f.input == "u8" {
		if err := u8input.Convert(m); err != nil {
			return fmt.Errorf("convert %s: %w", name, err)
		}
		logger.Info("uint8 input", "input", "[N,H,W,3] letterboxed RGB")
	}
	return nil
}

// modelBuildConfig is `vidpipe model build`.
type modelBuildConfig struct {
	cfg, arch, form, rep string
	width, depth         float64
	imgsz, classes       int
	seed                 int64
	weights, out         string
	conv                 convertFlags
	// which shorthand flags the user gave, so --cfg can refuse them
	archSet, repSet, widthSet, depthSet bool
}

func (c *modelBuildConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("cfg", "Build from a YOLOv5 / YOLOv5-Lite model file (YAML: nc, depth_multiple, width_multiple, anchors, backbone, head).").PlaceHolder("FILE.yaml").StringVar(&c.cfg)
	cmd.Flag("arch", "Built-in model file: yolov5s (v6.0), repyolov5s (v6.0 with RepVGG, see --rep) or repyolov5s-v5 (the seed's v5.0 topology: Focus, SPP, RepVGG).").Default("repyolov5s").IsSetByUser(&c.archSet).EnumVar(&c.arch, yolo.ArchYOLOv5s, yolo.ArchRepYOLOv5s, yolo.ArchRepYOLOv5sV5)
	cmd.Flag("form", "train keeps BatchNormalization and RepVGG branches; deploy fuses them.").Default("deploy").EnumVar(&c.form, "train", "deploy")
	cmd.Flag("rep", "For --arch repyolov5s, which 3x3 convs become RepVGG blocks: downsample (the six stride-2) or all (also the eleven bottleneck 3x3s).").Default("all").IsSetByUser(&c.repSet).EnumVar(&c.rep, "downsample", "all")
	cmd.Flag("width", "Width multiple (default: the model file's).").IsSetByUser(&c.widthSet).Float64Var(&c.width)
	cmd.Flag("depth", "Depth multiple (default: the model file's).").IsSetByUser(&c.depthSet).Float64Var(&c.depth)
	cmd.Flag("imgsz", "Input size in pixels, a multiple of 32.").Default("640").IntVar(&c.imgsz)
	cmd.Flag("classes", "Number of classes (default: the class names in the weights, else the model file's nc).").IntVar(&c.classes)
	cmd.Flag("seed", "Seed for the deterministic untrained weights.").Default("0").Int64Var(&c.seed)
	cmd.Flag("weights", "Load weights from a safetensors state_dict (ultralytics / YOLOv5-Lite names) instead of the seed; anchors and class names in it are used.").PlaceHolder("FILE.safetensors").StringVar(&c.weights)
	cmd.Flag("half", halfHelp).BoolVar(&c.conv.half)
	c.conv.registerInput(cmd)
	cmd.Flag("output", "Where to write the ONNX model.").Short('o').Required().PlaceHolder("FILE.onnx").StringVar(&c.out)
}

func (c *modelBuildConfig) run(ctx context.Context, logger *slog.Logger) error {
	cfg := yolo.Config{Width: c.width, Depth: c.depth, ImgSize: c.imgsz, Classes: c.classes, Seed: c.seed}
	if c.cfg != "" {
		if c.archSet || c.repSet || c.widthSet || c.depthSet {
			return fmt.Errorf("--cfg %s takes its architecture, widths and depths from the file: drop --arch, --rep, --width and --depth", c.cfg)
		}
		f, err := yolo.ReadModelFile(c.cfg)
		if err != nil {
			return err
		}
		cfg.ModelFile = f
	} else {
		cfg.Arch = c.arch
		if c.arch == yolo.ArchRepYOLOv5s {
			cfg.Rep = c.rep // --rep only shapes repyolov5s
		}
	}
	if c.weights != "" {
		st, err := safetensors.Open(c.weights)
		if err != nil {
			return err
		}
		cfg.Weights = st
	}
	m, rep, err := yolo.BuildReport(cfg)
	if err != nil {
		return err
	}
	logger.Info("model built", "file", rep.ModelFile, "layers", rep.Layers, "classes", rep.Classes, "strides", rep.Strides,
		"anchors", rep.Anchors, "anchors_from", rep.AnchorsFrom, "names_from", rep.NamesFrom, "seeded", rep.Seeded)
	if c.weights != "" && rep.AnchorsFrom == "model file" {
		logger.Warn("the weights hold no anchors: using the model file's, which training may have changed", "weights", c.weights)
	}
	params := onnx.Params(m.Graph)
	if c.form == "deploy" {
		fr, err := fuse.Model(m)
		if err != nil {
			return fmt.Errorf("fuse %s: %w", rep.ModelFile, err)
		}
		logger.Info("fused", "summary", fr.String())
		params = onnx.Params(m.Graph)
	}
	if err := c.conv.apply(m, rep.ModelFile, logger); err != nil {
		return err
	}
	if err := onnx.WriteFile(c.out, m); err != nil {
		return err
	}
	logger.Info("model written", "path", c.out, "file", rep.ModelFile, "form", c.form, "params", params, "nodes", len(m.Graph.Nodes))
	return nil
}

// modelImportConfig is `vidpipe model import`.
type modelImportConfig struct {
	in, cfg, form, out string
	imgsz              int
	conv               convertFlags
}

func (c *modelImportConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Arg("checkpoint", "PyTorch checkpoint: a YOLOv5 / YOLOv5-Lite .pt ({'model': Model, ...}) or a state_dict (with --cfg).").Required().StringVar(&c.in)
	cmd.Flag("cfg", "Model file (YAML) for a state_dict, or to override the checkpoint's own.").PlaceHolder("FILE.yaml").StringVar(&c.cfg)
	cmd.Flag("imgsz", "Input size in pixels, a multiple of 32.").Default("640").IntVar(&c.imgsz)
	cmd.Flag("form", "deploy fuses BatchNormalization and RepVGG branches; train keeps them.").Default("deploy").EnumVar(&c.form, "train", "deploy")
	cmd.Flag("half", halfHelp).BoolVar(&c.conv.half)
	cmd.Flag("half-full", "Write an all-FLOAT16 model, input and outputs too, as ultralytics' export --half does.").BoolVar(&c.conv.full)
	c.conv.registerInput(cmd)
	cmd.Flag("output", "Where to write the ONNX model.").Short('o').Required().PlaceHolder("OUT.onnx").StringVar(&c.out)
}

func (c *modelImportConfig) run(ctx context.Context, logger *slog.Logger) error {
	opts := checkpoint.Options{ImgSize: c.imgsz, Train: c.form == "train"}
	if c.cfg != "" {
		f, err := yolo.ReadModelFile(c.cfg)
		if err != nil {
			return err
		}
		opts.ModelFile = f
	}
	res, err := checkpoint.Import(c.in, opts)
	if err != nil {
		return err
	}
	rep := res.Build
	logger.Info("checkpoint read", "source", res.Source, "file", rep.ModelFile, "layers", rep.Layers, "classes", rep.Classes,
		"strides", rep.Strides, "anchors", rep.Anchors, "anchors_from", rep.AnchorsFrom, "names_from", rep.NamesFrom)
	if rep.AnchorsFrom == "model file" {
		logger.Warn("the checkpoint holds no anchors: using the model file's, which training may have changed", "checkpoint", c.in)
	}
	if res.Fuse != nil {
		logger.Info("fused", "summary", res.Fuse.String())
	}
	params := onnx.Params(res.Model.Graph)
	if err := c.conv.apply(res.Model, c.in, logger); err != nil {
		return err
	}
	if err := onnx.WriteFile(c.out, res.Model); err != nil {
		return err
	}
	logger.Info("model written", "path", c.out, "form", c.form, "half", c.conv.half || c.conv.full, "input", c.conv.input, "params", params, "nodes", len(res.Model.Graph.Nodes))
	return nil
}

// modelHalfConfig is `vidpipe model half`.
type modelHalfConfig struct {
	in, out string
	conv    convertFlags
}

func (c *modelHalfConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Arg("input", "Float32 ONNX model.").Required().StringVar(&c.in)
	cmd.Flag("full", "Make everything FLOAT16, input and outputs too, as ultralytics' export --half does, instead of keeping float32 I/O and Detect decode.").BoolVar(&c.conv.full)
	c.conv.registerInput(cmd)
	cmd.Flag("output", "Where to write the float16 model.").Short('o').Required().PlaceHolder("OUT.onnx").StringVar(&c.out)
}

func (c *modelHalfConfig) run(ctx context.Context, logger *slog.Logger) error {
	m, err := onnx.ReadFile(c.in)
	if err != nil {
		return err
	}
	c.conv.half = true
	if err := c.conv.apply(m, c.in, logger); err != nil {
		return err
	}
	if err := onnx.WriteFile(c.out, m); err != nil {
		return err
	}
	logger.Info("model written", "path", c.out, "full", c.conv.full, "input", c.conv.input)
	return nil
}

// modelInputConfig is `vidpipe model input`.
type modelInputConfig struct {
	in, out string
	conv    convertFlags
}

func (c *modelInputConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Arg("input", "ONNX model with a float [N,3,H,W] input.").Required().StringVar(&c.in)
	cmd.Flag("input", inputHelp).Default("u8").EnumVar(&c.conv.input, "float", "u8")
	cmd.Flag("output", "Where to write the model.").Short('o').Required().PlaceHolder("OUT.onnx").StringVar(&c.out)
}

func (c *modelInputConfig) run(ctx context.Context, logger *slog.Logger) error {
	m, err := onnx.ReadFile(c.in)
	if err != nil {
		return err
	}
	if err := c.conv.apply(m, c.in, logger); err != nil {
		return err
	}
	if err := onnx.WriteFile(c.out, m); err != nil {
		return err
	}
	logger.Info("model written", "path", c.out, "input", c.conv.input)
	return nil
}

// modelFuseConfig is `vidpipe model fuse`.
type modelFuseConfig struct {
	in, out string
}

func (c *modelFuseConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Arg("input", "Training-form ONNX model (RepVGG branches and/or Conv+BatchNormalization).").Required().StringVar(&c.in)
	cmd.Flag("output", "Where to write the fused model.").Short('o').Required().PlaceHolder("OUT.onnx").StringVar(&c.out)
}

func (c *modelFuseConfig) run(ctx context.Context, logger *slog.Logger) error {
	m, err := onnx.ReadFile(c.in)
	if err != nil {
		return err
	}
	rep, err := fuse.Model(m)
	if err != nil {
		return fmt.Errorf("fuse %s: %w", c.in, err)
	}
	if err := onnx.WriteFile(c.out, m); err != nil {
		return err
	}
	fmt.Println(rep.String())
	for _, s := range rep.Skipped {
		logger.Warn("left untouched", "node", s.Node, "reason", s.Reason)
	}
	return nil
}

// modelBenchConfig is `vidpipe model bench`.
type modelBenchConfig struct {
	opts   bench.Options
	asJSON bool
}

func (c *modelBenchConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("imgsz", "Input size; repeat for several.").Default("640").IntsVar(&c.opts.Sizes)
	cmd.Flag("batch", "Batch sizes; repeat for several.").Default("1", "8").IntsVar(&c.opts.Batches)
	cmd.Flag("rep", "RepVGG variant to compare: downsample or all.").Default("all").EnumVar(&c.opts.Rep, "downsample", "all")
	cmd.Flag("threads", "ONNX Runtime intra-op threads (0 = all cores).").Default("0").IntVar(&c.opts.Threads)
	cmd.Flag("runs", "Timed runs per model and batch size.").Default("20").IntVar(&c.opts.Runs)
	cmd.Flag("device", "cpu, cuda or cuda:N.").Default("cpu").StringVar(&c.opts.Device)
	cmd.Flag("json", "Print JSON instead of a table.").BoolVar(&c.asJSON)
}

func (c *modelBenchConfig) run(ctx context.Context, logger *slog.Logger) error {
	c.opts.Logger = logger
	res, err := bench.Run(ctx, c.opts)
	if err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteTable(os.Stdout)
}
