package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/logtest"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/storage"
)

// TestJobRetriedAfterStorageOutage: S3 is down when a job's outputs are
// written, for longer than one output's retries: the job is not FAILED for
// good but runs again, and succeeds with its outputs once S3 is back.
func TestJobRetriedAfterStorageOutage(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket(t, "results")
	ctx := context.Background()
	bucket, err := storage.NewS3(ctx, "results", storage.Options{S3Endpoint: srv.Endpoint, S3RetryMaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	open := func(_ context.Context, uri string) (storage.Bucket, string, error) {
		return bucket, strings.TrimPrefix(uri, "s3://results/"), nil
	}
	store, err := OpenStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	log := logtest.OnMessage("job outputs not written, storage unavailable; running the job again", srv.Restart)
	svc := New(js, store, Options{
		Out: "s3://results/out", Model: Model{Path: "/models/m.onnx", SHA256: "abc", Input: 64},
		LocalInputs: true, FlushEvery: 50 * time.Millisecond, Open: open, Logger: log,
		StorageRetry: storage.RetryPolicy{For: 100 * time.Millisecond, First: 10 * time.Millisecond, Max: 20 * time.Millisecond},
	})
	runCtx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); svc.Wait() }()
	if err := svc.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	rec, _, err := svc.Submit(ctx, Spec{Inputs: []string{"/v/a.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	task := takeTasks(t, js, 1)[0]
	srv.Stop()
	playVideo(t, js, task, 3)
	done := waitFor(t, svc, rec.ID, "the job to finish", func(r *Record) bool { return r.State.Final() })
	if done.State != bus.JobSucceeded {
		t.Fatalf("job after the outage: %s (%s)", done.State, done.Error)
	}
	if _, err := bucket.Head(ctx, "out/"+rec.ID+"/summary.json"); err != nil {
		t.Fatalf("summary.json after the outage: %v", err)
	}
}
