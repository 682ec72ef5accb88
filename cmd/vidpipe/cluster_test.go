package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/clustertest"
	"github.com/vidpipe/vidpipe/internal/metrics/metricstest"
	"github.com/vidpipe/vidpipe/workers"
)

// startCluster deploys vidpipe on loopback with the vidpipe binary these
// tests built: see internal/clustertest.
func startCluster(tb testing.TB) *clustertest.Cluster {
	tb.Helper()
	return clustertest.Start(tb, clustertest.Options{Vidpipe: binary})
}

// TestClusterEndToEnd is the distributed deployment on loopback: a bulk
// job through the API, with a worker added mid-job, a worker SIGKILLed
// mid-job and the coordinator SIGKILLed and restarted mid-job. Every frame
// ends in the results exactly once.
func TestClusterEndToEnd(t *testing.T) {
	c := startCluster(t)
	counts := c.UploadClips(4, "20")
	const imgsz = "320"
	coord := c.Coordinator("coordinator-1", "--imgsz", imgsz)
	ingestMetrics := fmt.Sprintf("127.0.0.1:%d", clustertest.FreePort(t))
	c.Ingest("ingest-1", "--metrics", ingestMetrics)
	c.Ingest("ingest-2")
	var ws []*clustertest.Proc
	workerMetrics := fmt.Sprintf("127.0.0.1:%d", clustertest.FreePort(t))
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("worker-%d", i)
		args := []string{"--imgsz", imgsz, "--batch", "2", "--threads", "1"}
		if i == 2 {
			args = append(args, "--metrics", workerMetrics)
		}
		ws = append(ws, c.Worker(name, args...))
	}

	code, stdout, stderr := vidpipe(t, "submit", "--api", c.APIURL, "--idempotency-key", "bulk-1", "--output", "s3://results/bulk", "s3://videos/clips/")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	cl := c.Client()
	rec := c.WaitJob(cl, id, "progress", 3*time.Minute, func(r *jobs.Record) bool { return r.Progress.Done > 0 })
	if len(rec.Videos) != 4 {
		t.Fatalf("job has %d videos, want 4", len(rec.Videos))
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	at := func(frac float64) func(*jobs.Record) bool {
		return func(r *jobs.Record) bool { return r.Progress.Done >= int(frac*float64(total)) || r.State.Final() }
	}

	c.WaitJob(cl, id, "10% done", 3*time.Minute, at(0.10))
	ws = append(ws, c.Worker("worker-4", "--imgsz", imgsz, "--batch", "2", "--threads", "1"))

	c.WaitJob(cl, id, "25% done", 3*time.Minute, at(0.25))
	var live []workers.Heartbeat
	if err := cl.Workers(context.Background(), &live); err != nil || len(live) < 3 {
		t.Fatalf("workers listed mid-job: %d (%v)", len(live), err)
	}
	ws[0].Kill(t, syscall.SIGKILL)

	c.WaitJob(cl, id, "45% done", 3*time.Minute, at(0.45))
	if r, _ := cl.Get(context.Background(), id); r.State.Final() {
		t.Fatalf("the job ended before the coordinator restart; make it longer")
	}
	coord.Kill(t, syscall.SIGKILL)
	c.Coordinator("coordinator-2", "--imgsz", imgsz)

	done := c.WaitJob(cl, id, "the end", 8*time.Minute, func(r *jobs.Record) bool { return r.State.Final() })
	if done.State != bus.JobSucceeded {
		t.Fatalf("job %s: %s (%s)", id, done.State, done.Error)
	}
	c.CheckExactlyOnce(done, counts)
	chartKey := strings.TrimPrefix(done.Results["throughput"], "s3://results/")
	if _, err := png.Decode(bytes.NewReader(c.Get("results", chartKey))); err != nil {
		t.Errorf("throughput chart %s: %v", done.Results["throughput"], err)
	} else if dir := os.Getenv("VIDPIPE_TEST_KEEP"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "cluster-throughput.png"), c.Get("results", chartKey), 0o644)
	}
	if done.Stats.Workers["worker-4"] == 0 {
		t.Errorf("the worker started mid-job analysed nothing: %v", done.Stats.Workers)
	}
	t.Logf("frames per worker: %v; %d frames at %.2f frames/s", done.Stats.Workers, done.Stats.Frames, done.Stats.FPS)

	// The same idempotency key returns the same job, not a second one.
	code, stdout, _ = vidpipe(t, "submit", "--api", c.APIURL, "--idempotency-key", "bulk-1", "--output", "s3://results/bulk", "s3://videos/clips/")
	if code != 0 || strings.TrimSpace(stdout) != id {
		t.Errorf("resubmit with the same key: exit %d, id %q, want %s", code, stdout, id)
	}
	code, stdout, _ = vidpipe(t, "status", "--api", c.APIURL, id)
	if code != 0 || !strings.Contains(stdout, "SUCCEEDED") || !strings.Contains(stdout, "worker-4") {
		t.Errorf("status: exit %d\n%s", code, stdout)
	}
	// The CLI around the API, and the processes' metrics.
	for _, args := range [][]string{{"jobs"}, {"workers"}, {"status", "--watch", id}} {
		code, stdout, stderr := vidpipe(t, append(args, "--api", c.APIURL)...)
		if code != 0 || !strings.Contains(stdout, map[string]string{"jobs": id, "workers": "worker-4", "status": "SUCCEEDED"}[args[0]]) {
			t.Errorf("vidpipe %v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
	}
	if code, _, stderr := vidpipe(t, "cancel", "--api", c.APIURL, id); code != 1 || !strings.Contains(stderr, "409") {
		t.Errorf("cancel of a finished job: exit %d, %s", code, stderr)
	}
	fams := metricstest.Scrape(t, "http://"+workerMetrics+"/metrics")
	if n, _ := metricstest.Value(fams, "vidpipe_worker_frames_total", map[string]string{"worker": "worker-2"}); int(n) < done.Stats.Workers["worker-2"] {
		t.Errorf("worker-2 counts %v frames in /metrics, %d in the job's stats", n, done.Stats.Workers["worker-2"])
	}
	fams = metricstest.Scrape(t, c.APIURL+"/metrics")
	if n, _ := metricstest.Value(fams, "vidpipe_coordinator_jobs", map[string]string{"state": "SUCCEEDED"}); n != 1 {
		t.Errorf("coordinator /metrics: %v succeeded jobs", n)
	}
	if n, ok := metricstest.Value(metricstest.Scrape(t, "http://"+ingestMetrics+"/metrics"), "vidpipe_nats_connected", nil); !ok || n != 1 {
		t.Errorf("ingest /metrics: nats connected %v (present %v)", n, ok)
	}

	// SIGTERM drains every live worker.
	for _, w := range ws[1:] {
		w.Kill(t, syscall.SIGTERM)
		if w.Err() != nil {
			t.Errorf("%s after SIGTERM: %v", w.Name, w.Err())
		}
	}
}

// BenchmarkWorkerScaling measures a job's frames per second with one and
// with two worker processes of one ONNX Runtime thread each (320x320 input,
// 400 frames of vtest.avi), everything else equal. On a 2-core machine the
// second worker competes with ingest and the coordinator for the cores, so
// the efficiency (fps2 / 2·fps1) says how much of a core a worker gets.
//
//	go test -run XXX -bench WorkerScaling -benchtime 1x ./cmd/vidpipe
func BenchmarkWorkerScaling(b *testing.B) {
	fps := map[int]float64{}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			c := startCluster(b)
			c.UploadClips(2, "20")
			c.Coordinator("coordinator", "--imgsz", "320")
			c.Ingest("ingest", "--concurrency", "2")
			for i := 1; i <= n; i++ {
				name := fmt.Sprintf("worker-%d", i)
				c.Worker(name, "--imgsz", "320", "--batch", "4", "--threads", "1")
			}
			cl := c.Client()
			c.WaitWorkers(cl, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec, _, err := cl.Submit(context.Background(), jobs.Spec{Inputs: []string{"s3://videos/clips/"}, Annotate: new(bool)})
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				done := c.WaitJob(cl, rec.ID, "the end", 10*time.Minute, func(r *jobs.Record) bool { return r.State.Final() })
				wall := time.Since(t0).Seconds()
				if done.State != bus.JobSucceeded {
					b.Fatalf("job %s: %s (%s)", rec.ID, done.State, done.Error)
				}
				fps[n] = done.Stats.FPS
				b.ReportMetric(done.Stats.FPS, "frames/s")
				b.ReportMetric(float64(done.Stats.Frames)/wall, "frames/s-submit-to-done")
				b.Logf("%d workers: %d frames, %.2f frames/s (first frame to last result), %.1f s submit to done, shares %v",
					n, done.Stats.Frames, done.Stats.FPS, wall, done.Stats.WorkerShare)
			}
		})
	}
	if fps[1] > 0 && fps[2] > 0 {
		b.Logf("scaling: 2 workers run at %.2fx the frames/s of 1; efficiency %.0f%%", fps[2]/fps[1], 100*fps[2]/(2*fps[1]))
	}
}
