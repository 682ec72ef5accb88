// Package samples gives tests real media: the videos scripts/setup.sh
// installs (Debian's opencv-doc clips), their frames letterboxed as
// media/decode hands them to the pipeline, and the ffmpeg CLI to cut and
// count clips.
package samples

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/builtin"
)

// Path returns the path of the sample video name, failing tb if setup has
// not installed it: a missing oracle is a broken setup, not a skip.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(builtin.CacheDir(), "videos", name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("sample video %s missing (run scripts/setup.sh --test): %v", name, err)
	}
	return p
}

// Frames decodes up to n size x size letterboxes of the sample video name,
// every every-th frame, one decoder thread, as copies.
func Frames(tb testing.TB, name string, size, every, n int) [][]byte {
	tb.Helper()
	d, err := decode.Open(context.Background(), Path(tb, name), nil, decode.Options{Size: size, Every: every, Threads: 1})
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	var out [][]byte
	for len(out) < n {
		f, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, append([]byte(nil), f.Letterbox...))
	}
	return out
}

// FFmpeg runs the ffmpeg CLI, failing the test on error.
func FFmpeg(tb testing.TB, args ...string) {
	tb.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-y", "-v", "error"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// Probe returns ffprobe's values of entries for the first video stream,
// counting frames (nb_read_frames is the decoded count).
func Probe(tb testing.TB, path string, entries string) []string {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream="+entries, "-of", "csv=p=0", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), ",")
}

// FrameCount is the number of frames ffprobe decodes from path.
func FrameCount(tb testing.TB, path string) int {
	tb.Helper()
	s := Probe(tb, path, "nb_read_frames")[0]
	n, err := strconv.Atoi(s)
	if err != nil {
		tb.Fatalf("ffprobe %s: frame count %q: %v", path, s, err)
	}
	return n
}
