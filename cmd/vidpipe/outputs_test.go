package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/internal/samples"
)

// tiny makes a 1x1 H.264 video of 28 frames: small enough for the model,
// too small to annotate.
func tiny(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "tiny.mp4")
	samples.FFmpeg(t, "-f", "lavfi", "-i", "color=c=red:size=16x16:rate=25", "-frames:v", "28", "-vf", "scale=1:1",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", p)
	return p
}

// TestRunTinyVideoKeepsItsAnalysis: every frame of a 1x1 video is analysed
// but it cannot be annotated. The annotation error is reported beside the
// analysis; the video still succeeds with its stats.json and detections,
// locally and in a bucket.
func TestRunTinyVideoKeepsItsAnalysis(t *testing.T) {
	dir := t.TempDir()
	src := tiny(t, dir)
	check := func(t *testing.T, sum coordinator.Summary, stats coordinator.Stats) {
		t.Helper()
		if len(sum.Videos) != 1 {
			t.Fatalf("summary: %+v", sum)
		}
		v := sum.Videos[0]
		if v.Status != coordinator.Succeeded || v.Error != "" || v.Stats.Frames != 28 || stats.Frames != 28 {
			t.Errorf("video %+v, stats.json %+v: want succeeded with 28 frames", v, stats)
		}
		if !strings.Contains(v.AnnotateError, "1x1") || strings.Count(v.AnnotateError, "tiny.mp4") != 1 {
			t.Errorf("annotate_error %q: want the reason, naming the input once", v.AnnotateError)
		}
		want := []string{coordinator.DetectionsFile, coordinator.ParquetFile, coordinator.StatsFile}
		if !slices.Equal(v.Outputs, want) {
			t.Errorf("outputs %v, want %v", v.Outputs, want)
		}
	}

	t.Run("local", func(t *testing.T) {
		out := filepath.Join(dir, "out")
		code, stdout, stderr := vidpipe(t, "run", "--out", out, "--imgsz", "256", src)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		var sum coordinator.Summary
		var stats coordinator.Stats
		readJSON(t, filepath.Join(out, coordinator.SummaryFile), &sum)
		readJSON(t, filepath.Join(out, "tiny", coordinator.StatsFile), &stats)
		check(t, sum, stats)
		if n := len(readLines(t, filepath.Join(out, "tiny", coordinator.DetectionsFile))); n != 28 {
			t.Errorf("detections.jsonl has %d lines, want 28", n)
		}
		if _, err := os.Stat(filepath.Join(out, "tiny", coordinator.AnnotatedFile)); err == nil {
			t.Error("a broken annotated.mp4 was left")
		}
	})

	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		srv.SetEnv(t)
		srv.CreateBucket(t, "vidpipe")
		c := srv.Client()
		code, stdout, stderr := vidpipe(t, "run", "--s3-endpoint", srv.Endpoint, "--out", "s3://vidpipe/results", "--job", "j1", "--imgsz", "256", src)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		var sum coordinator.Summary
		var stats coordinator.Stats
		if err := json.Unmarshal(getObject(t, c, "vidpipe", "results/j1/summary.json"), &sum); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(getObject(t, c, "vidpipe", "results/j1/tiny/stats.json"), &stats); err != nil {
			t.Fatal(err)
		}
		check(t, sum, stats)
		if n := strings.Count(string(getObject(t, c, "vidpipe", "results/j1/tiny/detections.jsonl")), "\n"); n != 28 {
			t.Errorf("uploaded detections.jsonl has %d lines, want 28", n)
		}
		getObject(t, c, "vidpipe", "results/j1/tiny/detections.parquet")
	})
}

// TestRunDuplicateBaseNames: inputs whose generated names would collide
// (cam, cam-2 from the second cam.mp4, and cam-2 itself) get distinct
// names, and the job runs to its summary.
func TestRunDuplicateBaseNames(t *testing.T) {
	dir := t.TempDir()
	src := tiny(t, dir)
	var inputs []string
	for _, p := range []string{"dup1/cam.mp4", "dup2/cam.mp4", "cam-2.mp4"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(src, p); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := vidpipe(t, append([]string{"run", "--out", out, "--imgsz", "256", "--no-annotate"}, inputs...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, coordinator.SummaryFile), &sum)
	names := map[string]string{}
	for _, v := range sum.Videos {
		if v.Status != coordinator.Succeeded || v.Stats.Frames != 28 {
			t.Errorf("video %+v", v)
		}
		if prev, dup := names[v.Video]; dup {
			t.Errorf("%s and %s are both %q", prev, v.Source, v.Video)
		}
		names[v.Video] = v.Source
		if _, err := os.Stat(filepath.Join(out, v.Video, coordinator.StatsFile)); err != nil {
			t.Error(err)
		}
	}
	if len(sum.Videos) != 3 || names["cam"] != inputs[0] || names["cam-2"] != inputs[2] {
		t.Errorf("videos %v", names)
	}
}

// TestRunFileURIOutput: --out file:///abs/dir writes to /abs/dir, parsed by
// storage, not to a folder named "file:" in the working directory.
func TestRunFileURIOutput(t *testing.T) {
	dir := t.TempDir()
	src := tiny(t, dir)
	out := filepath.Join(dir, "out")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(wd, "file:")
	t.Cleanup(func() { os.RemoveAll(stray) })
	code, stdout, stderr := vidpipe(t, "run", "--out", "file://"+out, "--imgsz", "256", "--no-annotate", src)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(stray); err == nil {
		t.Errorf("outputs went to %s", stray)
	}
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, coordinator.SummaryFile), &sum)
	if _, err := os.Stat(filepath.Join(out, "tiny", coordinator.DetectionsFile)); err != nil || !sum.OK() {
		t.Errorf("summary %+v, detections: %v", sum, err)
	}
}
