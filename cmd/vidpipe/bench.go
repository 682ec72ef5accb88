package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/internal/runbench"
	"github.com/vidpipe/vidpipe/media/decode"
)

// benchConfig is `vidpipe bench`: what the pipeline costs over its limits,
// measured in one run on one video.
type benchConfig struct {
	video   string
	model   string
	imgsz   int
	batch   int
	threads int
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
	cmd.Flag("threads", "ONNX Runtime threads (0 = all cores), for both.").Default("0").IntVar(&c.threads)
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
	res, err := runbench.Run(ctx, runbench.Options{
		Video: c.video, Model: c.model, ImgSize: c.imgsz, Batch: c.batch, Threads: c.threads, Preprocess: pre,
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
