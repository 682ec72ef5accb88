package decode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDecodeLetterbox decodes and letterboxes the 768x576 vtest.avi to
// 640x640 RGB, then times the ffmpeg CLI on the same file in the same run:
// the literal "-vf scale=640:480" (yuv420p out) and the like-for-like
// "scale=640:480:flags=bilinear,format=rgb24". ffmpeg's speed is taken from
// its -benchmark rtime, which excludes process start and input probing, so
// the ratios are conservative. threads=1 pins both to one thread (decoder
// and filter graph); threads=0 leaves both on auto. Both preprocessings are
// timed: exact (the default) and fast.
func BenchmarkDecodeLetterbox(b *testing.B) {
	path := clips["vtest.avi"]
	for _, pre := range []Preprocess{PreprocessExact, PreprocessFast} {
		for _, threads := range []int{1, 0} {
			benchDecode(b, path, pre, threads)
		}
	}
}

func benchDecode(b *testing.B, path string, pre Preprocess, threads int) {
	b.Run(fmt.Sprintf("preprocess=%s/threads=%d", pre, threads), func(b *testing.B) {
		ctx := context.Background()
		frames := 0
		start := time.Now()
		for b.Loop() {
			d, err := Open(ctx, path, nil, Options{Size: 640, Threads: threads, Preprocess: pre})
			if err != nil {
				b.Fatal(err)
			}
			for {
				_, err := d.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				frames++
			}
			d.Close()
		}
		ours := float64(frames) / time.Since(start).Seconds()
		perRun := frames / b.N
		ff := ffmpegFPS(b, path, threads, perRun, "scale=640:480")
		ffRGB := ffmpegFPS(b, path, threads, perRun, "scale=640:480:flags=bilinear,format=rgb24")
		b.ReportMetric(ours, "frames/s")
		b.ReportMetric(ff, "ffmpeg-frames/s")
		b.ReportMetric(ours/ff, "ratio")
		b.ReportMetric(ffRGB, "ffmpeg-rgb-frames/s")
		b.ReportMetric(ours/ffRGB, "ratio-rgb")
	})
}

var rtimeRE = regexp.MustCompile(`rtime=([0-9.]+)s`)

func ffmpegFPS(b *testing.B, path string, threads, frames int, vf string) float64 {
	b.Helper()
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-benchmark"}
	if threads > 0 {
		args = append(args, "-threads", strconv.Itoa(threads))
	}
	args = append(args, "-i", path)
	if threads > 0 {
		args = append(args, "-filter_threads", strconv.Itoa(threads))
	}
	args = append(args, "-vf", vf, "-f", "null", "-")
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, out)
	}
	m := rtimeRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("no rtime in ffmpeg output: %s", out)
	}
	rtime, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || rtime <= 0 {
		b.Fatalf("ffmpeg rtime %q: %v", m[1], err)
	}
	return float64(frames) / rtime
}
