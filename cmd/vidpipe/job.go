package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/storage"
)

// jobRecord is job.json: what was asked, with which model and versions,
// and how long it took.
type jobRecord struct {
	Job         string                  `json:"job"`
	Inputs      []string                `json:"inputs"`
	Videos      []coordinator.VideoSpec `json:"videos"`
	Model       modelRecord             `json:"model"`
	Every       int                     `json:"every"`
	FPS         float64                 `json:"fps"`
	Conf        float64                 `json:"conf"`
	IoU         float64                 `json:"iou"`
	MaxDet      int                     `json:"max_det"`
	Batch       int                     `json:"batch"`
	Workers     int                     `json:"workers"`
	Threads     int                     `json:"threads"`
	FrameCodec  string                  `json:"frame_codec"`
	Preprocess  string                  `json:"preprocess"`
	Device      string                  `json:"device"`
	Versions    map[string]string       `json:"versions"`
	Started     time.Time               `json:"started"`
	Finished    time.Time               `json:"finished"`
	WallSeconds float64                 `json:"wall_seconds"`
	Status      string                  `json:"status"`
	Frames      int                     `json:"frames"`
}

type modelRecord struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Input  int    `json:"input"`
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func versions() map[string]string {
	v := map[string]string{"go": runtime.Version(), "onnxruntime": infer.ORTVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v["vidpipe"] = bi.Main.Version
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/asticode/go-astiav", "github.com/nats-io/nats-server/v2", "github.com/yalue/onnxruntime_go":
				v[d.Path] = d.Version
			}
		}
	}
	return v
}

// writeJobRecord writes job.json next to summary.json.
func writeJobRecord(ctx context.Context, out storage.Bucket, prefix string, rec *jobRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := out.Put(ctx, storage.JoinKey(prefix, coordinator.JobFile), bytes.NewReader(append(b, '\n'))); err != nil {
		return fmt.Errorf("write job record: %w", err)
	}
	return nil
}
