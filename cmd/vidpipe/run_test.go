package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/internal/runbench"
	"github.com/vidpipe/vidpipe/internal/samples"
)

// clip cuts seconds of vtest.avi (pedestrians, 768x576, 10 fps) to H.264.
func clip(t testing.TB, dir string, seconds string) string {
	t.Helper()
	p := filepath.Join(dir, "clip.mp4")
	samples.FFmpeg(t, "-i", samples.Path(t, "vtest.avi"), "-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", p)
	return p
}

type detLine struct {
	Frame      int             `json:"frame"`
	PTS        float64         `json:"pts"`
	Detections []bus.Detection `json:"detections"`
}

func readLines(t *testing.T, path string) []detLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []detLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var l detLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s line %d: %v", path, len(lines)+1, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// TestRunEndToEnd analyses a real clip through embedded NATS, FFmpeg and
// ONNX Runtime and checks every output against ffprobe.
func TestRunEndToEnd(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir, "3")
	out := filepath.Join(dir, "out")
	code, stdout, stderr := vidpipe(t, "run", "--out", out, "--imgsz", "320", "--batch", "4", "--conf", "0.05", src)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := atoi(t, samples.Probe(t, src, "nb_read_frames")[0])

	lines := readLines(t, filepath.Join(out, "clip", "detections.jsonl"))
	if len(lines) != want {
		t.Fatalf("detections.jsonl has %d lines, ffprobe counts %d frames", len(lines), want)
	}
	boxes := 0
	for i, l := range lines {
		if l.Frame != i {
			t.Fatalf("line %d is frame %d: want every frame once, in order", i, l.Frame)
		}
		if i > 0 && l.PTS <= lines[i-1].PTS {
			t.Fatalf("pts not increasing at frame %d: %v after %v", i, l.PTS, lines[i-1].PTS)
		}
		for _, d := range l.Detections {
			if d.Box[0] < 0 || d.Box[1] < 0 || d.Box[2] > 768 || d.Box[3] > 576 || d.Box[0] > d.Box[2] {
				t.Fatalf("frame %d: box %v outside the 768x576 picture", i, d.Box)
			}
			if d.Class == "" || d.Conf < 0.05 {
				t.Fatalf("frame %d: detection %+v", i, d)
			}
		}
		boxes += len(l.Detections)
	}
	t.Logf("%d frames, %d detections", len(lines), boxes)

	got := samples.Probe(t, filepath.Join(out, "clip", "annotated.mp4"), "codec_name,width,height,nb_read_frames")
	if got[0] != "h264" || got[1] != "768" || got[2] != "576" || atoi(t, got[3]) != want {
		t.Errorf("annotated.mp4 probes to %v, want h264 768x576 with %d frames", got, want)
	}

	if _, err := os.Stat(filepath.Join(out, "clip", "preview.png")); err != nil {
		t.Errorf("no preview picture: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, coordinator.ThroughputFile)); err != nil {
		t.Errorf("no throughput chart: %v", err)
	} else if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("throughput chart: %v", err)
	}
	var stats coordinator.Stats
	readJSON(t, filepath.Join(out, "clip", "stats.json"), &stats)
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &sum)
	if stats.Frames != want || stats.FPS <= 0 || stats.StagesMS.Infer.P50 <= 0 || stats.Workers["worker-1"] != want {
		t.Errorf("stats.json: %+v", stats)
	}
	if len(sum.Videos) != 1 || sum.Status != coordinator.Succeeded || sum.Frames != want || sum.Videos[0].Stats.Frames != stats.Frames {
		t.Errorf("summary.json: %+v", sum)
	}
	if !strings.Contains(stdout, "succeeded") {
		t.Errorf("no summary table on stdout:\n%s", stdout)
	}
}

// corrupt writes an MPEG-4 AVI cut from vtest.avi with two runs of random
// bytes in its frame data: the decoder rejects some frames, not all.
func corrupt(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "corrupt.avi")
	samples.FFmpeg(t, "-i", samples.Path(t, "vtest.avi"), "-t", "3", "-c:v", "mpeg4", "-q:v", "5", p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, frac := range []float64{0.35, 0.6} {
		at := int(float64(len(b)) * frac)
		for i := at; i < at+3000; i++ {
			b[i] = byte(rng.IntN(256))
		}
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunBadVideos mixes a good clip with a missing file, a text file, an
// empty file, a stream with damaged frames and Megamind_bugy.avi: each bad
// one gets its own error, the damaged one is still analysed where it
// decodes, and the good one succeeds.
//
// Megamind_bugy.avi's damage is in its pictures (a green bar encoded into
// the frames): FFmpeg decodes every frame without error, so vidpipe analyses
// all of them and has nothing to report; corrupt.avi is the damaged stream.
func TestRunBadVideos(t *testing.T) {
	dir := t.TempDir()
	good := clip(t, dir, "1")
	text := filepath.Join(dir, "notes.mp4")
	empty := filepath.Join(dir, "empty.avi")
	missing := filepath.Join(dir, "missing.mp4")
	if err := os.WriteFile(text, []byte("this is not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bugy := samples.Path(t, "Megamind_bugy.avi")
	damaged := corrupt(t, dir)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := vidpipe(t, "run", "--out", out, "--imgsz", "256", "--batch", "8", "--every", "3", "--no-annotate", good, missing, text, empty, damaged, bugy)
	if code == 0 {
		t.Fatalf("exit 0 with bad videos\n%s\n%s", stdout, stderr)
	}
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &sum)
	byName := map[string]coordinator.VideoSummary{}
	for _, v := range sum.Videos {
		byName[v.Video] = v
	}
	if v := byName["clip"]; v.Status != coordinator.Succeeded || v.Stats.Frames == 0 {
		t.Errorf("good clip: %+v", v)
	}
	for name, src := range map[string]string{"missing": missing, "notes": text, "empty": empty} {
		v := byName[name]
		if v.Status != coordinator.Failed || !strings.Contains(v.Error, src) {
			t.Errorf("%s: status %s, error %q: want failed, naming %s", name, v.Status, v.Error, src)
		}
	}
	if v := byName["corrupt"]; v.Status != coordinator.Partial || v.Stats.Frames == 0 || !strings.Contains(v.Error, damaged) {
		t.Errorf("corrupt.avi: %+v: want its decodable frames analysed and the damage reported", v)
	} else {
		t.Logf("corrupt.avi: %s, %d frames analysed: %s", v.Status, v.Stats.Frames, v.Error)
	}
	if v := byName["Megamind_bugy"]; v.Stats.Frames != 90 || v.Stats.Decoded != 270 {
		t.Errorf("Megamind_bugy: %+v: want all 270 frames decoded and every third analysed", v)
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run"},
		{"run", "--every", "0", "x.mp4"},
		{"run", "--every", "2", "--fps", "5", "x.mp4"},
		{"run", "--device", "gpu", "x.mp4"},
		{"run", "--workers", "0", "x.mp4"},
		{"worker"},
	} {
		code, _, stderr := vidpipe(t, args...)
		if code != 2 || stderr == "" {
			t.Errorf("vidpipe %v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

// TestRunMemoryIsFlat runs a 10-second and a 60-second clip and compares the
// processes' peak RSS: frames in flight are bounded, so six times the video
// must not mean more memory. The short clip's peak is the higher of two
// runs: one can end before the buffers and arenas a run reaches anyway have
// grown, which is noise in the baseline, not flat memory.
func TestRunMemoryIsFlat(t *testing.T) {
	dir := t.TempDir()
	peak := map[string]int64{}
	for _, seconds := range []string{"10", "10", "60"} {
		src := filepath.Join(dir, seconds+"s.mp4")
		samples.FFmpeg(t, "-i", samples.Path(t, "vtest.avi"), "-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", src)
		peak[seconds] = max(peak[seconds], runPeak(t, "--out", filepath.Join(dir, "out"+seconds), "--imgsz", "128", "--batch", "8", src))
	}
	ratio := float64(peak["60"]) / float64(peak["10"])
	t.Logf("peak RSS: 10 s clip %d MiB, 60 s clip %d MiB (ratio %.3f)", peak["10"]>>20, peak["60"]>>20, ratio)
	if ratio > 1.2 {
		t.Errorf("peak RSS grows %.2fx from a 10 s to a 60 s clip; want within 20%%", ratio)
	}
}

// TestBench runs `vidpipe bench` small, with two sessions, JPEG frames and
// the model-alone matrix: every figure is measured, the breakdown adds up
// and the pipeline analysed exactly the frames the decoder found. The speed
// targets themselves are read from a full-size run, not asserted here.
func TestBench(t *testing.T) {
	src := clip(t, t.TempDir(), "2")
	code, stdout, stderr := vidpipe(t, "bench", "--imgsz", "128", "--rounds", "3", "--workers", "2", "--threads", "1",
		"--frame-codec", "jpeg", "--matrix", "1,2", "--json", src)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var r runbench.Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	b := r.Breakdown
	if len(r.Rounds) != 3 || r.RatioMin > r.PipelineOverORT || r.PipelineOverORT > r.RatioMax || b.InferMS <= 0 || b.DecodeMS <= 0 ||
		math.Abs(b.SessionAloneMS-2*b.ModelAloneMS) > 0.01 || math.Abs(b.InferMS-b.SessionAloneMS-b.SlowdownMS) > 0.01 ||
		b.ReadMS <= 0 || b.ModelCPUMS <= 0 || b.PipelineCPUMS <= 0 || math.Abs(b.ReadMS+b.InferMS+b.PostMS+b.IdleMS-2*b.PipelineMS) > 0.01 {
		t.Errorf("bench rounds and breakdown: %+v %+v", r.Rounds, b)
	}
	if r.Frames != 20 || r.Workers != 2 || r.Threads != 1 || r.Codec != "jpeg" || r.Device != "cpu" || r.Precision != "fp32" || r.InputForm != "float" ||
		r.PipelineFPS <= 0 || r.ModelFPS <= 0 || r.DecodeFPS <= 0 || r.FFmpegCLIFPS <= 0 || r.DecodeCPUMS <= 0 ||
		r.JPEGFrameBytes <= 0 || r.JPEGFrameBytes >= r.RawFrameBytes || r.RawFrameBytes != 128*128*3 || r.JPEGReadMS <= 0 || r.JPEGMeanAbsDiff <= 0 || r.GPU != nil {
		t.Errorf("bench result: %+v", r)
	}
	// The bench ran fp32 with float input on the CPU: the reference itself.
	if f := r.Reference; f == nil || f.Frames != 20 || f.CPU == 0 || f.Matched != f.CPU || f.OnlyBench != 0 || f.MaxBoxDiff != 0 {
		t.Errorf("bench against the CPU reference: %+v", f)
	}
	var rows []string
	for _, m := range r.Matrix {
		if m.Error != "" || m.FPS <= 0 || m.Precision != "fp32" {
			t.Errorf("matrix row %+v", m)
		}
		rows = append(rows, fmt.Sprintf("%s/%d", m.Input, m.Batch))
	}
	if got := strings.Join(rows, " "); got != "float/1 float/2 u8/1 u8/2" {
		t.Errorf("matrix rows %s, want float and u8 at batches 1 and 2", got)
	}
	p := r.Preprocessing
	if r.Preprocess != "exact" || p.ExactFPS <= 0 || p.FastFPS <= 0 || p.PixelMeanDiff <= 0 || p.PixelMaxDiff <= 0 ||
		p.DetFrames != 20 || p.DetExact == 0 || p.DetMatched+p.DetOnlyExact != p.DetExact {
		t.Errorf("bench preprocessing: %+v", p)
	}
	t.Logf("pipeline/model %.3f, decode/ffmpeg %.3f, breakdown %+v, preprocessing %+v", r.PipelineOverORT, r.DecodeOverFFmpeg, b, p)
}

// TestRunCandidates runs the same clip with all of output0 and with the
// model rewritten to return its 2,000 rows of highest objectness (what a GPU
// worker does by default): the detections are the same, byte for byte, at
// a threshold low enough for the untrained model to find many.
func TestRunCandidates(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir, "1")
	var outs [2][]byte
	for i, k := range []string{"0", "2000"} {
		out := filepath.Join(dir, "out"+k)
		code, stdout, stderr := vidpipe(t, "run", "--imgsz", "320", "--conf", "0.015", "--no-annotate", "--candidates", k, "--out", out, src)
		if code != 0 {
			t.Fatalf("--candidates %s: exit %d\n%s\n%s", k, code, stdout, stderr)
		}
		if k != "0" && !strings.Contains(stderr, "rows of highest objectness only") {
			t.Errorf("--candidates %s did not rewrite the model:\n%s", k, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "clip", "detections.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = b
	}
	lines := readLines(t, filepath.Join(dir, "out0", "clip", "detections.jsonl"))
	n := 0
	for _, l := range lines {
		n += len(l.Detections)
	}
	if n == 0 {
		t.Fatal("no detections to compare")
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatalf("detections differ with --candidates 2000 (%d detections with all rows)", n)
	}
	t.Logf("%d frames, %d detections, identical", len(lines), n)
}
