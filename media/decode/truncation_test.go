package decode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ninety writes a 90-frame, 10 fps clip with the ffmpeg CLI.
func ninety(t *testing.T, name string, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	in := []string{"-f", "lavfi", "-i", "testsrc=s=160x120:r=10:d=9"}
	if err := ffmpeg(append(append(in, args...), p)...); err != nil {
		t.Fatal(err)
	}
	return p
}

// cutFile writes the first n bytes of src beside it.
func cutFile(t *testing.T, src string, n int64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n >= int64(len(b)) {
		t.Fatalf("cut %s of %d bytes at %d", src, len(b), n)
	}
	p := src + ".cut" + filepath.Ext(src)
	if err := os.WriteFile(p, b[:n], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// packetEnd is the byte offset just past the video packet with index i, as
// ffprobe lists them in file order.
func packetEnd(t *testing.T, path string, i int) int64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pos,size", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	lines := strings.Fields(string(out))
	if i >= len(lines) {
		t.Fatalf("%s has %d packets, want > %d", path, len(lines), i)
	}
	pos, size, _ := strings.Cut(lines[i], ",")
	p, err1 := strconv.ParseInt(pos, 10, 64)
	s, err2 := strconv.ParseInt(size, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("ffprobe %s: packet line %q", path, lines[i])
	}
	return p + s
}

// TestTruncated checks that files cut short are reported as truncated with
// the count their container declares, whether the cut falls between
// packets or inside one.
func TestTruncated(t *testing.T) {
	x264 := []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	mp4 := ninety(t, "clean.mp4", append(x264, "-movflags", "+faststart")...)
	mkv := ninety(t, "half.mkv", x264...)
	avi := ninety(t, "half.avi", "-c:v", "mjpeg")
	webm := ninety(t, "half.webm", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8")
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	tests := []struct {
		name     string
		path     string
		expected int // 0: the container declares no count
		decoded  int // -1: whatever decodes up to the cut
	}{
		// The sample table says 90; the file ends right after packet 45.
		{"mp4 cut on a packet boundary", cutFile(t, mp4, packetEnd(t, mp4, 44)), 90, 45},
		{"mkv cut in half", cutFile(t, mkv, size(mkv)/2), 90, -1},
		{"webm cut in half", cutFile(t, webm, size(webm)/2), 90, -1},
		{"avi cut in half", cutFile(t, avi, size(avi)/2), 90, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, st, _ := decodeAll(t, tt.path, nil, Options{Size: 32}, 0)
			t.Logf("%d frames; stats %+v", len(recs), st)
			if !st.Truncated || !st.Damaged() {
				t.Fatalf("stats %+v: not truncated", st)
			}
			if st.Expected != tt.expected {
				t.Errorf("Expected %d, want %d", st.Expected, tt.expected)
			}
			if tt.decoded >= 0 && len(recs) != tt.decoded {
				t.Errorf("decoded %d frames, want %d", len(recs), tt.decoded)
			}
			if len(recs) == 0 || st.Missing != st.Expected-len(recs) {
				t.Errorf("Missing %d with %d of %d frames decoded", st.Missing, len(recs), st.Expected)
			}
		})
	}
}

// TestTruncatedTS checks the one cut an MPEG-TS shows, a file ending inside
// a 188-byte packet, every time: the decoder's own damage flag on the last
// picture comes and goes with frame threading, so it cannot be the signal.
func TestTruncatedTS(t *testing.T) {
	ts := ninety(t, "half.ts", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
	fi, err := os.Stat(ts)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size()%188 != 0 {
		t.Fatalf("ffmpeg wrote %d bytes, not whole 188-byte packets", fi.Size())
	}
	cut := cutFile(t, ts, fi.Size()/2/188*188+100)
	for i := range 10 {
		recs, st, _ := decodeAll(t, cut, nil, Options{Size: 32}, 0)
		if !st.Truncated || st.Expected != 0 || st.Missing != 0 || len(recs) == 0 {
			t.Fatalf("run %d: %d frames, stats %+v: want truncated with no declared count", i, len(recs), st)
		}
	}
}

// TestHealthyNotTruncated checks that no complete file reads as truncated:
// the sample videos, the package's test clips and a matrix of codecs and
// containers, with and without audio, concatenated TS included.
func TestHealthyNotTruncated(t *testing.T) {
	dir := t.TempDir()
	src := []string{"-f", "lavfi", "-i", "testsrc=s=96x64:r=10:d=1"}
	withAudio := []string{"-f", "lavfi", "-i", "testsrc=s=96x64:r=10:d=1", "-f", "lavfi", "-i", "sine=d=1.5"}
	matrix := []struct {
		name string
		in   []string
		args []string
	}{
		{"h264.mp4", src, []string{"-c:v", "libx264", "-preset", "veryfast"}},
		{"h264_aac.mp4", withAudio, []string{"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"}},
		{"h264_fast.mp4", src, []string{"-c:v", "libx264", "-preset", "veryfast", "-movflags", "+faststart"}},
		{"frag.mp4", src, []string{"-c:v", "libx264", "-preset", "veryfast", "-movflags", "frag_keyframe+empty_moov"}},
		{"hevc.mp4", src, []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none"}},
		{"mpeg4.mp4", src, []string{"-c:v", "mpeg4"}},
		{"av1.mp4", src, []string{"-c:v", "libaom-av1", "-cpu-used", "8", "-row-mt", "1"}},
		{"prores.mov", src, []string{"-c:v", "prores"}},
		{"qtrle.mov", src, []string{"-c:v", "qtrle"}},
		{"png.mov", src, []string{"-c:v", "png"}},
		{"h264.mkv", src, []string{"-c:v", "libx264", "-preset", "veryfast"}},
		{"h264_aac.mkv", withAudio, []string{"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"}},
		{"ffv1.mkv", src, []string{"-c:v", "ffv1"}},
		{"huffyuv.mkv", src, []string{"-c:v", "huffyuv"}},
		{"vp8.webm", src, []string{"-c:v", "libvpx", "-deadline", "realtime"}},
		{"vp9_opus.webm", withAudio, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"}},
		{"mjpeg.avi", src, []string{"-c:v", "mjpeg"}},
		{"mpeg4_mp3.avi", withAudio, []string{"-c:v", "mpeg4", "-c:a", "libmp3lame"}},
		{"msmpeg4.avi", src, []string{"-c:v", "msmpeg4v3"}},
		{"cinepak.avi", src, []string{"-c:v", "cinepak"}},
		{"rawvideo.avi", src, []string{"-c:v", "rawvideo", "-pix_fmt", "bgr24"}},
		{"mpeg2.ts", src, []string{"-c:v", "mpeg2video"}},
		{"h264_aac.ts", withAudio, []string{"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"}},
		{"h264.m2ts", src, []string{"-c:v", "libx264", "-preset", "veryfast", "-mpegts_m2ts_mode", "1"}},
		{"flv.flv", src, []string{"-c:v", "flv"}},
		{"h264.flv", src, []string{"-c:v", "libx264", "-preset", "veryfast"}},
		{"mpeg2.mpg", src, []string{"-c:v", "mpeg2video"}},
		{"theora.ogv", src, []string{"-c:v", "libtheora"}},
		{"wmv2.asf", src, []string{"-c:v", "wmv2"}},
		{"ffv1.nut", src, []string{"-c:v", "ffv1"}},
		{"vp8.ivf", src, []string{"-c:v", "libvpx", "-deadline", "realtime"}},
		{"raw.y4m", src, []string{"-pix_fmt", "yuv420p"}},
		{"h263.3gp", []string{"-f", "lavfi", "-i", "testsrc=s=176x144:r=10:d=1"}, []string{"-c:v", "h263"}},
		{"h264.h264", src, []string{"-c:v", "libx264", "-preset", "veryfast", "-f", "h264"}},
	}
	paths := map[string]string{}
	for _, m := range matrix {
		p := filepath.Join(dir, m.name)
		args := append(append(append([]string{}, m.in...), m.args...), "-shortest", p)
		if err := ffmpeg(args...); err != nil {
			t.Fatal(err)
		}
		paths[m.name] = p
	}
	// Two TS files back to back, as a recorder that restarts writes them.
	a, err := os.ReadFile(paths["mpeg2.ts"])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(paths["h264_aac.ts"])
	if err != nil {
		t.Fatal(err)
	}
	paths["concat.ts"] = filepath.Join(dir, "concat.ts")
	if err := os.WriteFile(paths["concat.ts"], append(append(a, b...), a...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "tree.avi",
		"h264.mp4", "faststart.mp4", "mjpeg.avi", "vfr.mp4", "odd10.mkv", "odd422.mkv", "hd720.mp4",
		"tiny.mp4", "tiny.avi", "tiny.mkv", "tiny.ts", "rot90.mp4", "rot180.mp4", "rot270.mp4"} {
		paths[name] = clips[name]
	}
	for name, p := range paths {
		t.Run(name, func(t *testing.T) {
			recs, st, info := decodeAll(t, p, nil, Options{Size: 32}, 0)
			if st.Truncated || st.Missing != 0 || st.Expected != 0 {
				t.Errorf("%d frames (%d indexed): stats %+v read as truncated", len(recs), info.Frames, st)
			}
			if len(recs) == 0 {
				t.Error("no frames")
			}
		})
	}
}
