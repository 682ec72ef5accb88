package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/internal/samples"
)

// layoutFixture is a model made by model/layout/testdata/gen_fixtures.py.
func layoutFixture(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "model", "layout", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunRefusesLayoutAtLoad runs vidpipe on a real clip with models whose
// output layout it cannot read: each run exits non-zero with an error that
// names the model and says what was found, before any frame is decoded:
// the output directory is never created.
func TestRunRefusesLayoutAtLoad(t *testing.T) {
	src := samples.Path(t, "vtest.avi")
	for _, tc := range []struct{ file, says string }{
		{"refuse_v8_transposed.onnx", "output0 FLOAT [N,189,84]"},
		{"refuse_two_outputs.onnx", "output1 FLOAT [N,32,16,16]"},
		{"refuse_4d_output.onnx", "one 4-D output"},
		{"refuse_names_mismatch.onnx", "names has 3"},
		{"refuse_int64_output.onnx", "output0 is INT64"},
		{"refuse_rectangular.onnx", "input 96x64 is not square"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			model := layoutFixture(t, tc.file)
			out := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr := vidpipe(t, "run", "--out", out, "--model", model, "--no-annotate", src)
			if code == 0 {
				t.Fatalf("exit 0 with %s\n%s\n%s", tc.file, stdout, stderr)
			}
			if !strings.Contains(stderr, model) || !strings.Contains(stderr, tc.says) {
				t.Errorf("stderr does not name %s and say %q:\n%s", model, tc.says, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output directory %s exists (%v): the job started", out, err)
			}
			if strings.Contains(stderr, "msg=job") {
				t.Errorf("a job was logged:\n%s", stderr)
			}
		})
	}
}

// TestRunYOLOv8Dynamic runs a dynamic YOLOv8 export ([N,84,A] with symbolic
// batch, height and width) on a real clip at --imgsz 96: every frame is
// analysed and the detections are YOLOv8's, class ids below 80 and
// confidences at most 1, not the garbage a YOLOv5 reading gives.
func TestRunYOLOv8Dynamic(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir, "1")
	out := filepath.Join(dir, "out")
	code, stdout, stderr := vidpipe(t, "run", "--out", out, "--model", layoutFixture(t, "v8_dynamic.onnx"),
		"--imgsz", "96", "--batch", "2", "--conf", "0.3", "--no-annotate", src)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "YOLOv8/YOLO11") {
		t.Errorf("the load log does not name the layout:\n%s", stderr)
	}
	var sum coordinator.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &sum)
	if len(sum.Videos) != 1 || sum.Videos[0].Status != coordinator.Succeeded || sum.Videos[0].Stats.Frames == 0 {
		t.Fatalf("summary %+v", sum.Videos)
	}
	lines := readLines(t, filepath.Join(out, "clip", "detections.jsonl"))
	dets := 0
	for _, l := range lines {
		for _, d := range l.Detections {
			dets++
			if d.ClassID < 0 || d.ClassID >= 80 || !(d.Conf > 0.3 && d.Conf <= 1) || d.Class != "class"+strconv.Itoa(d.ClassID) {
				t.Fatalf("frame %d: detection %+v is not a YOLOv8 one", l.Frame, d)
			}
		}
	}
	if dets == 0 {
		t.Fatal("no detections: the test proves little")
	}
	t.Logf("%d frames, %d detections", len(lines), dets)
}

// TestServicesRefuseLayoutAtLoad: the worker, the coordinator's model
// check and bench refuse such a model at load too, before they connect to
// NATS (none listens on the address given) or decode a frame.
func TestServicesRefuseLayoutAtLoad(t *testing.T) {
	t.Setenv("VIDPIPE_TOKEN", "test-token")
	model := layoutFixture(t, "refuse_two_outputs.onnx")
	nats := "nats://127.0.0.1:1"
	for name, args := range map[string][]string{
		"worker":      {"worker", "--nats", nats, "--model", model},
		"coordinator": {"coordinator", "--nats", nats, "--out", t.TempDir(), "--model", model},
		"bench":       {"bench", "--model", model, samples.Path(t, "vtest.avi")},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := vidpipe(t, args...)
			if code == 0 {
				t.Fatalf("exit 0\n%s\n%s", stdout, stderr)
			}
			if !strings.Contains(stderr, model+": unsupported output layout") || !strings.Contains(stderr, "output1 FLOAT [N,32,16,16]") {
				t.Errorf("stderr does not refuse the layout, naming the model:\n%s", stderr)
			}
			if strings.Contains(stderr, "nats") || strings.Contains(stderr, "bench: decode") {
				t.Errorf("got past the model load:\n%s", stderr)
			}
		})
	}
}
