package infra

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// TestNATSStreamLimits: under nats.conf every stream bus.Setup creates has
// a size, and a stream without one is refused even to admin, so nothing can
// grow until the store is full.
func TestNATSStreamLimits(t *testing.T) {
	srv := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord, admin := dial(t, srv, "coordinator"), dial(t, srv, "admin")
	o := bus.DefaultStreamOptions()
	if err := bus.Setup(ctx, coord.js, o); err != nil {
		t.Fatalf("setup under nats.conf: %v", err)
	}
	for name := range coord.js.StreamNames(ctx).Name() {
		s, err := coord.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxBytes <= 0 {
			t.Errorf("stream %s has no max_bytes", name)
		}
	}
	s, err := coord.js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxBytes != o.ResultsMaxBytes || cfg.Discard != jetstream.DiscardOld || cfg.MaxMsgsPerSubject != o.ResultsMaxPerSubject {
		t.Errorf("%s: max_bytes %d, discard %v, max_msgs_per_subject %d; want %d, old, %d",
			bus.ResultsStream, cfg.MaxBytes, cfg.Discard, cfg.MaxMsgsPerSubject, o.ResultsMaxBytes, o.ResultsMaxPerSubject)
	}
	_, err = admin.js.CreateStream(ctx, jetstream.StreamConfig{Name: "UNBOUNDED", Subjects: []string{"unbounded.>"}})
	if err == nil {
		t.Fatal("create a stream without max_bytes: accepted, want refused (max_bytes_required)")
	}
	t.Logf("unbounded stream refused: %v", err)
}

// TestNATSResultsFlood floods the results stream with worker credentials,
// far past the server's whole store, and then submits a job as the job API
// does: the results stream stays within its max_bytes (the flood evicts its
// own oldest messages) and the job record and its task are still written.
// Before the results stream had a size the flood took the store and every
// job record write failed.
func TestNATSResultsFlood(t *testing.T) {
	const store = 128 << 20
	srv := startNATSWith(t, func(o *server.Options) { o.JetStreamMaxStore = store })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	coord, worker := dial(t, srv, "coordinator"), dial(t, srv, "worker")
	o := bus.DefaultStreamOptions()
	// Small sizes that fit the small store; the proportions are the
	// defaults': results take a share of the store, never all of it.
	o.MaxFramesWaiting, o.MaxFrameBytes = 4, 1<<20
	o.ResultsMaxBytes, o.JobsMaxBytes = 8<<20, 4<<20
	if err := bus.Setup(ctx, coord.js, o); err != nil {
		t.Fatalf("setup: %v", err)
	}

	payload := make([]byte, 512<<10)
	refused := 0
	for i := range 2 * store / len(payload) {
		if _, err := worker.js.Publish(ctx, bus.ResultSubject("flood", fmt.Sprint("v", i%7)), payload); err != nil {
			refused++
		}
	}
	s, err := coord.js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flood of %d MiB: results stream holds %d messages, %d bytes; %d publishes refused", 2*store>>20, info.State.Msgs, info.State.Bytes, refused)
	if info.State.Bytes > uint64(o.ResultsMaxBytes) {
		t.Errorf("results stream holds %d bytes, over its max_bytes %d", info.State.Bytes, o.ResultsMaxBytes)
	}

	st, err := jobs.OpenStore(ctx, coord.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, &jobs.Record{ID: "after-flood", State: bus.JobQueued, Created: time.Now()}); err != nil {
		t.Fatalf("job record after the flood: %v", err)
	}
	task, err := bus.EncodeTask(&bus.Task{Job: "after-flood", Video: "v", Source: "s3://videos/v.mp4", Size: 640})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coord.js.Publish(ctx, bus.VideoSubject("after-flood", "v"), task); err != nil {
		t.Fatalf("video task after the flood: %v", err)
	}
	// Honest results still go in: the flood never blocks them.
	if _, err := worker.js.Publish(ctx, bus.ResultSubject("after-flood", "v"), []byte(`{}`)); err != nil {
		t.Fatalf("result after the flood: %v", err)
	}
	coord.settle(t)
	worker.settle(t)
}
