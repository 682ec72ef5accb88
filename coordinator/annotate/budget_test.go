package annotate

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// lavfiClip makes a black frames clip of size WxH with the ffmpeg CLI.
func lavfiClip(t testing.TB, dir string, w, h, frames int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("black%dx%d.mp4", w, h))
	ffmpegCLI(t, "-f", "lavfi", "-i", fmt.Sprintf("color=black:s=%dx%d:r=30", w, h), "-frames:v", fmt.Sprint(frames),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path)
	return path
}

func TestBoundedSize(t *testing.T) {
	for _, tc := range []struct{ w, h, max, wantW, wantH int }{
		{640, 480, DefaultMaxOutputPixels, 640, 480},
		{3840, 2160, DefaultMaxOutputPixels, 3840, 2160},
		{8192, 8192, DefaultMaxOutputPixels, 2880, 2880},
		{7680, 4320, DefaultMaxOutputPixels, 3840, 2160},
		{1000, 10, 100, 100, 1},
	} {
		w, h := boundedSize(tc.w, tc.h, tc.max)
		if w != tc.wantW || h != tc.wantH || w*h > tc.max {
			t.Errorf("boundedSize(%d, %d, %d) = %dx%d, want %dx%d", tc.w, tc.h, tc.max, w, h, tc.wantW, tc.wantH)
		}
	}
}

// TestPlan: small videos get every encoder thread, large ones fewer, then
// the low-memory encoder; one that fits in no way is refused by name.
func TestPlan(t *testing.T) {
	opts := Options{Threads: 4}.withDefaults()
	small, err := plan(1920, 1080, opts, DefaultMemory)
	if err != nil || small.EncodeThreads != 4 || small.LowMemory || small.WorkingSet > DefaultMemory {
		t.Errorf("1080p: %+v, %v", small, err)
	}
	// Explicit decoder threads count in full (9 pictures of 96 MiB);
	// automatic ones are bounded by decode.FrameThreads.
	if _, err := plan(8192, 8192, opts, DefaultMemory); !errors.Is(err, ErrOverBudget) {
		t.Errorf("8192x8192 with 4 decoder threads: %v", err)
	}
	opts.Threads = 0
	huge, err := plan(8192, 8192, opts, DefaultMemory)
	if err != nil || !huge.LowMemory || huge.OutW != huge.OutH || huge.OutW*huge.OutH > huge.MaxOutputPixels ||
		huge.MaxOutputPixels >= DefaultMaxOutputPixels || huge.WorkingSet > DefaultMemory {
		t.Errorf("8192x8192: %+v, %v", huge, err)
	}
	uhd, err := plan(3840, 2160, opts, DefaultMemory)
	if err != nil || !uhd.LowMemory || uhd.OutW != 3840 || uhd.OutH != 2160 || uhd.WorkingSet > DefaultMemory {
		t.Errorf("3840x2160: %+v, %v", uhd, err)
	}
	_, err = plan(8192, 8192, opts, 200<<20)
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "8192x8192 frames need ~") || !strings.Contains(err.Error(), "budget of 200 MB") {
		t.Errorf("8192x8192 on 200 MB: %v", err)
	}
}

// TestOverBudgetFailsEarly: a video whose frames cannot fit fails before a
// frame is decoded, with an error naming it and the sizes, and leaves no
// output behind.
func TestOverBudgetFailsEarly(t *testing.T) {
	dir := t.TempDir()
	src := lavfiClip(t, dir, 1920, 1080, 3)
	dst := filepath.Join(dir, "annotated.mp4")
	asked := 0
	_, err := Write(context.Background(), src, nil, dst, func(int) ([]Box, bool) { asked++; return nil, true },
		Options{Limiter: NewLimiter(16<<20, 1)})
	want := fmt.Sprintf("annotate %s: 1920x1080 frames need ~", src)
	if !errors.Is(err, ErrOverBudget) || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "over the annotation budget of 16 MB") {
		t.Fatalf("error %v, want %q...", err, want)
	}
	if asked != 0 {
		t.Errorf("%d frames annotated before the refusal", asked)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
}

// TestLargeOutputScaled: pictures above MaxOutputPixels are written scaled
// down, the preview too, with the boxes where they were on the picture.
func TestLargeOutputScaled(t *testing.T) {
	dir := t.TempDir()
	src := clipPath(t, "h264.mp4") // 768x576
	dst := filepath.Join(dir, "annotated.mp4")
	preview := filepath.Join(dir, "preview.png")
	boxes := testBoxes(768, 576)
	st, err := Write(context.Background(), src, nil, dst, func(int) ([]Box, bool) { return boxes, true },
		Options{MaxOutputPixels: 384 * 288, Preview: preview, PreviewWindow: 3})
	if err != nil {
		t.Fatal(err)
	}
	p := probe(t, dst)
	if st.Width != 384 || st.Height != 288 || p.width != 384 || p.height != 288 || p.frames != st.Frames {
		t.Fatalf("output %dx%d (%d frames), stats %+v", p.width, p.height, p.frames, st)
	}
	// The class-0 box's outline at the scaled place differs from the
	// unannotated picture scaled the same way; inside the box it does not.
	ref := filepath.Join(dir, "ref.mp4")
	ffmpegCLI(t, "-i", src, "-vf", "scale=384:288", "-c:v", "libx264", "-preset", "veryfast", ref)
	got, want := rgbFrame(t, dst, 0, 384, 288), rgbFrame(t, ref, 0, 384, 288)
	b := boxes[0]
	x1, y1 := int(b.X1/2), int(b.Y1/2)
	edge := meanAbsDiff(got, 384, want, 384, image.Rect(x1, y1+10, x1+1, y1+40))
	inside := meanAbsDiff(got, 384, want, 384, image.Rect(x1+15, y1+30, x1+40, y1+60))
	if edge < 30 || inside > 8 {
		t.Errorf("box outline differs by %.1f, inside by %.1f: boxes not scaled with the picture", edge, inside)
	}
	f, err := os.Open(preview)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 384 || cfg.Height != 288 {
		t.Errorf("preview %dx%d, %v", cfg.Width, cfg.Height, err)
	}
}

// TestLimiterShared: two annotations sharing a Limiter with room for one
// run one after the other: the second waits for its budget until the first
// has finished, whatever job either belongs to.
func TestLimiterShared(t *testing.T) {
	dir := t.TempDir()
	src := lavfiClip(t, dir, 320, 240, 5)
	opts := Options{Threads: 1}.withDefaults()
	one, err := plan(320, 240, opts, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	lim := NewLimiter(one.WorkingSet+one.WorkingSet/2, 4) // four workers, memory for one
	stage := NewStage(nil, Options{Threads: 1, Limiter: lim}, nil)
	hold := make(chan struct{})
	var firstFrames, secondFrames atomic.Int64
	errs := make(chan error, 2)
	go func() {
		errs <- stage.Annotate(context.Background(), src, filepath.Join(dir, "a.mp4"), func(int) ([]bus.Detection, bool) {
			if firstFrames.Add(1) == 1 {
				<-hold
			}
			return nil, true
		})
	}()
	poll.Until(t, 30*time.Second, "the first annotation drawing", poll.True(func() bool { return firstFrames.Load() == 1 }))
	go func() {
		errs <- stage.Annotate(context.Background(), src, filepath.Join(dir, "b.mp4"), func(int) ([]bus.Detection, bool) {
			secondFrames.Add(1)
			return nil, true
		})
	}()
	poll.Until(t, 30*time.Second, "the second annotation waiting for budget", poll.True(func() bool { return lim.Waiting() == 1 }))
	if n := secondFrames.Load(); n != 0 {
		t.Fatalf("the second annotation drew %d frames while the first held the budget", n)
	}
	close(hold)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if firstFrames.Load() != 5 || secondFrames.Load() != 5 || lim.Waiting() != 0 {
		t.Errorf("frames %d and %d, %d waiting", firstFrames.Load(), secondFrames.Load(), lim.Waiting())
	}
}
