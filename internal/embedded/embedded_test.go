package embedded

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/storage"
)

// TestPipelineStopsIngestWhenTheJobFails: ingest is blocked on a full
// frames stream (no worker drains it) when following the job fails, as
// RunJob does on a job it refuses. The pipeline must return that error,
// with ingest stopped, instead of waiting for ingest forever.
func TestPipelineStopsIngestWhenTheJobFails(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.MaxFramesWaiting = 4
	_, js := bustest.Start(t, o)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	if out, err := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-frames:v", "30",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", src).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	in := ingest.New(js, ingest.Options{Decode: decode.Options{Every: 1, Size: 64}})
	out, err := storage.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	coord := coordinator.New(js, coordinator.Options{Out: out})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ingested := make(chan error, 1)
	follow := func(ctx context.Context) error {
		// Wait until ingest is blocked, then fail as a refused job does.
		for full := false; !full; {
			s, err := js.Stream(ctx, bus.FramesStream)
			if err != nil {
				return err
			}
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			full = info.State.Msgs >= uint64(o.MaxFramesWaiting)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		_, err := coord.RunJob(ctx, coordinator.Job{ID: "j", Videos: []coordinator.VideoSpec{{Name: "v", Source: src}, {Name: "v", Source: src}}})
		return err
	}
	err = Pipeline(ctx, follow, func(ctx context.Context) error {
		err := in.Ingest(ctx, "j", ingest.Video{Name: "v", Source: filepath.Clean(src)})
		ingested <- err
		return nil
	})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pipeline: %v; want RunJob's error, before the deadline", err)
	}
	if ierr := <-ingested; !errors.Is(ierr, context.Canceled) {
		t.Errorf("ingest ended with %v, want it cancelled", ierr)
	}
}

// TestRunCancelsTheJobItStops: a run stopped mid-job (no worker analyses
// its frames here) leaves its job CANCELLED, not RUNNING for a coordinator
// on the same NATS to resume.
func TestRunCancelsTheJobItStops(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	src := filepath.Join(t.TempDir(), "clip.mp4")
	if out, err := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-frames:v", "30",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", src).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cfg := Config{
		JS:      js,
		Service: jobs.Options{Out: t.TempDir(), Model: jobs.Model{Path: "m.onnx", SHA256: "abc", Input: 64}},
		Ingest:  ingest.Options{Decode: decode.Options{Every: 1, Size: 64}},
		OnRecord: func(r *jobs.Record) {
			if r.State == bus.JobRunning && r.Dispatched {
				stop()
			}
		},
	}
	_, err := Run(runCtx, cfg, jobs.Spec{Name: "j", Inputs: []string{src}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	store, err := jobs.OpenStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != bus.JobCancelled {
		t.Errorf("job %s after the run stopped, want %s", rec.State, bus.JobCancelled)
	}
}
