// Package builtin is vidpipe's default detector: RepYOLOv5s (rep=all) in
// deploy form, with weights distilled from an open COCO detector on the
// sample videos (tools/distil). It finds people and cars in scenes like
// vtest.avi's; for real work, bring your own model with --model.
package builtin

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vidpipe/vidpipe/internal/files"
	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// WeightsFile is the embedded state_dict: fused weights in float16, under
// ultralytics' fused names, written by tools/distil/ship.
const WeightsFile = "repyolov5s.safetensors"

//go:embed repyolov5s.safetensors
var weights []byte

// Config of the built-in model, without weights.
func Config(imgsz int) yolo.Config {
	return yolo.Config{Arch: "repyolov5s", Rep: "all", Width: 0.5, Depth: 0.33, ImgSize: imgsz, Classes: 80}
}

// Weights returns the embedded weights.
func Weights() (*safetensors.File, error) {
	f, err := safetensors.Decode(weights, "built-in "+WeightsFile)
	if err != nil {
		return nil, fmt.Errorf("built-in model: %w", err)
	}
	return f, nil
}

// Build returns the built-in model at the given input size: the deploy
// graph (one 3x3 conv per RepVGG block, BN folded), float32.
func Build(imgsz int) (*onnx.Model, error) {
	w, err := Weights()
	if err != nil {
		return nil, err
	}
	cfg := Config(imgsz)
	cfg.Weights = w
	m, err := yolo.Build(cfg)
	if err != nil {
		return nil, fmt.Errorf("build built-in model: %w", err)
	}
	return m, nil
}

// Seeded returns the same graph with deterministic, untrained float32
// weights (yolo.Seeded), fused: for tests that need weights no training run
// changes, or weights that are not float16 values already.
func Seeded(imgsz int) (*onnx.Model, error) {
	m, err := yolo.Build(Config(imgsz))
	if err != nil {
		return nil, err
	}
	if _, err := fuse.Model(m); err != nil {
		return nil, fmt.Errorf("fuse seeded model: %w", err)
	}
	return m, nil
}

// CacheDir is $VIDPIPE_CACHE, or ~/.cache/vidpipe.
func CacheDir() string {
	if d := os.Getenv("VIDPIPE_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "vidpipe")
	}
	return filepath.Join(home, ".cache", "vidpipe")
}

// Path returns the cached built-in model for imgsz, building it on first
// use. The name carries the weights' digest, so new weights never meet a
// stale cached graph.
func Path(imgsz int) (string, error) {
	sum := sha256.Sum256(weights)
	path := filepath.Join(CacheDir(), "models", fmt.Sprintf("repyolov5s-%s-%d.onnx", hex.EncodeToString(sum[:6]), imgsz))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	m, err := Build(imgsz)
	if err != nil {
		return "", err
	}
	if err := files.WriteAtomic(path, onnx.Encode(m), 0o644); err != nil {
		return "", fmt.Errorf("cache built-in model: %w", err)
	}
	return path, nil
}
