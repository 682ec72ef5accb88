package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/internal/peakrss"
	"github.com/vidpipe/vidpipe/internal/samples"
)

// runArgsEnv carries the arguments of `vidpipe run` to TestRunChild.
const runArgsEnv = "VIDPIPE_RUN_ARGS"

type runReport struct {
	PeakRSS int64  `json:"peak_rss"` // VmHWM, bytes
	Err     string `json:"err"`
}

// TestRunChild is the child process of runPeak: `vidpipe run` in this
// process, reporting its own peak resident set. The vidpipe binary run as a
// child would report its parent's peak too (vfork), and has no way to say
// its own.
func TestRunChild(t *testing.T) {
	raw := os.Getenv(runArgsEnv)
	if raw == "" {
		t.Skip("child of runPeak")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	app := kingpin.New("vidpipe", "")
	rc := &runConfig{}
	rc.registerFlags(app.Command("run", ""))
	if _, err := app.Parse(append([]string{"run"}, args...)); err != nil {
		t.Fatal(err)
	}
	astiav.SetLogLevel(astiav.LogLevelError)
	rep := runReport{}
	if err := rc.run(context.Background(), newLogger("info", "text")); err != nil {
		rep.Err = err.Error()
	}
	var err error
	if rep.PeakRSS, err = peakrss.Self(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("REPORT %s\n", b)
}

// runPeak runs `vidpipe run args...` in a child process and returns its
// peak resident set in bytes; the run must not fail.
func runPeak(t *testing.T, args ...string) int64 {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunChild$", "-test.v")
	cmd.Env = append(os.Environ(), runArgsEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vidpipe run %v in a child: %v\n%s", args, err, out[max(0, len(out)-3000):])
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "REPORT "); ok {
			var rep runReport
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Err != "" {
				t.Fatalf("vidpipe run %v: %s\n%s", args, rep.Err, out[max(0, len(out)-3000):])
			}
			return rep.PeakRSS
		}
	}
	t.Fatalf("no report from vidpipe run %v:\n%s", args, out)
	return 0
}

// TestRunHugeFramesMemory is the 199 KB clip of 30 black 8192x8192 frames
// that once drove `vidpipe run` to 8.5 GB: the whole process now stays
// under 1.5 GB, the analysis succeeds, and annotated.mp4 is written at the
// 4K UHD bound or below, as the budget asks (or, on a smaller budget, its annotation fails early and by
// name, the analysis kept).
func TestRunHugeFramesMemory(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "black8k.mp4")
	samples.FFmpeg(t, "-f", "lavfi", "-i", "color=black:s=8192x8192:r=30", "-frames:v", "30", "-c:v", "libx264", "-preset", "ultrafast", src)
	out := filepath.Join(dir, "out")
	// Every fifth frame analysed keeps the test short; every frame is still
	// decoded by ingest and annotated.
	peak := runPeak(t, "--out", out, "--imgsz", "128", "--batch", "8", "--every", "5", src)
	t.Logf("peak RSS of vidpipe run on 30 black 8192x8192 frames: %d MB", peak>>20)
	if peak >= 1500<<20 {
		t.Errorf("peak RSS %d MB, want under 1500 MB", peak>>20)
	}
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, coordinator.SummaryFile), &sum)
	if len(sum.Videos) != 1 || sum.Videos[0].Status != coordinator.Succeeded || sum.Videos[0].Stats.Frames != 6 {
		t.Fatalf("summary: %+v", sum)
	}
	v := sum.Videos[0]
	if v.AnnotateError != "" {
		if !strings.Contains(v.AnnotateError, "8192x8192 frames need ~") || !strings.Contains(v.AnnotateError, "over the annotation budget") {
			t.Fatalf("annotate_error %q is not the early budget refusal", v.AnnotateError)
		}
		return
	}
	got := samples.Probe(t, filepath.Join(out, "black8k", coordinator.AnnotatedFile), "width,height,nb_read_frames")
	w, h, n := atoi(t, got[0]), atoi(t, got[1]), atoi(t, got[2])
	if w != h || w*h > 3840*2160 || w < 640 || n != 30 {
		t.Errorf("annotated.mp4 is %dx%d with %d frames, want square within 4K UHD's pixels with 30", w, h, n)
	}
	t.Logf("annotated.mp4: %dx%d, %d frames", w, h, n)
}

// TestRunAnnotationOverBudget: a video whose annotation cannot fit the
// budget keeps its analysis: it succeeds, its detections and stats are
// written, and annotate_error says why annotated.mp4 is missing.
func TestRunAnnotationOverBudget(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir, "1")
	out := filepath.Join(dir, "out")
	code, _, stderr := vidpipe(t, "run", "--out", out, "--imgsz", "128", "--annotate-memory", "8MiB", src)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, coordinator.SummaryFile), &sum)
	v := sum.Videos[0]
	want := "768x576 frames need ~"
	if v.Status != coordinator.Succeeded || !strings.Contains(v.AnnotateError, want) || !strings.HasSuffix(v.AnnotateError, "over the annotation budget of 8 MB") {
		t.Fatalf("video %+v, want succeeded with annotate_error %q...", v, want)
	}
	for _, name := range []string{coordinator.DetectionsFile, coordinator.StatsFile} {
		if _, err := os.Stat(filepath.Join(out, "clip", name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "clip", coordinator.AnnotatedFile)); !os.IsNotExist(err) {
		t.Errorf("annotated.mp4 written over budget: %v", err)
	}
}
