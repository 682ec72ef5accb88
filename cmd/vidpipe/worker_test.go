package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
)

// TestRunWithWorkerProcesses runs the job with no in-process worker: two
// `vidpipe worker` processes on the same external JetStream share the
// frames, every frame is analysed exactly once, and SIGTERM stops each
// worker cleanly.
func TestRunWithWorkerProcesses(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	dir := t.TempDir()
	src := clip(t, dir, "3")

	var procs []*exec.Cmd
	var logs []*bytes.Buffer
	for _, name := range []string{"ext1", "ext2"} {
		cmd := exec.Command(binary, "worker", "--nats", url, "--name", name, "--imgsz", "128", "--batch", "1", "--threads", "1")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, logs = append(procs, cmd), append(logs, &buf)
		defer cmd.Process.Kill()
	}

	out := filepath.Join(dir, "out")
	code, stdout, stderr := vidpipe(t, "run", "--nats", url, "--workers", "0", "--imgsz", "128", "--no-annotate", "--out", out, src)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s\nworker logs:\n%s\n%s", code, stdout, stderr, logs[0], logs[1])
	}
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
}
