package annotate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/asticode/go-astiav"
)

// Test clips are cut from the sample video with the ffmpeg CLI once per test
// binary; the CLI is also the oracle the outputs are checked against.

var (
	clipsOnce sync.Once
	clipsDir  string
	clipsErr  error
)

func TestMain(m *testing.M) {
	astiav.SetLogLevel(astiav.LogLevelError) // keep libx264's summary out of test logs
	code := m.Run()
	if clipsDir != "" {
		os.RemoveAll(clipsDir)
	}
	os.Exit(code)
}

// sampleVideo is the vtest.avi sample that scripts/setup.sh downloads.
func sampleVideo(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("VIDPIPE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("find home: %v", err)
		}
		cache = filepath.Join(home, ".cache", "vidpipe")
	}
	p := filepath.Join(cache, "videos", "vtest.avi")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("sample video missing (run scripts/setup.sh): %v", err)
	}
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s CLI missing (run scripts/setup.sh): %v", tool, err)
		}
	}
	return p
}

// clip describes one generated source video.
type clip struct {
	name string
	args []string // ffmpeg arguments after the input; the output path is appended
	src  string   // input clip name; "" for vtest.avi
	in   string   // literal input (a lavfi graph), overriding src
	pre  []string // ffmpeg arguments before -i
}

var clipSpecs = []clip{
	{name: "h264.mp4", pre: []string{"-t", "2"}, args: []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}},
	{name: "mjpeg.avi", pre: []string{"-t", "2"}, args: []string{"-c:v", "mjpeg", "-q:v", "5"}},
	{name: "odd444.mp4", pre: []string{"-t", "1"}, args: []string{"-vf", "scale=321:239", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv444p"}},
	{name: "ten.mkv", pre: []string{"-t", "1"}, args: []string{"-c:v", "ffv1", "-pix_fmt", "yuv420p10le"}},
	// Variable frame rate: 10 frames at 25 fps, then 10 at 12.5 fps.
	{name: "vfr.mp4", pre: []string{"-t", "2"}, args: []string{
		"-vf", "settb=1/1000,setpts='if(lt(N,10),N*0.04/TB,(0.4+(N-10)*0.08)/TB)'",
		"-fps_mode", "passthrough", "-enc_time_base", "1:1000",
		"-c:v", "libx264", "-preset", "veryfast"}},
	// The mov muxer of FFmpeg 5.1 turns the rotate tag into a display matrix.
	{name: "rot90.mp4", src: "h264.mp4", args: []string{"-c", "copy", "-metadata:s:v:0", "rotate=90"}},
	{name: "audio.m4a", pre: []string{"-f", "lavfi", "-t", "0.5"}, in: "sine=frequency=440", args: []string{"-c:a", "aac"}},
	{name: "bench.avi", pre: []string{"-t", "5"}, args: []string{"-c", "copy"}},
}

// clipPath returns the path of a generated clip, making all clips on first use.
func clipPath(t testing.TB, name string) string {
	t.Helper()
	vtest := sampleVideo(t)
	clipsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "annotate-clips-")
		if err != nil {
			clipsErr = err
			return
		}
		clipsDir = dir
		for _, c := range clipSpecs {
			in := vtest
			if c.src != "" {
				in = filepath.Join(dir, c.src)
			}
			if c.in != "" {
				in = c.in
			}
			args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, c.pre...)
			args = append(append(append(args, "-i", in), c.args...), filepath.Join(dir, c.name))
			if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
				clipsErr = fmt.Errorf("make %s: %v: %s", c.name, err, out)
				return
			}
		}
	})
	if clipsErr != nil {
		t.Fatalf("make test clips: %v", clipsErr)
	}
	return filepath.Join(clipsDir, name)
}

// probed is what ffprobe reports about a video's first video stream.
type probed struct {
	codec         string
	width, height int // coded size
	rotation      int
	frames        int       // decoded with -count_frames
	pts           []float64 // best-effort timestamps in seconds
}

func probe(t testing.TB, path string) probed {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:stream_side_data=rotation",
		"-show_entries", "frame=best_effort_timestamp_time", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
			SideData     []struct {
				Rotation int `json:"rotation"`
			} `json:"side_data_list"`
		} `json:"streams"`
		Frames []struct {
			PTS string `json:"best_effort_timestamp_time"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("parse ffprobe output of %s (%v): %s", path, err, out)
	}
	s := r.Streams[0]
	p := probed{codec: s.CodecName, width: s.Width, height: s.Height}
	for _, sd := range s.SideData {
		p.rotation = sd.Rotation
	}
	if p.frames, err = strconv.Atoi(s.NbReadFrames); err != nil {
		t.Fatalf("ffprobe %s: nb_read_frames %q", path, s.NbReadFrames)
	}
	for _, f := range r.Frames {
		v, err := strconv.ParseFloat(f.PTS, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: best_effort_timestamp_time %q", path, f.PTS)
		}
		p.pts = append(p.pts, v)
	}
	return p
}

// rgbFrame decodes frame n of a video with the ffmpeg CLI, which applies the
// display matrix, and returns its RGB24 pixels.
func rgbFrame(t testing.TB, path string, n, w, h int) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", path, "-vf", fmt.Sprintf(`select=eq(n\,%d)`, n),
		"-fps_mode", "passthrough", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decode frame %d of %s: %v: %s", n, path, err, stderr.String())
	}
	if len(out) != w*h*3 {
		t.Fatalf("decode frame %d of %s: got %d bytes, want %dx%dx3", n, path, len(out), w, h)
	}
	return out
}
