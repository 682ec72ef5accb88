package workers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/metrics"
	"github.com/vidpipe/vidpipe/internal/metrics/metricstest"
	"github.com/vidpipe/vidpipe/model/detect"
)

// shortTTL makes heartbeats come every ~670 ms and expire after 2 s.
func shortTTL() bus.StreamOptions {
	o := bus.DefaultStreamOptions()
	o.WorkerTTL = 2 * time.Second
	return o
}

// heartbeatOf returns the listed heartbeat of worker name.
func heartbeatOf(ctx context.Context, js jetstream.JetStream, name string) (Heartbeat, bool, error) {
	hbs, err := ListHeartbeats(ctx, js)
	if err != nil {
		return Heartbeat{}, false, err
	}
	for _, h := range hbs {
		if h.Name == name {
			return h, true, nil
		}
	}
	return Heartbeat{}, false, nil
}

// TestHeartbeat runs a worker as the restricted worker user: its heartbeat
// appears, its counts rise as it publishes results, and its entry is gone
// once it has stopped cleanly. The coordinator's side reads the bucket as
// admin.
func TestHeartbeat(t *testing.T) {
	url := startServer(t)
	admin, wc := dial(t, url, "admin").js, dial(t, url, "worker")
	wjs := wc.js
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := bus.Setup(ctx, admin, shortTTL()); err != nil {
		t.Fatal(err)
	}
	denied, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	if err := bus.Setup(denied, wjs, shortTTL()); err == nil {
		t.Fatal("the worker user may create streams: this test would prove nothing about its permissions")
	}
	refused := len(wc.asyncErrors()) // that Setup's violations

	id := &Identity{Device: "cpu", Model: "small.onnx", ModelSHA256: "feed", Threads: 1}
	w, err := New(ctx, wjs, openSession(t, smallModel(t), 2), Options{Name: "hb-1", Batch: 2, Heartbeat: id, Layout: layoutOf(t, smallModel(t))})
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := runWorker(t, ctx, w)

	var first Heartbeat
	eventually(t, "first heartbeat", func() (ok bool, err error) {
		first, ok, err = heartbeatOf(ctx, admin, "hb-1")
		return ok, err
	})
	host, _ := os.Hostname()
	if first.Host != host || first.PID != os.Getpid() || first.Device != "cpu" || first.Model != "small.onnx" ||
		first.ModelSHA256 != "feed" || first.Batch != 2 || first.Threads != 1 || first.Started.IsZero() || first.Beat.Before(first.Started) {
		t.Errorf("first heartbeat %+v does not describe the worker", first)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for seq := range 3 {
		publishFrame(t, ctx, admin, frame(seq, rng), nil)
	}
	var mid Heartbeat
	eventually(t, "heartbeat counting 3 frames", func() (ok bool, err error) {
		mid, _, err = heartbeatOf(ctx, admin, "hb-1")
		return mid.Frames == 3, err
	})
	for seq := 3; seq < 5; seq++ {
		publishFrame(t, ctx, admin, frame(seq, rng), nil)
	}
	broken := frame(5, rng)
	broken.Size = 0 // fails validation: a poison frame
	publishFrame(t, ctx, admin, broken, nil)
	var last Heartbeat
	eventually(t, "heartbeat counting 6 frames, 1 failed", func() (ok bool, err error) {
		last, _, err = heartbeatOf(ctx, admin, "hb-1")
		return last.Frames == 6 && last.Failed == 1, err
	})
	if !last.Beat.After(mid.Beat) || !last.Started.Equal(first.Started) || last.FPSTotal <= 0 {
		t.Errorf("beats %v then %v, started %v then %v, fps total %v: want later beats of one run and a rate", mid.Beat, last.Beat, first.Started, last.Started, last.FPSTotal)
	}

	stopWorker()
	hbs, err := ListHeartbeats(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(hbs) != 0 {
		t.Errorf("heartbeats after a clean stop: %+v", hbs)
	}
	if errs := wc.asyncErrors()[refused:]; len(errs) > 0 {
		t.Errorf("the worker did something its user may not: %v", errs)
	}
}

// TestHeartbeatExpires kills a worker's connection, as a crash would: it
// cannot deregister, and the bucket's TTL removes its entry.
func TestHeartbeatExpires(t *testing.T) {
	url := startServer(t)
	admin, wc := dial(t, url, "admin").js, dial(t, url, "worker")
	wnc, wjs := wc.nc, wc.js
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := bus.Setup(ctx, admin, shortTTL()); err != nil {
		t.Fatal(err)
	}
	w, err := New(ctx, wjs, openSession(t, smallModel(t), 1), Options{Name: "doomed", Heartbeat: &Identity{}, Layout: layoutOf(t, smallModel(t))})
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := runWorker(t, ctx, w)
	eventually(t, "heartbeat", func() (bool, error) {
		_, ok, err := heartbeatOf(ctx, admin, "doomed")
		return ok, err
	})
	wnc.Close()
	stopWorker() // its delete fails: the connection is gone
	eventually(t, "heartbeat expiry", func() (bool, error) {
		_, ok, err := heartbeatOf(ctx, admin, "doomed")
		return !ok && err == nil, err
	})
}

// TestWorkerMetrics scrapes /metrics over HTTP, as Prometheus does, after a
// worker (the restricted user) processed frames: the counters equal the
// results it published, the histograms saw every frame, and the pending
// gauge read through the worker's own connection counts frames waiting.
func TestWorkerMetrics(t *testing.T) {
	url := startServer(t)
	admin, wc := dial(t, url, "admin").js, dial(t, url, "worker")
	wjs := wc.js
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := bus.Setup(ctx, admin, bus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	mw, err := metrics.NewWorker(reg, "m-1")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := bus.Await(ctx, wjs, bus.FramesStream, bus.WorkersConsumer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := metrics.RegisterPending(reg, cons, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(reg, nil, nil))
	defer srv.Close()

	const good, bad = 5, 2
	rng := rand.New(rand.NewPCG(3, 4))
	for seq := range good {
		publishFrame(t, ctx, admin, frame(seq, rng), nil)
	}
	publishFrame(t, ctx, admin, frame(good, rng), map[string]string{bus.HeaderConf: "high"})
	wrong := frame(good+1, rng)
	wrong.Size, wrong.Pixels = 32, wrong.Pixels[:32*32*3]
	publishFrame(t, ctx, admin, wrong, nil)
	// The server counts a consumer's pending frames a moment after storing
	// them.
	eventually(t, "pending before the worker", func() (bool, error) {
		v, _ := metricstest.Value(metricstest.Scrape(t, srv.URL+"/metrics"), "vidpipe_frames_pending", nil)
		return v == good+bad, fmt.Errorf("pending %v, want %d", v, good+bad)
	})

	nms := detect.DefaultNMSOptions()
	w, err := New(ctx, wjs, openSession(t, smallModel(t), 4), Options{Name: "m-1", Batch: 4, NMS: nms, Metrics: mw, Layout: layoutOf(t, smallModel(t))})
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := runWorker(t, ctx, w)
	results := collectResults(t, ctx, admin, good+bad)
	stopWorker() // drained: every frame acked

	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
	}
	if failed != bad {
		t.Fatalf("%d error results, want %d", failed, bad)
	}
	fams := metricstest.Scrape(t, srv.URL+"/metrics")
	worker := map[string]string{"worker": "m-1"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vidpipe_worker_frames_total", worker, good + bad},
		{"vidpipe_worker_failed_frames_total", worker, bad},
	} {
		if v, ok := metricstest.Value(fams, tc.name, tc.labels); !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.name, v, ok, tc.want)
		}
	}
	// Acks are not confirmed by the server: the drained worker's last ones
	// may land a moment later.
	eventually(t, "no frame pending after the drain", func() (bool, error) {
		v, ok := metricstest.Value(metricstest.Scrape(t, srv.URL+"/metrics"), "vidpipe_frames_pending", nil)
		return ok && v == 0, fmt.Errorf("pending %v (present %v)", v, ok)
	})
	h := fams["vidpipe_worker_batch_size"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() != good || h.GetSampleCount() < 2 {
		t.Errorf("batch sizes: %d runs over %v frames, want %d frames in at least 2 runs of at most 4", h.GetSampleCount(), h.GetSampleSum(), good)
	}
	inf := fams["vidpipe_worker_inference_seconds"].GetMetric()[0].GetHistogram()
	if inf.GetSampleCount() != h.GetSampleCount() || !(inf.GetSampleSum() > 0) {
		t.Errorf("inference: %d runs taking %v s, want %d runs taking some time", inf.GetSampleCount(), inf.GetSampleSum(), h.GetSampleCount())
	}
	if errs := wc.asyncErrors(); len(errs) > 0 {
		t.Errorf("the worker did something its user may not: %v", errs)
	}
}

func TestDecodeHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		ok               bool
	}{
		{"valid", "w-1", `{"name":"w-1","frames":3}`, true},
		{"other name", "w-1", `{"name":"w-2"}`, false},
		{"bad name", "a.b", `{"name":"a.b"}`, false},
		{"not json", "w-1", `w-1`, false},
		{"empty", "w-1", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Heartbeat
			err := DecodeHeartbeat(tc.key, []byte(tc.value), &h)
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, bus.ErrBadMessage) {
				t.Errorf("%v is not bus.ErrBadMessage", err)
			}
		})
	}
}

func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add("w-1", []byte(`{"name":"w-1","frames":3,"beat":"2026-01-02T03:04:05Z"}`))
	f.Add("w-1", []byte(`{"name":"w-1","started":"x"}`))
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		var h Heartbeat
		if DecodeHeartbeat(key, b, &h) == nil && (h.Name != key || bus.ValidName("worker", key) != nil) {
			t.Fatalf("accepted heartbeat %+v under key %q", h, key)
		}
	})
}
