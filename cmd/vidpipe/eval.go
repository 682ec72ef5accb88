package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/eval"
)

// evalConfig is `vidpipe eval`: COCO bbox metrics of detections against
// ground truth, as pycocotools computes them.
type evalConfig struct {
	gt, detections string
	json           bool
	s3             s3Flags
}

func (c *evalConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Arg("detections", "Detections: a COCO results .json (image_id, category_id, bbox, score, as YOLOv5's val.py writes), or vidpipe results: a detections.jsonl or .parquet, or a directory or s3:// prefix of <video>/detections.* files.").Required().StringVar(&c.detections)
	cmd.Flag("gt", "COCO ground-truth JSON (images, annotations, categories): a local path or s3:// URI. Images tie to frames by a \"frame\" field or a file name ending in _<frame>.").Required().PlaceHolder("GT.json").StringVar(&c.gt)
	cmd.Flag("json", "Print the 12 numbers and per_class as one JSON object instead of a table.").BoolVar(&c.json)
	c.s3.register(cmd)
}

func (c *evalConfig) run(ctx context.Context, logger *slog.Logger) error {
	return runEval(ctx, c, logger, os.Stdout)
}

func runEval(ctx context.Context, c *evalConfig, logger *slog.Logger, out io.Writer) error {
	bks := c.s3.buckets(logger)
	defer bks.Close()
	gt, err := eval.LoadGroundTruth(ctx, bks, c.gt)
	if err != nil {
		return err
	}
	dets, err := eval.LoadDetections(ctx, bks, c.detections, gt)
	if err != nil {
		return err
	}
	n := dets.Counts
	logger.Info("eval", "images", len(gt.Images), "categories", len(gt.Categories), "annotations", gt.Annotations,
		"detections", n.Read, "kept", n.Kept, "off_image", n.OffImage, "off_class", n.OffClass, "files", len(n.Files))
	if len(n.Classes) > 0 {
		logger.Warn("classes with no ground-truth category", "classes", n.Classes)
	}
	if n.Read > 0 && n.Kept == 0 {
		logger.Warn("no detection is on a ground-truth image of a ground-truth category: check image ids, frame names and classes")
	}
	res := eval.Evaluate(gt, dets)
	if c.json {
		return res.WriteJSON(out)
	}
	return res.WriteTable(out)
}
