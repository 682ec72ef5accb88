package annotate

import (
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/media/decode"
)

// These tests feed annotation the inputs on which it once parted from
// analysis: each input is made here with the ffmpeg CLI, and the annotated
// output is checked with ffprobe against what the analysis decoder counts.

// ffmpegCLI runs the ffmpeg CLI quietly, failing the test on error.
func ffmpegCLI(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// encode cuts seconds of the sample video from start into path as H.264,
// with extra output arguments before the path.
func encode(t testing.TB, path string, start, seconds string, extra ...string) string {
	t.Helper()
	args := []string{"-ss", start, "-t", seconds, "-i", sampleVideo(t), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	ffmpegCLI(t, append(append(args, extra...), path)...)
	return path
}

// analysed counts the frames the analysis decoder yields for path, every
// frame kept, as ingest counts them.
func analysed(t testing.TB, path string, threads int) int {
	t.Helper()
	d, err := decode.Open(context.Background(), path, nil, decode.Options{Size: 64, Threads: threads})
	if err != nil {
		t.Fatalf("analysis decoder: %v", err)
	}
	defer d.Close()
	n := 0
	for {
		_, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("analysis decoder after %d frames: %v", n, err)
		}
		n++
	}
}

// annotateAll writes path's annotated copy with every frame analysed and
// returns the indices asked for and the output path.
func annotateAll(t testing.TB, path string, boxes func(i int) []Box, opts Options) ([]int, Stats, string) {
	t.Helper()
	var asked []int
	dets := func(i int) ([]Box, bool) {
		asked = append(asked, i)
		if boxes == nil {
			return nil, true
		}
		return boxes(i), true
	}
	dst := filepath.Join(t.TempDir(), "annotated.mp4")
	st, err := Write(context.Background(), path, nil, dst, dets, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return asked, st, dst
}

// checkSameFrames asserts that annotation asked for frames 0..n-1 once each,
// in order, and that the output shows n frames.
func checkSameFrames(t *testing.T, asked []int, st Stats, dst string, n int) probed {
	t.Helper()
	for i, a := range asked {
		if a != i {
			t.Fatalf("annotation asked for frame %d at position %d", a, i)
		}
	}
	op := probe(t, dst)
	if len(asked) != n || st.Frames != n || op.frames != n {
		t.Errorf("annotation asked %d frames, wrote %d, output shows %d; analysis counted %d", len(asked), st.Frames, op.frames, n)
	}
	return op
}

// checkTiming asserts strictly increasing, non-negative output times with
// steps of at least minStep seconds.
func checkTiming(t *testing.T, op probed, minStep float64) {
	t.Helper()
	for i, p := range op.pts {
		if i == 0 && p < 0 {
			t.Errorf("first frame at %.6f s", p)
		}
		if i > 0 && p-op.pts[i-1] < minStep {
			t.Errorf("frame %d at %.6f s, %.6f s after frame %d; want at least %.3f s", i, p, p-op.pts[i-1], i-1, minStep)
		}
	}
}

// coverFirst moves the udta box (iTunes metadata, where cover art lives) of
// an MP4's moov to the front, so the demuxer lists the cover art as stream
// 0, before the video. Offsets inside the file stay valid: moov keeps its
// size and place.
func coverFirst(t testing.TB, b []byte) []byte {
	t.Helper()
	type box struct{ at, size int }
	children := func(from, to int) map[string]box {
		m := map[string]box{}
		for i := from; i+8 <= to; {
			n := int(binary.BigEndian.Uint32(b[i:]))
			if n < 8 || i+n > to {
				t.Fatalf("bad mp4 box at %d", i)
			}
			m[string(b[i+4:i+8])] = box{i, n}
			i += n
		}
		return m
	}
	moov, ok := children(0, len(b))["moov"]
	if !ok {
		t.Fatal("no moov box")
	}
	kids := children(moov.at+8, moov.at+moov.size)
	udta, ok := kids["udta"]
	if !ok {
		t.Fatal("no udta box")
	}
	body := append([]byte{}, b[udta.at:udta.at+udta.size]...)
	for i := moov.at + 8; i < moov.at+moov.size; {
		n := int(binary.BigEndian.Uint32(b[i:]))
		if i != udta.at {
			body = append(body, b[i:i+n]...)
		}
		i += n
	}
	out := append([]byte{}, b...)
	copy(out[moov.at+8:], body)
	return out
}

// Cover art as the first video stream: annotation shows the video, not the
// picture, and takes the preview from it.
func TestRowCoverArt(t *testing.T) {
	dir := t.TempDir()
	video := encode(t, filepath.Join(dir, "video.mp4"), "0", "2")
	cover := filepath.Join(dir, "cover.png")
	ffmpegCLI(t, "-f", "lavfi", "-i", "color=red:s=64x48", "-frames:v", "1", cover)
	tagged := filepath.Join(dir, "tagged.mp4")
	ffmpegCLI(t, "-i", cover, "-i", video, "-map", "0:v", "-map", "1:v", "-c:v:0", "mjpeg", "-c:v:1", "copy",
		"-disposition:v:0", "attached_pic", tagged)
	b, err := os.ReadFile(tagged)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "cover-first.mp4")
	if err := os.WriteFile(src, coverFirst(t, b), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=index,width:stream_disposition=attached_pic",
		"-of", "csv=p=0", src).Output()
	if err != nil || !strings.HasPrefix(string(out), "0,64,1\n1,768,0") {
		t.Fatalf("setup: streams %q (%v), want the 64x48 cover art first", out, err)
	}
	n := analysed(t, src, 0)
	if n != 20 {
		t.Fatalf("analysis counted %d frames, want 20", n)
	}
	preview := filepath.Join(dir, "preview.png")
	asked, st, dst := annotateAll(t, src, nil, Options{Preview: preview})
	op := checkSameFrames(t, asked, st, dst, n)
	if op.width != 768 || op.height != 576 {
		t.Errorf("annotated video is %dx%d, want the 768x576 video", op.width, op.height)
	}
	f, err := os.Open(preview)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 768 || cfg.Height != 576 {
		t.Errorf("preview is %dx%d (%v), want a 768x576 frame of the video", cfg.Width, cfg.Height, err)
	}
}

// A truncated faststart or fragmented MP4: annotation goes on through the
// damage for as long as analysis does.
func TestRowTruncated(t *testing.T) {
	for _, tc := range []struct{ name, flags string }{
		{"faststart", "+faststart"},
		{"fragmented", "frag_keyframe+empty_moov+default_base_moof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			full := encode(t, filepath.Join(dir, "full.mp4"), "0", "3.7", "-g", "10", "-movflags", tc.flags)
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(dir, "truncated.mp4")
			if err := os.WriteFile(src, b[:len(b)*9/10], 0o644); err != nil {
				t.Fatal(err)
			}
			// Frame threads hold several packets, so the damage surfaces
			// while the decoder drains.
			const threads = 8
			n := analysed(t, src, threads)
			if n < 20 || n >= 37 {
				t.Fatalf("setup: analysis counted %d of 37 frames, want a truncated tail", n)
			}
			asked, st, dst := annotateAll(t, src, nil, Options{Threads: threads})
			checkSameFrames(t, asked, st, dst, n)
		})
	}
}

// An MPEG-TS whose first timestamps are negative (the 33-bit clock wraps
// after 14 frames): every frame is shown, none hidden by an edit list.
func TestRowNegativePTS(t *testing.T) {
	// 2^33/90000 s is the wrap; the clip's own start (1.4 s) plus this
	// offset puts the wrap 1.4 s into it.
	src := encode(t, filepath.Join(t.TempDir(), "wrap.ts"), "0", "2.8", "-output_ts_offset", "95440.95")
	if p := probe(t, src); len(p.pts) != 28 || p.pts[0] >= 0 || p.pts[14] < 0 {
		t.Fatalf("setup: timestamps %v, want 28 with the first 14 negative", p.pts)
	}
	n := analysed(t, src, 0)
	asked, st, dst := annotateAll(t, src, nil, Options{})
	op := checkSameFrames(t, asked, st, dst, n)
	checkTiming(t, op, 0.099)
}

// Two TS files concatenated byte for byte: the second half's timestamps
// jump back, and its frames still get a frame's time each.
func TestRowConcatenatedTS(t *testing.T) {
	dir := t.TempDir()
	a, err := os.ReadFile(encode(t, filepath.Join(dir, "a.ts"), "0", "2"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(encode(t, filepath.Join(dir, "b.ts"), "5", "2"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "joined.ts")
	if err := os.WriteFile(src, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := probe(t, src); len(p.pts) != 40 || p.pts[20] >= p.pts[19] {
		t.Fatalf("setup: timestamps %v, want 40 jumping back at frame 20", p.pts)
	}
	asked, st, dst := annotateAll(t, src, nil, Options{})
	op := checkSameFrames(t, asked, st, dst, analysed(t, src, 0))
	checkTiming(t, op, 0.099)
	if len(op.pts) == 40 {
		if d := op.pts[39] - op.pts[20]; d < 1.85 || d > 1.95 {
			t.Errorf("second half plays in %.4f s, want 1.9 s", d)
		}
	}
}

// A resolution change mid-stream: each frame's boxes, given in its own
// geometry, land on the same objects in the output, which keeps the first
// frame's size.
func TestRowResolutionChange(t *testing.T) {
	dir := t.TempDir()
	big := encode(t, filepath.Join(dir, "big.ts"), "0", "1")
	small := encode(t, filepath.Join(dir, "small.ts"), "0", "1", "-vf", "scale=384:288")
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("file '"+big+"'\nfile '"+small+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "switch.ts")
	ffmpegCLI(t, "-f", "concat", "-safe", "0", "-i", list, "-c", "copy", src)

	// The same place in both geometries: x from 52% to 91% of the width.
	box := func(i int) []Box {
		w, h := float32(768), float32(576)
		if i >= 10 {
			w, h = 384, 288
		}
		return []Box{{X1: 0.52 * w, Y1: 0.2 * h, X2: 0.91 * w, Y2: 0.85 * h, ClassID: 0, Label: "person", Conf: 0.9}}
	}
	asked, st, dst := annotateAll(t, src, box, Options{})
	op := checkSameFrames(t, asked, st, dst, analysed(t, src, 0))
	if op.width != 768 || op.height != 576 {
		t.Fatalf("output %dx%d, want the first frame's 768x576", op.width, op.height)
	}
	got := rgbFrame(t, dst, 15, 768, 576)
	c := classColour(0, bt601)
	outline := func(x int) float64 {
		m := meanRGB(got, 768, image.Rect(x, 130, x+2, 480))
		return math.Abs(m[0]-float64(c.r)) + math.Abs(m[1]-float64(c.g)) + math.Abs(m[2]-float64(c.b))
	}
	x := int(math.Round(0.52 * 768))
	if d := outline(x); d > 60 {
		t.Errorf("frame 15 has no outline at x=%d (RGB distance %.0f from the class colour)", x, d)
	}
	if old := int(math.Round(0.52 * 384)); outline(old) < 60 {
		t.Errorf("frame 15 has an outline at x=%d, the box in the new geometry drawn unscaled", old)
	}
}
