package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/metrics/metricstest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ready  func() error
		status int
		body   string
	}{
		{"no check", nil, http.StatusOK, "ok"},
		{"ready", func() error { return nil }, http.StatusOK, "ok"},
		{"not ready", func() error { return errors.New("nats disconnected") }, http.StatusServiceUnavailable, "not ready: nats disconnected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(NewRegistry(), tc.ready, nil))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}

// TestWorkerMetrics counts through the API and reads the values back the
// way Prometheus does; two workers share the registry under their names.
func TestWorkerMetrics(t *testing.T) {
	reg := NewRegistry()
	a, err := NewWorker(reg, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWorker(reg, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWorker(reg, "a"); err == nil {
		t.Error("registering worker a twice: no error")
	}
	var none *Worker // a worker without metrics
	none.Published(true)
	none.Batch(3, time.Second)

	for range 5 {
		a.Published(false)
	}
	a.Published(true)
	a.Batch(4, 20*time.Millisecond)
	a.Batch(2, 10*time.Millisecond)
	b.Published(false)

	srv := httptest.NewServer(Handler(reg, nil, nil))
	defer srv.Close()
	fams := metricstest.Scrape(t, srv.URL+"/metrics")
	for _, tc := range []struct {
		name   string
		worker string
		want   float64
	}{
		{"vidpipe_worker_frames_total", "a", 6},
		{"vidpipe_worker_failed_frames_total", "a", 1},
		{"vidpipe_worker_frames_total", "b", 1},
		{"vidpipe_worker_failed_frames_total", "b", 0},
		{"vidpipe_worker_batch_size", "a", 2}, // histogram: number of batches
		{"vidpipe_worker_inference_seconds", "a", 2},
		{"vidpipe_worker_batch_size", "b", 0},
	} {
		t.Run(tc.name+"/"+tc.worker, func(t *testing.T) {
			got, ok := metricstest.Value(fams, tc.name, map[string]string{"worker": tc.worker})
			if !ok || got != tc.want {
				t.Errorf("got %v (present %v), want %v", got, ok, tc.want)
			}
		})
	}
	if sum := fams["vidpipe_worker_batch_size"].GetMetric()[0].GetHistogram().GetSampleSum(); sum != 6 {
		t.Errorf("batch size sum %v, want 6 frames", sum)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := fams["process_cpu_seconds_total"]; !ok {
		t.Error("no process metrics")
	}
}

// TestPending reads the workers consumer of a real JetStream at scrape
// time: published frames show as pending, a fetched and unacked one too,
// and an acked one no longer.
func TestPending(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	if err := RegisterPending(reg, cons, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg, nil, nil))
	defer srv.Close()
	// The server updates a consumer's counts a moment after a publish or an
	// ack, so each expectation is polled for.
	expect := func(what string, want, wantAck float64) {
		t.Helper()
		poll.Until(t, 30*time.Second, what, func() (bool, error) {
			fams := metricstest.Scrape(t, srv.URL+"/metrics")
			v, ok := metricstest.Value(fams, "vidpipe_frames_pending", nil)
			a, aok := metricstest.Value(fams, "vidpipe_frames_ack_pending", nil)
			return ok && aok && v == want && a == wantAck, fmt.Errorf("pending %v, ack pending %v (present %v %v), want %v and %v", v, a, ok, aok, want, wantAck)
		})
	}
	expect("empty stream", 0, 0)
	for i := range 3 {
		msg := &nats.Msg{Subject: bus.FrameSubject("j", "v"), Data: []byte("frame")}
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.MsgID("j", "v", i))); err != nil {
			t.Fatal(err)
		}
	}
	expect("3 published", 3, 0)
	m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	expect("1 of 3 fetched, not acked", 3, 1)
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	expect("1 of 3 acked", 2, 0)
}

// TestPendingUnreadable keeps serving the other metrics when the consumer
// cannot be read.
func TestPendingUnreadable(t *testing.T) {
	reg := NewRegistry()
	if err := RegisterPending(reg, brokenConsumer{}, time.Second); err != nil {
		t.Fatal(err)
	}
	w, _ := NewWorker(reg, "a")
	w.Published(false)
	srv := httptest.NewServer(Handler(reg, nil, nil))
	defer srv.Close()
	fams := metricstest.Scrape(t, srv.URL+"/metrics")
	if _, ok := metricstest.Value(fams, "vidpipe_frames_pending", nil); ok {
		t.Error("a pending value from a consumer that cannot be read")
	}
	if v, _ := metricstest.Value(fams, "vidpipe_worker_frames_total", nil); v != 1 {
		t.Errorf("frames_total %v, want 1 despite the failing collector", v)
	}
}

type brokenConsumer struct{}

func (brokenConsumer) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	return nil, jetstream.ErrConsumerNotFound
}

func TestCoordinatorMetrics(t *testing.T) {
	reg := NewRegistry()
	c, err := NewCoordinator(reg, func(ctx context.Context) (map[string]int, error) {
		return map[string]int{"running": 2, "done": 5}, ctx.Err()
	}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var none *Coordinator
	none.AddResults(1)
	none.SetJobFPS("x", 1)
	none.ForgetJob("x")
	c.AddResults(30)
	c.AddResults(12)
	c.SetJobFPS("j1", 24.5)
	c.SetJobFPS("j2", 3)
	c.ForgetJob("j2")

	srv := httptest.NewServer(Handler(reg, nil, nil))
	defer srv.Close()
	fams := metricstest.Scrape(t, srv.URL+"/metrics")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
		absent bool
	}{
		{name: "vidpipe_coordinator_results_total", want: 42},
		{name: "vidpipe_coordinator_jobs", labels: map[string]string{"state": "running"}, want: 2},
		{name: "vidpipe_coordinator_jobs", labels: map[string]string{"state": "done"}, want: 5},
		{name: "vidpipe_coordinator_frames_per_second", labels: map[string]string{"job": "j1"}, want: 24.5},
		{name: "vidpipe_coordinator_frames_per_second", labels: map[string]string{"job": "j2"}, absent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := metricstest.Value(fams, tc.name, tc.labels)
			if ok == tc.absent || got != tc.want {
				t.Errorf("%v: got %v (present %v), want %v (absent %v)", tc.labels, got, ok, tc.want, tc.absent)
			}
		})
	}
}

// TestServeShutsDown serves on a real listener, then ends the context and
// expects a clean return and a closed port.
func TestServeShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewRegistry(), nil, nil) }()
	fams := metricstest.Scrape(t, "http://"+addr+"/metrics")
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no go_goroutines in /metrics")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30 s after cancel")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}
