package ingest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/logtest"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/storage"
)

// TestOpenRidesOutStorageOutage: S3 is down when a video is opened; the
// open is retried until the store is back, and the video is ingested
// whole, not reported as a failed input. An outage that outlasts the
// retries hands the task back (an error from Ingest), still without an
// end event that would fail the video.
func TestOpenRidesOutStorageOutage(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket(t, "videos")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bucket, err := storage.NewS3(ctx, "videos", storage.Options{S3Endpoint: srv.Endpoint, S3RetryMaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(testClip(t, "clip.mp4", 2, 10))
	if err != nil {
		t.Fatal(err)
	}
	err = bucket.Put(ctx, "clip.mp4", f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	open := func(context.Context, string) (storage.Bucket, string, error) { return bucket, "clip.mp4", nil }
	quick := storage.RetryPolicy{For: time.Minute, First: 10 * time.Millisecond, Max: 200 * time.Millisecond}

	srv.Stop()
	log := logtest.OnMessage("storage unavailable; retrying", srv.Restart)
	in := New(js, Options{Open: open, Logger: log, StorageRetry: quick})
	v := Video{Name: "clip", Source: "s3://videos/clip.mp4", Decode: &decode.Options{Size: 64}}
	if err := in.Ingest(ctx, "job1", v); err != nil {
		t.Fatal(err)
	}
	results, err := js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := results.GetLastMsgForSubject(ctx, bus.EventSubject("job1", "clip"))
	if err != nil {
		t.Fatal(err)
	}
	var end bus.Event
	if err := bus.DecodeEvent(m.Data, &end); err != nil {
		t.Fatal(err)
	}
	if end.Type != bus.VideoEnded || end.Error != "" || end.Frames != 20 {
		t.Fatalf("end event after the outage: %+v, want 20 frames and no error", end)
	}

	// Down for longer than the retries: handed back, no end event.
	srv.Stop()
	short := New(js, Options{Open: open, StorageRetry: storage.RetryPolicy{For: 50 * time.Millisecond, First: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	if err := short.Ingest(ctx, "job2", Video{Name: "clip", Source: "s3://videos/clip.mp4", Decode: &decode.Options{Size: 64}}); err == nil || !storage.IsTransient(err) {
		t.Fatalf("Ingest with the store down: %v, want a transient error", err)
	}
	if n := streamMsgs(t, js, bus.ResultsStream, bus.EventSubject("job2", "clip")); n != 0 {
		t.Fatalf("%d events for a video whose store was down", n)
	}
}
