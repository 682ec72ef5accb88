package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/internal/samples"
)

// TestRunConcatenatedTS runs two TS files concatenated byte for byte, whose
// timestamps jump back 2 s at frame 20, through `vidpipe run --fps 2`: the
// second half is analysed at the same rate as the first, and annotated.mp4
// shows every frame for a frame's time.
func TestRunConcatenatedTS(t *testing.T) {
	dir := t.TempDir()
	var joined []byte
	for _, start := range []string{"0", "5"} {
		p := filepath.Join(dir, "part"+start+".ts")
		samples.FFmpeg(t, "-ss", start, "-t", "2", "-i", samples.Path(t, "vtest.avi"), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	src := filepath.Join(dir, "joined.ts")
	if err := os.WriteFile(src, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := vidpipe(t, "run", "--out", out, "--imgsz", "320", "--fps", "2", src)
	// The second file's continuity counters restart, so the demuxer flags
	// the packet at the join as damaged and the video is partial.
	if code != 0 && !strings.Contains(stdout, "joined  partial") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var frames []int
	for _, l := range readLines(t, filepath.Join(out, "joined", "detections.jsonl")) {
		frames = append(frames, l.Frame)
	}
	if len(frames) != 8 || frames[len(frames)-1] != 35 {
		t.Errorf("analysed frames %v, want every 5th of 40, after the jump too", frames)
	}

	dst := filepath.Join(out, "joined", "annotated.mp4")
	if n := atoi(t, samples.Probe(t, dst, "nb_read_frames")[0]); n != 40 {
		t.Errorf("annotated.mp4 shows %d frames, want 40", n)
	}
	raw, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0", dst).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", dst, err)
	}
	var pts []float64
	for _, f := range strings.Fields(strings.ReplaceAll(string(raw), ",", " ")) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("ffprobe pts %q", f)
		}
		pts = append(pts, v)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i]-pts[i-1] < 0.099 {
			t.Fatalf("annotated frame %d at %.6f s, %.6f s after the previous; want a frame's 0.1 s", i, pts[i], pts[i]-pts[i-1])
		}
	}
}
