package decode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"
)

// clips maps a test clip name to its path; TestMain makes them with the
// ffmpeg CLI from the sample videos scripts/setup.sh installs.
var clips = map[string]string{}

func videoDir() string {
	if c := os.Getenv("VIDPIPE_CACHE"); c != "" {
		return filepath.Join(c, "videos")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "vidpipe", "videos")
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "decode tests need %s: run scripts/setup.sh\n", tool)
			return 1
		}
	}
	for _, v := range []string{"vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "tree.avi"} {
		p := filepath.Join(videoDir(), v)
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintf(os.Stderr, "decode tests need %s: run scripts/setup.sh\n", p)
			return 1
		}
		clips[v] = p
	}
	// FFmpeg's own logging would drown the test output on the bad inputs.
	astiav.SetLogLevel(astiav.LogLevelQuiet)
	dir, err := os.MkdirTemp("", "decode-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := makeClips(dir); err != nil {
		fmt.Fprintln(os.Stderr, "make test clips:", err)
		return 1
	}
	return m.Run()
}

func makeClips(dir string) error {
	vtest := clips["vtest.avi"]
	x264 := []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	gen := []struct {
		name string
		args []string
	}{
		{"h264.mp4", append([]string{"-i", vtest, "-t", "2"}, x264...)},
		{"faststart.mp4", append([]string{"-i", vtest, "-t", "2", "-movflags", "+faststart"}, x264...)},
		{"mjpeg.avi", []string{"-i", vtest, "-t", "2", "-c:v", "mjpeg", "-q:v", "5"}},
		// Keeps 4 of every 10 frames with their original timestamps: VFR.
		{"vfr.mp4", append([]string{"-i", vtest, "-t", "4", "-vf", `select='lt(mod(n\,10)\,3)+eq(mod(n\,10)\,7)'`, "-fps_mode", "vfr"}, x264...)},
		{"odd10.mkv", []string{"-i", vtest, "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv444p10le", "-s", "321x239"}},
		// H.264 codes whole macroblocks: 336x240 coded for 322x239 shown.
		{"odd422.mkv", []string{"-i", vtest, "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv422p", "-s", "322x239"}},
		{"hd720.mp4", append([]string{"-i", vtest, "-t", "1", "-s", "1280x720"}, x264...)},   // exactly 2x down
		{"hd1080.mp4", append([]string{"-i", vtest, "-t", "1", "-s", "1920x1080"}, x264...)}, // coded 1920x1088
		{"audio.m4a", []string{"-f", "lavfi", "-i", "sine=d=1"}},
		{"tiny.mp4", append([]string{"-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=1"}, x264...)},
		{"tiny.avi", []string{"-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=1", "-c:v", "mjpeg"}},
		{"tiny.mkv", append([]string{"-f", "lavfi", "-i", "testsrc=s=48x32:r=5:d=1"}, x264...)},
		{"tiny.ts", []string{"-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=1", "-c:v", "mpeg2video"}},
		{"cover.jpg", []string{"-f", "lavfi", "-i", "testsrc=s=64x64", "-frames:v", "1"}},
	}
	for _, g := range gen {
		p := filepath.Join(dir, g.name)
		if err := ffmpeg(append(g.args, p)...); err != nil {
			return err
		}
		clips[g.name] = p
	}
	p := filepath.Join(dir, "cover.m4a")
	if err := ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-i", clips["cover.jpg"], "-map", "0", "-map", "1",
		"-c:a", "aac", "-c:v", "copy", "-disposition:v", "attached_pic", p); err != nil {
		return err
	}
	clips["cover.m4a"] = p

	h264, err := os.ReadFile(clips["h264.mp4"])
	if err != nil {
		return err
	}
	fast, err := os.ReadFile(clips["faststart.mp4"])
	if err != nil {
		return err
	}
	mjpeg, err := os.ReadFile(clips["mjpeg.avi"])
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"empty.mp4":       nil,
		"text.txt":        []byte("this is not a video\nat all\n"),
		"concat.ffconcat": []byte("ffconcat version 1.0\nfile '" + clips["h264.mp4"] + "'\n"),
		// The moov atom of a default (non-faststart) MP4 is at the end.
		"truncated.mp4":      h264[:len(h264)/2],
		"truncated_fast.mp4": fast[:len(fast)*6/10],
		"damaged.avi":        damage(mjpeg),
		"allbad.avi":         noiseChunks(mjpeg),
		"unknown_codec.avi":  bytes.ReplaceAll(mjpeg, []byte("MJPG"), []byte("QQQQ")),
	}
	for _, rot := range []int{90, 180, 270} {
		b, err := rotateMP4(h264, rot)
		if err != nil {
			return err
		}
		files[fmt.Sprintf("rot%d.mp4", rot)] = b
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		clips[name] = p
	}
	return nil
}

func ffmpeg(args ...string) error {
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error", "-y"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// damage overwrites 2 KiB every 64 KiB of an AVI's movie data with
// deterministic noise, leaving the header and index intact.
func damage(b []byte) []byte {
	out := bytes.Clone(b)
	start := bytes.Index(out, []byte("movi")) + 4096
	end := bytes.LastIndex(out, []byte("idx1")) - 4096
	x := uint32(12345)
	for off := start; off+2048 < end; off += 64 << 10 {
		for i := off; i < off+2048; i++ {
			x = x*1664525 + 1013904223
			out[i] = byte(x >> 24)
		}
	}
	return out
}

// noiseChunks replaces the payload of every video chunk of an AVI with
// noise, keeping the container valid.
func noiseChunks(b []byte) []byte {
	out := bytes.Clone(b)
	end := bytes.LastIndex(out, []byte("idx1"))
	x := uint32(777)
	for i := bytes.Index(out, []byte("movi")); i >= 0 && i < end; {
		j := bytes.Index(out[i:end], []byte("00dc"))
		if j < 0 {
			break
		}
		i += j + 4
		n := int(binary.LittleEndian.Uint32(out[i:]))
		for k := i + 4; k < i+4+n && k < end; k++ {
			x = x*1664525 + 1013904223
			out[k] = byte(x >> 24)
		}
		i += 4 + n
	}
	return out
}

// rotateMP4 writes a display matrix for a clockwise rotation into the first
// tkhd box, as FFmpeg before 6.0 did for -metadata:s:v rotate=N; FFmpeg 5.1's
// muxer no longer honours that option.
func rotateMP4(b []byte, rot int) ([]byte, error) {
	out := bytes.Clone(b)
	i := bytes.Index(out, []byte("tkhd"))
	if i < 4 {
		return nil, errors.New("no tkhd box")
	}
	box := i - 4
	off := box + 48
	if out[box+8] == 1 {
		off = box + 60
	}
	const one = 1 << 16
	var m [9]int32
	switch rot {
	case 90:
		m = [9]int32{0, one, 0, -one, 0, 0, 0, 0, 1 << 30}
	case 180:
		m = [9]int32{-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30}
	case 270:
		m = [9]int32{0, -one, 0, one, 0, 0, 0, 0, 1 << 30}
	default:
		return nil, fmt.Errorf("rotation %d", rot)
	}
	for k, v := range m {
		binary.BigEndian.PutUint32(out[off+4*k:], uint32(v))
	}
	return out, nil
}

// ffprobeFrames returns each video frame's best_effort_timestamp_time, NaN
// where ffprobe prints N/A.
func ffprobeFrames(t testing.TB, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var ts []float64
	for _, line := range strings.Fields(string(out)) {
		line = strings.TrimSuffix(line, ",")
		if line == "N/A" {
			ts = append(ts, math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: parse %q: %v", path, line, err)
		}
		ts = append(ts, v)
	}
	return ts
}

// ffprobeCount is ffprobe's count of decoded video frames.
func ffprobeCount(t testing.TB, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	// MPEG-TS lists the stream once per program and once on its own.
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(first), ","))
	if err != nil {
		t.Fatalf("ffprobe %s: parse %q: %v", path, out, err)
	}
	return n
}

type record struct {
	Index     int
	PTS       float64
	Estimated bool
	Width     int
	Height    int
	Pixels    []byte // a copy of the letterbox, when asked for
}

// decodeAll runs a decoder to the end, copying the first keepPixels
// letterboxes.
func decodeAll(t testing.TB, path string, r io.ReadSeeker, opts Options, keepPixels int) ([]record, Stats, Info) {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, path, r, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	var recs []record
	for {
		f, err := d.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(recs), err)
		}
		rec := record{Index: f.Index, PTS: f.PTS, Estimated: f.Estimated, Width: f.Width, Height: f.Height}
		if len(recs) < keepPixels {
			rec.Pixels = bytes.Clone(f.Letterbox)
		}
		recs = append(recs, rec)
	}
	return recs, d.Stats(), d.Info()
}
