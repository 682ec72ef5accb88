package decode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
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

// BenchmarkLetterboxers decodes a 1080p H.264 clip (vtest.avi scaled up,
// made with the ffmpeg CLI on first use) to 640x640 letterboxes with one
// letterboxer, the serial path, and with the automatic count, for both
// preprocessings, and times decoding alone (NextPicture), the ceiling fanning
// out approaches. threads=0 leaves FFmpeg's frame threads on auto, whose
// decoding already overlaps the serial letterboxing; threads=1 decodes on the
// calling goroutine alone. The three alternate within each iteration, so a
// busy machine slows them alike; ratio is automatic over serial.
func BenchmarkLetterboxers(b *testing.B) {
	path := hd1080Long(b)
	for _, pre := range []Preprocess{PreprocessExact, PreprocessFast} {
		for _, threads := range []int{0, 1} {
			b.Run(fmt.Sprintf("preprocess=%s/threads=%d", pre, threads), func(b *testing.B) {
				runs := []struct {
					opts     Options
					pictures bool // decoding alone
				}{
					{Options{Size: 640, Preprocess: pre, Threads: threads, Letterboxers: 1}, false},
					{Options{Size: 640, Preprocess: pre, Threads: threads}, false},
					{Options{Threads: threads}, true},
				}
				var frames [3]int
				var spent [3]time.Duration
				for b.Loop() {
					for i, r := range runs {
						n, d := decodeTimed(b, path, r.opts, r.pictures)
						frames[i] += n
						spent[i] += d
					}
				}
				var fps [3]float64
				for i := range fps {
					fps[i] = float64(frames[i]) / spent[i].Seconds()
				}
				b.ReportMetric(fps[0], "serial-frames/s")
				b.ReportMetric(1000/fps[0], "serial-ms/frame")
				b.ReportMetric(fps[1], "frames/s")
				b.ReportMetric(1000/fps[1], "ms/frame")
				b.ReportMetric(fps[1]/fps[0], "ratio")
				b.ReportMetric(fps[2], "decode-frames/s")
				b.ReportMetric(float64(Letterboxers(0, 1920, 1080, 640)), "letterboxers")
			})
		}
	}
}

// decodeTimed decodes path to the end, returning the frame count and the
// time taken, opening and closing included: letterboxed frames from Next,
// or with pictures set, FFmpeg's pictures from NextPicture.
func decodeTimed(b *testing.B, path string, opts Options, pictures bool) (int, time.Duration) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	d, err := Open(ctx, path, nil, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	frames := 0
	for {
		if pictures {
			_, err = d.NextPicture(ctx)
		} else {
			_, err = d.Next(ctx)
		}
		if errors.Is(err, io.EOF) {
			return frames, time.Since(start)
		}
		if err != nil {
			b.Fatal(err)
		}
		frames++
	}
}

var hd1080 struct {
	once sync.Once
	path string
	err  error
}

// hd1080Long is 10 s of vtest.avi (100 frames) at 1920x1080 in H.264.
func hd1080Long(b *testing.B) string {
	b.Helper()
	hd1080.once.Do(func() {
		p := filepath.Join(filepath.Dir(clips["h264.mp4"]), "hd1080-10s.mp4")
		hd1080.path, hd1080.err = p, ffmpeg("-i", clips["vtest.avi"], "-t", "10", "-s", "1920x1080",
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", p)
	})
	if hd1080.err != nil {
		b.Fatal(hd1080.err)
	}
	return hd1080.path
}
