package coordinator

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/logtest"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/storage"
)

// TestOutputsRideOutStorageOutage: the job's results are all in, and S3 is
// down when the coordinator writes the outputs; it retries, the store
// comes back (versitygw restarted on the same port and data), and every
// output is written: the video succeeds instead of failing for good.
func TestOutputsRideOutStorageOutage(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket(t, "results")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out, err := storage.NewS3(ctx, "results", storage.Options{S3Endpoint: srv.Endpoint, S3RetryMaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const job, n = "job1", 6
	publish(t, js, bus.EventSubject(job, "v"), bus.Event{Type: bus.VideoStarted, Job: job, Video: "v", FramesEstimate: n})
	for seq := range n {
		publish(t, js, bus.ResultSubject(job, "v"), bus.Result{Job: job, Video: "v", Seq: seq, Index: seq, Worker: "w1",
			PublishedUnixNano: int64(seq+1) * 1e9, DoneUnixNano: int64(seq+1)*1e9 + 1e8, Detections: []bus.Detection{}})
	}
	publish(t, js, bus.EventSubject(job, "v"), bus.Event{Type: bus.VideoEnded, Job: job, Video: "v", Frames: n, Decoded: n})

	srv.Stop()
	log := logtest.OnMessage("storage unavailable; retrying", srv.Restart)
	c := New(js, Options{Out: out, Prefix: "jobs/" + job, Logger: log,
		StorageRetry: storage.RetryPolicy{For: time.Minute, First: 10 * time.Millisecond, Max: 200 * time.Millisecond}})
	sum, err := c.RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{"v", "v.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v := sum.Videos[0]; v.Status != Succeeded || v.Stats.Frames != n {
		t.Fatalf("video after the outage: %+v", v)
	}
	for _, key := range []string{"v/" + DetectionsFile, "v/" + ParquetFile, "v/" + StatsFile, SummaryFile} {
		rc, err := out.Get(ctx, "jobs/"+job+"/"+key)
		if err != nil {
			t.Errorf("output %s: %v", key, err)
			continue
		}
		_, _ = io.Copy(io.Discard, rc)
		rc.Close()
	}
}
