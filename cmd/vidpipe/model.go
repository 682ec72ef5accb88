package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/model/bench"
	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// modelBuildConfig is `vidpipe model build`.
type modelBuildConfig struct {
	arch, form, rep string
	width, depth    float64
	imgsz, classes  int
	seed            int64
	weights, out    string
}

func (c *modelBuildConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("arch", "Architecture: yolov5s or repyolov5s.").Default("repyolov5s").EnumVar(&c.arch, "yolov5s", "repyolov5s")
	cmd.Flag("form", "train keeps BatchNormalization and RepVGG branches; deploy fuses them.").Default("deploy").EnumVar(&c.form, "train", "deploy")
	cmd.Flag("rep", "Which 3x3 convs become RepVGG blocks: downsample (the six stride-2) or all (also the eleven bottleneck 3x3s).").Default("all").EnumVar(&c.rep, "downsample", "all")
	cmd.Flag("width", "Width multiple.").Default("0.5").Float64Var(&c.width)
	cmd.Flag("depth", "Depth multiple.").Default("0.33").Float64Var(&c.depth)
	cmd.Flag("imgsz", "Input size in pixels, a multiple of 32.").Default("640").IntVar(&c.imgsz)
	cmd.Flag("classes", "Number of classes.").Default("80").IntVar(&c.classes)
	cmd.Flag("seed", "Seed for the deterministic untrained weights.").Default("0").Int64Var(&c.seed)
	cmd.Flag("weights", "Load weights from a safetensors state_dict (ultralytics / YOLOv5-Lite names) instead of the seed.").PlaceHolder("FILE.safetensors").StringVar(&c.weights)
	cmd.Flag("output", "Where to write the ONNX model.").Short('o').Required().PlaceHolder("FILE.onnx").StringVar(&c.out)
}

func (c *modelBuildConfig) run(ctx context.Context, logger *slog.Logger) error {
	cfg := yolo.Config{
		Arch: c.arch, Rep: c.rep, Width: c.width, Depth: c.depth,
		ImgSize: c.imgsz, Classes: c.classes, Seed: c.seed,
	}
	if c.arch == yolo.ArchYOLOv5s {
		cfg.Rep = "" // --rep only shapes repyolov5s
	}
	if c.weights != "" {
		st, err := safetensors.Open(c.weights)
		if err != nil {
			return err
		}
		cfg.Weights = st
	}
	m, err := yolo.Build(cfg)
	if err != nil {
		return err
	}
	params := onnx.Params(m.Graph)
	if c.form == "deploy" {
		rep, err := fuse.Model(m)
		if err != nil {
			return fmt.Errorf("fuse %s: %w", c.arch, err)
		}
		logger.Info("fused", "summary", rep.String())
		params = onnx.Params(m.Graph)
	}
	if err := onnx.WriteFile(c.out, m); err != nil {
		return err
	}
	logger.Info("model written", "path", c.out, "arch", c.arch, "form", c.form, "rep", c.rep, "params", params, "nodes", len(m.Graph.Nodes))
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
