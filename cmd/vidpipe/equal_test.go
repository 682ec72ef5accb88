package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// TestRunEqualsCluster: one short clip through `vidpipe run` and through
// coordinator, ingest and worker processes gives byte-identical
// detections.jsonl and the same frame counts, since both are the same
// components. Batch and threads are the same on both sides, so ONNX Runtime
// computes each frame the same way.
func TestRunEqualsCluster(t *testing.T) {
	c := startCluster(t)
	counts := c.UploadClips(1, "2")
	const imgsz, conf = "320", "0.02"
	c.Coordinator("coordinator", "--imgsz", imgsz)
	c.Ingest("ingest")
	c.Worker("worker-1", "--imgsz", imgsz, "--batch", "2", "--threads", "1")
	code, stdout, stderr := vidpipe(t, "submit", "--api", c.APIURL, "--output", "s3://results/eq", "--conf", conf, "--no-annotate", "s3://videos/clips/cam1.mp4")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	rec := c.WaitJob(c.Client(), id, "the end", 5*time.Minute, func(r *jobs.Record) bool { return r.State.Final() })
	c.CheckExactlyOnce(rec, counts)
	key := strings.TrimPrefix(rec.Videos[0].Results["detections_json"], "s3://results/")
	distributed := c.Get("results", key)
	var distStats coordinator.Stats
	if err := json.Unmarshal(c.Get("results", strings.TrimPrefix(rec.Videos[0].Results["stats"], "s3://results/")), &distStats); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(c.Dir, "run")
	code, stdout, stderr = vidpipe(t, "run", "--out", out, "--imgsz", imgsz, "--conf", conf, "--batch", "2", "--threads", "1",
		"--no-annotate", filepath.Join(c.Dir, "clips", "cam1.mp4"))
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	embedded, err := os.ReadFile(filepath.Join(out, "cam1", coordinator.DetectionsFile))
	if err != nil {
		t.Fatal(err)
	}
	var runStats coordinator.Stats
	readJSON(t, filepath.Join(out, "cam1", coordinator.StatsFile), &runStats)

	if !bytes.Equal(embedded, distributed) {
		t.Errorf("detections.jsonl differ: %d bytes from vidpipe run, %d from the processes", len(embedded), len(distributed))
	}
	if bytes.Count(embedded, []byte(`"class"`)) == 0 {
		t.Error("no detections at all: the comparison shows nothing")
	}
	if runStats.Frames != distStats.Frames || runStats.Frames != counts["cam1"] || runStats.Decoded != distStats.Decoded {
		t.Errorf("frames: run %d (decoded %d), processes %d (decoded %d), clip %d",
			runStats.Frames, runStats.Decoded, distStats.Frames, distStats.Decoded, counts["cam1"])
	}
}
