package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/internal/poll"
	"github.com/vidpipe/vidpipe/workers"
)

// TestRunWithWorkerProcesses runs the job with no in-process worker: two
// `vidpipe worker` processes, started first, wait on the external JetStream
// without creating anything until `vidpipe run` sets it up; then they share
// the frames (of a job started once both pull: a worker finds the
// coordinator's side by polling), every frame is analysed exactly once,
// each keeps a heartbeat and serves /healthz, and SIGTERM stops each
// worker cleanly and removes its heartbeat.
func TestRunWithWorkerProcesses(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	nc, err := bus.ConnectEmbedded(srv, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src := clip(t, dir, "3")

	// Free ports for the workers' metrics; nothing else here listens.
	var metricsURLs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		metricsURLs = append(metricsURLs, "http://"+ln.Addr().String())
		ln.Close()
	}
	metricsURL := metricsURLs[0]
	errString := func(err error) string {
		if err == nil {
			return ""
		}
		return " " + err.Error()
	}
	get := func(base, path string) (int, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	wait := func(what string, cond func() (bool, string)) {
		t.Helper()
		poll.Until(t, 60*time.Second, what, func() (bool, error) {
			ok, last := cond()
			return ok, errors.New(last)
		})
	}

	var procs []*exec.Cmd
	var logs []*bytes.Buffer
	for i, name := range []string{"ext1", "ext2"} {
		args := []string{"worker", "--nats", url, "--name", name, "--imgsz", "128", "--batch", "1", "--threads", "1",
			"--metrics", strings.TrimPrefix(metricsURLs[i], "http://")}
		cmd := exec.Command(binary, args...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, logs = append(procs, cmd), append(logs, &buf)
		defer cmd.Process.Kill()
	}

	// Before the coordinator's side exists, a worker waits and says so.
	wait("ext1 waiting for the coordinator", func() (bool, string) {
		code, body, err := get(metricsURL, "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "waiting for the coordinator"), body + errString(err)
	})
	if _, err := js.Stream(ctx, bus.FramesStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("frames stream before `vidpipe run`: %v, want none (workers create nothing)", err)
	}

	// A one-frame job makes the coordinator's side; the job that counts
	// starts once both workers pull frames, so that both share it.
	runJob := func(src, out string) {
		t.Helper()
		code, stdout, stderr := vidpipe(t, "run", "--nats", url, "--workers", "0", "--imgsz", "128", "--no-annotate", "--out", out, src)
		if code != 0 {
			t.Fatalf("run: exit %d\n%s\n%s\nworker logs:\n%s\n%s", code, stdout, stderr, logs[0], logs[1])
		}
	}
	warmDir := filepath.Join(dir, "warm")
	if err := os.MkdirAll(warmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	runJob(clip(t, warmDir, "0.1"), filepath.Join(dir, "warm-out"))
	for i, u := range metricsURLs {
		wait(fmt.Sprintf("ext%d pulling frames", i+1), func() (bool, string) {
			code, body, err := get(u, "/healthz")
			return code == http.StatusOK, body + errString(err)
		})
	}
	var warm coordinator.Stats
	readJSON(t, filepath.Join(dir, "warm-out", "clip", "stats.json"), &warm)

	out := filepath.Join(dir, "out")
	runJob(src, out)
	lines := readLines(t, filepath.Join(out, "clip", "detections.jsonl"))
	if len(lines) != 30 {
		t.Fatalf("%d lines, want 30", len(lines))
	}
	for i, l := range lines {
		if l.Frame != i {
			t.Fatalf("line %d is frame %d", i, l.Frame)
		}
	}
	var stats coordinator.Stats
	readJSON(t, filepath.Join(out, "clip", "stats.json"), &stats)
	if stats.Workers["ext1"]+stats.Workers["ext2"] != 30 || len(stats.Workers) != 2 {
		t.Errorf("per-worker frames %v: want both workers and 30 in all", stats.Workers)
	}
	t.Logf("frames per worker: %v", stats.Workers)

	// Heartbeats come every third of the bucket's 15 s TTL.
	wait("heartbeats counting every frame", func() (bool, string) {
		hbs, err := workers.ListHeartbeats(ctx, js)
		if err != nil || len(hbs) != 2 {
			return false, errString(err)
		}
		for _, h := range hbs {
			if int(h.Frames) != stats.Workers[h.Name]+warm.Workers[h.Name] || h.Failed != 0 || len(h.ModelSHA256) != 64 || h.Batch != 1 || h.Threads != 1 || h.Device != "cpu" {
				return false, "heartbeat " + h.Name + " does not match the run"
			}
		}
		return true, ""
	})
	if code, body, err := get(metricsURL, "/healthz"); code != http.StatusOK {
		t.Errorf("ext1 /healthz while pulling frames: %d %q %v", code, body, err)
	}
	_, body, err := get(metricsURL, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	var published float64
	for _, m := range fams["vidpipe_worker_frames_total"].GetMetric() {
		published += m.GetCounter().GetValue()
	}
	if want := stats.Workers["ext1"] + warm.Workers["ext1"]; int(published) != want {
		t.Errorf("ext1 vidpipe_worker_frames_total %v, want its %d frames", published, want)
	}
	if m := fams["vidpipe_frames_pending"].GetMetric(); len(m) != 1 || m[0].GetGauge().GetValue() != 0 {
		t.Errorf("vidpipe_frames_pending after the job: %v, want 0", m)
	}

	for i, p := range procs {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil || !strings.Contains(logs[i].String(), "drained and stopped") {
				t.Errorf("worker %d after SIGTERM: %v\n%s", i+1, err, logs[i])
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker %d still running 30 s after SIGTERM", i+1)
		}
	}
	if hbs, err := workers.ListHeartbeats(ctx, js); err != nil || len(hbs) != 0 {
		t.Errorf("heartbeats after both workers stopped: %+v %v", hbs, err)
	}
}
