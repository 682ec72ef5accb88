package yolo

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// TestSameBytesAsV6Builder proves the model-file builder emits, byte for
// byte, what the hard-coded v6 builder it replaced emitted (the builder that
// independent checks found exact against ultralytics). The hashes are the
// SHA-256 of onnx.Encode of that builder's models, recorded by running it at
// commit 08364a7 (`git show 08364a7:model/yolo/graph.go`); the two metadata
// keys added since (strides, anchors) are checked here and left out of the
// hash.
func TestSameBytesAsV6Builder(t *testing.T) {
	file, err := safetensors.Open(smallWeights)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		hash string
	}{
		{"yolov5s", Config{}, "a588c59dbc7c2aab39e3e7b6a9c379ac2975f53758c4818d940ac612881d1b54"},
		{"repyolov5s downsample", Config{Arch: ArchRepYOLOv5s}, "cf18f8fffed80d031636ea2c87cce887e0942296a68cd80f93833c90f2e81c03"},
		{"repyolov5s all", Config{Arch: ArchRepYOLOv5s, Rep: RepAll, Seed: 5}, "b46d58053160d9f0aaf4f2ab6db230f9e74e8a4cc19c2a1cf54f95b98106ba4e"},
		{"yolov5s narrow deep 320", Config{Width: 0.25, Depth: 0.67, ImgSize: 320, Classes: 7}, "fbe11e327343c579ac8de1e1438c946dc4e751716482f4a79cdf7d32c025355b"},
		{"repyolov5s all torch weights", smallConfig(file), "16613d9dd65123e26ce4cc0a324d5361491c2ebf95873dc4b7a8085f5f4a0477"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Build(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			meta := map[string]string{}
			for _, kv := range m.Metadata {
				meta[kv.Key] = kv.Value
			}
			if meta["strides"] != "[8, 16, 32]" || meta["anchors"] != "[[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]" {
				t.Errorf("strides %q, anchors %q", meta["strides"], meta["anchors"])
			}
			if m.Metadata[0].Key != "stride" || m.Metadata[1].Key != "names" {
				t.Fatalf("metadata starts %v, want stride and names as before", m.Metadata[:2])
			}
			m.Metadata = m.Metadata[:2]
			b := onnx.Encode(m)
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != tt.hash {
				t.Errorf("%d bytes hash to %s, the v6 builder's to %s", len(b), got, tt.hash)
			}
		})
	}
}
