package workers

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
)

// TestWorkerLayouts runs a worker on models of each layout the generator in
// model/layout/testdata wrote (YOLOv8 [N,84,A], raw heads, output0 with
// extra outputs, FLOAT16), on a frame holding the generator's test image,
// and compares its published detections with the reference decode there.
func TestWorkerLayouts(t *testing.T) {
	dir := filepath.Join("..", "model", "layout", "testdata")
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]struct {
		Runs []struct {
			Conf float32     `json:"conf"`
			IoU  float64     `json:"iou"`
			Dets [][]float64 `json:"dets"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, ref string }{
		{"v8.onnx", "v8.onnx"},
		{"v8_fp16.onnx", "v8.onnx"},
		{"raw_heads.onnx", "raw_heads.onnx"},
		{"v5_extra_outputs.onnx", "v5_extra_outputs.onnx"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, js := bustest.Start(t, bus.DefaultStreamOptions())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			path := filepath.Join(dir, tc.file)
			model, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sess, lay, err := layout.Open(ctx, model, path, infer.Options{Threads: 1, MaxBatch: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			run := exp[tc.ref].Runs[1]
			nms := detect.DefaultNMSOptions()
			nms.Conf, nms.IoU = run.Conf, run.IoU
			w, err := New(ctx, js, sess, Options{Name: "w1", NMS: nms, Layout: lay})
			if err != nil {
				t.Fatal(err)
			}
			f := &bus.Frame{Job: "j", Video: "v", Width: size, Height: size, Size: size, Gain: 1,
				PublishedUnixNano: time.Now().UnixNano(), Codec: bus.Raw, Pixels: testImage(size)}
			publishFrame(t, ctx, js, f, nil)
			stop := runWorker(t, ctx, w)
			got := collectResults(t, ctx, js, 1)[0]
			stop()
			if got.Error != "" {
				t.Fatal(got.Error)
			}
			matched, worst := 0, 0.0
			for _, want := range run.Dets {
				for _, d := range got.Detections {
					if d.ClassID != int(want[5]) {
						continue
					}
					e := 0.0
					for j := range 4 {
						e = max(e, math.Abs(float64(d.Box[j])-math.Min(math.Max(want[j], 0), size)))
					}
					if e < 0.1 && math.Abs(float64(d.Conf)-want[4]) < 2e-3 {
						matched++
						worst = max(worst, e)
						break
					}
				}
			}
			t.Logf("%s (%s): %d detections, reference %d, %d matched, max box difference %.2g px",
				tc.file, lay, len(got.Detections), len(run.Dets), matched, worst)
			if len(got.Detections) != len(run.Dets) || matched != len(run.Dets) {
				t.Errorf("worker gave %d detections, reference %d, %d matched", len(got.Detections), len(run.Dets), matched)
			}
		})
	}
}

// testImage is the generator's test image as packed RGB24: its planar
// values v/255 come from a linear congruential sequence.
func testImage(size int) []byte {
	px := make([]byte, 3*size*size)
	state := uint64(1)
	for i := range 3 * size * size {
		state = (state*1103515245 + 12345) % (1 << 31)
		c, p := i/(size*size), i%(size*size)
		px[3*p+c] = byte((state >> 16) % 256)
	}
	return px
}
