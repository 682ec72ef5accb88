// Package builtin builds and caches vidpipe's default detector: fused
// RepYOLOv5s (rep=all) with deterministic, untrained weights. It finds
// nothing meaningful; it exists so the pipeline runs end to end with no
// download. Bring trained weights with --model.
package builtin

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vidpipe/vidpipe/internal/files"
	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// Config of the built-in model.
func Config(imgsz int) yolo.Config {
	return yolo.Config{Arch: "repyolov5s", Rep: "all", Width: 0.5, Depth: 0.33, ImgSize: imgsz, Classes: 80}
}

// Build returns the built-in model, fused, at the given input size.
func Build(imgsz int) (*onnx.Model, error) {
	m, err := yolo.Build(Config(imgsz))
	if err != nil {
		return nil, err
	}
	if _, err := fuse.Model(m); err != nil {
		return nil, fmt.Errorf("fuse built-in model: %w", err)
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

// Path returns the cached built-in model for imgsz, building it on first use.
func Path(imgsz int) (string, error) {
	dir := filepath.Join(CacheDir(), "models")
	path := filepath.Join(dir, fmt.Sprintf("repyolov5s-all-fused-%d.onnx", imgsz))
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
