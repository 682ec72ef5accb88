package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/runbench"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/infer"
)

// benchConfig is `vidpipe bench`: what the pipeline costs over its limits,
// measured in one run on one video.
type benchConfig struct {
	video   string
	model   string
	imgsz   int
	batch   int
	workers int
	threads int
	dev     deviceFlags
	codec   string
	matrix  string
	asJSON  bool

	preprocess  string
	compare     int
	compareConf float64
	rounds      int
}

func (c *benchConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("model", "ONNX detection model, as for run; default: the built-in one.").PlaceHolder("PATH").StringVar(&c.model)
	cmd.Flag("imgsz", "Input size of the built-in model and of a --model exported with a dynamic input size.").Default("640").IntVar(&c.imgsz)
	cmd.Flag("batch", "Batch size, for the pipeline and the raw model alike.").Default("4").IntVar(&c.batch)
	cmd.Flag("workers", "Model sessions: workers in the pipeline, sessions running at once alone.").Default("1").IntVar(&c.workers)
	cmd.Flag("threads", "ONNX Runtime threads per session (0 divides the cores among them), for both.").Default("0").IntVar(&c.threads)
	c.dev.register(cmd)
	cmd.Flag("frame-codec", "How frames travel in the pipeline: raw or jpeg.").Default("raw").EnumVar(&c.codec, "raw", "jpeg")
	cmd.Flag("matrix", "Batch sizes, comma-separated, at which the model alone also runs in every precision the device has (fp32; on CUDA tf32 and fp16 too) with float and u8 input; default 1,8,32 on CUDA, none on the CPU; \"none\" for none.").PlaceHolder("1,8,32").StringVar(&c.matrix)
	cmd.Flag("json", "Print JSON.").BoolVar(&c.asJSON)
	preprocessFlag(cmd, &c.preprocess)
	cmd.Flag("compare-frames", "Frames, evenly spaced, on which the model runs on both preprocessings' input to compare detections.").Default("20").IntVar(&c.compare)
	cmd.Flag("compare-conf", "Confidence threshold of that comparison (low, so an untrained model finds boxes too); IoU 0.45, no max_det cap to speak of (30000).").Default("0.01").Float64Var(&c.compareConf)
	cmd.Flag("rounds", "Interleaved rounds of the model alone and the pipeline; medians and the spread are reported.").Default("5").IntVar(&c.rounds)
	cmd.Arg("video", "Video to measure on (a short clip: it is decoded several times).").Required().StringVar(&c.video)
}

func (c *benchConfig) run(ctx context.Context, logger *slog.Logger) error {
	pre, err := decode.ParsePreprocess(c.preprocess)
	if err != nil {
		return usageError{err}
	}
	dev, err := infer.ParseDevice(c.dev.device)
	if err != nil {
		return usageError{err}
	}
	if c.workers < 1 {
		return usagef("--workers must be at least 1")
	}
	matrix, err := parseBatches(c.matrix, dev)
	if err != nil {
		return err
	}
	codec, _ := bus.ParseCodec(c.codec)
	so := c.dev.sessions(c.workers, c.threads, c.batch)
	res, err := runbench.Run(ctx, runbench.Options{
		Video: c.video, Model: c.model, ImgSize: c.imgsz, Batch: c.batch, Workers: c.workers, Threads: c.threads,
		Device: so.Device, FP32: so.FP32, Half: so.Half, Input: so.Input, Candidates: so.Candidates,
		Preprocess: pre, Codec: codec, Matrix: matrix,
		CompareFrames: c.compare, CompareConf: c.compareConf, Rounds: c.rounds, Logger: logger,
	})
	if err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.Write(os.Stdout)
}

// parseBatches parses --matrix: "1,8,32", "none", or empty for the
// device's default.
func parseBatches(s string, dev infer.Device) ([]int, error) {
	switch s {
	case "":
		if dev.Kind == infer.CUDA {
			return []int{1, 8, 32}, nil
		}
		return nil, nil
	case "none":
		return nil, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, usagef("--matrix %q: %q is not a batch size", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}
