package annotate

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAnnotate measures Write on a 768x576 clip with two boxes per
// frame, against the ffmpeg CLI doing the same decode and libx264 encode
// without drawing, timed in the same run (vs_ffmpeg = our frames/s ÷ CLI's).
func BenchmarkAnnotate(b *testing.B) {
	src := clipPath(b, "bench.avi")
	frames := probe(b, src).frames
	dir := b.TempDir()
	boxes := testBoxes(768, 576)
	dets := func(int) ([]Box, bool) { return boxes, true }

	var cliFPS float64
	for range 2 { // best of two, so a cold start does not flatter us
		start := time.Now()
		cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-i", src, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
			"-fps_mode", "passthrough", filepath.Join(dir, "cli.mp4"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ffmpeg CLI: %v: %s", err, out)
		}
		cliFPS = max(cliFPS, float64(frames)/time.Since(start).Seconds())
	}

	dst := filepath.Join(dir, "annotated.mp4")
	b.ResetTimer()
	for range b.N {
		if _, err := Write(context.Background(), src, nil, dst, dets, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	fps := float64(frames*b.N) / sec
	b.ReportMetric(fps, "frames/s")
	b.ReportMetric(1000/fps, "ms/frame")
	b.ReportMetric(fps/cliFPS, "vs_ffmpeg")
	b.ReportMetric(0, "ns/op")
}
