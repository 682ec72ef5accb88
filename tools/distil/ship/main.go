// Command ship turns the distilled training-form weights into vidpipe's
// built-in model: it builds RepYOLOv5s (rep=all) in training form from them,
// fuses it with model/fuse, and writes the fused weights as a float16
// safetensors state_dict (ultralytics' fused names) for model/builtin to
// embed.
//
//	go run ./tools/distil/ship --weights TRAIN.safetensors -o model/builtin/repyolov5s.safetensors
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/vidpipe/vidpipe/internal/files"
	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/safetensors"
	"github.com/vidpipe/vidpipe/model/yolo"
)

func main() {
	weights := flag.String("weights", "", "training-form weights (tools/distil/train.py's safetensors)")
	out := flag.String("o", "model/builtin/"+builtin.WeightsFile, "where to write the built-in weights")
	flag.Parse()
	if err := ship(*weights, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ship:", err)
		os.Exit(1)
	}
}

func ship(weightsPath, out string) error {
	if weightsPath == "" {
		return fmt.Errorf("--weights is required")
	}
	train, err := safetensors.Open(weightsPath)
	if err != nil {
		return err
	}
	cfg := builtin.Config(640)
	cfg.Weights = train
	m, rep, err := yolo.BuildReport(cfg)
	if err != nil {
		return fmt.Errorf("build %s: %w", weightsPath, err)
	}
	summary, err := fuse.Model(m)
	if err != nil {
		return fmt.Errorf("fuse %s: %w", weightsPath, err)
	}
	deploy, err := yolo.DeployWeights(m)
	if err != nil {
		return err
	}
	for name, t := range deploy {
		t.Half = true
		deploy[name] = t
	}
	// The graph holds the anchors decoded; the state_dict keeps them, in
	// grid units, as training left them.
	for _, name := range train.Names() {
		if strings.HasSuffix(name, ".anchors") {
			shape, _ := train.Shape(name)
			data, err := train.Tensor(name, shape)
			if err != nil {
				return err
			}
			deploy[name] = safetensors.Tensor{Shape: shape, Data: data}
		}
	}
	meta := map[string]string{"form": "deploy", "fused_by": "vidpipe model/fuse: " + summary.String()}
	for k, v := range train.Metadata() {
		if k != "form" && k != "fused_by" {
			meta[k] = v
		}
	}
	b, err := safetensors.Encode(deploy, meta)
	if err != nil {
		return err
	}
	if err := files.WriteAtomic(out, b, 0o644); err != nil {
		return err
	}
	slog.Info("built-in weights written", "path", out, "bytes", len(b), "tensors", len(deploy),
		"anchors_from", rep.AnchorsFrom, "fusion", summary.String())
	return nil
}
