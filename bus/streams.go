package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions sizes the streams and the workers' consumer.
type StreamOptions struct {
	// Replicas is 1 on one machine; use 3 on a production cluster.
	Replicas int
	// MaxFramesWaiting bounds the frames stored and not yet acked by a worker.
	// Publishing past it is refused (discard-new), which is the backpressure
	// that keeps ingest's memory flat for any video length.
	MaxFramesWaiting int64
	// MaxFrameBytes is the largest frame message accepted.
	MaxFrameBytes int32
	// DuplicateWindow is how long a Nats-Msg-Id is remembered.
	DuplicateWindow time.Duration
	// AckWait is how long a worker may hold a frame before it is redelivered;
	// workers send InProgress during long batches.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one frame (poison frames).
	MaxDeliver int
	// MaxAckPending bounds frames handed to workers and not yet acked.
	MaxAckPending int
	// ResultsMaxAge is how long results and events are kept for replay.
	ResultsMaxAge time.Duration
	// ResultsMaxBytes bounds the results stream. Past it the oldest results
	// go (discard-old): a flood of results, a worker's credentials in the
	// wrong hands say, evicts old replay data but can neither fill the
	// server's store, where job records live, nor block honest results.
	ResultsMaxBytes int64
	// ResultsMaxPerSubject bounds the messages kept for one video's results
	// (and, apart, its events): well above any video's frame count, so it
	// bites only on a flood aimed at one subject.
	ResultsMaxPerSubject int64
	// JobsMaxBytes bounds the job records bucket and, each on its own, the
	// video tasks stream: every stream must have a size (nats.conf requires
	// max_bytes), and these hold small JSON records.
	JobsMaxBytes int64
	// IngestAckWait is how long an ingest process may hold a video task
	// between progress notices before it is handed to another process.
	IngestAckWait time.Duration
	// IngestMaxDeliver bounds attempts at one video task: a task whose
	// ingest process keeps dying is not retried forever. JetStream counts
	// every delivery, also those a stopping process hands back, so it
	// leaves room for rolling restarts and kills besides real failures.
	IngestMaxDeliver int
	// WorkerTTL is how long a worker heartbeat lives; workers beat every
	// third of it.
	WorkerTTL time.Duration
	// JobsMaxAge is how long finished job records are kept (0: forever).
	JobsMaxAge time.Duration
	// FramesInMemory keeps the frames stream in memory: frames are
	// transient, and a process that owns its server (`vidpipe run`) loses
	// them with it anyway. Results, tasks and records stay on file storage.
	FramesInMemory bool
}

// DefaultStreamOptions suit one machine.
func DefaultStreamOptions() StreamOptions {
	return StreamOptions{
		Replicas:         1,
		MaxFramesWaiting: 64,
		MaxFrameBytes:    8 << 20,
		DuplicateWindow:  2 * time.Minute,
		AckWait:          60 * time.Second,
		MaxDeliver:       5,
		MaxAckPending:    256,
		ResultsMaxAge:    7 * 24 * time.Hour,
		// About a million 1 KB results; a share of nats.conf's 8 GB store.
		ResultsMaxBytes:      1 << 30,
		ResultsMaxPerSubject: 1 << 21,
		JobsMaxBytes:         256 << 20,
		IngestAckWait:        60 * time.Second,
		IngestMaxDeliver:     10,
		WorkerTTL:            15 * time.Second,
		JobsMaxAge:           30 * 24 * time.Hour,
	}
}

// Setup creates or updates the streams, consumers and KV buckets. It is
// idempotent: the coordinator (or `vidpipe run`) calls it on every start;
// ingest and worker processes, whose NATS users may not create anything,
// wait for them with Await.
func Setup(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	framesStorage := jetstream.FileStorage
	if o.FramesInMemory {
		framesStorage = jetstream.MemoryStorage
	}
	frames := jetstream.StreamConfig{
		Name:        FramesStream,
		Description: "decoded frames waiting for a worker",
		Subjects:    []string{FramesSubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     o.MaxFramesWaiting,
		MaxBytes:    min(o.MaxFramesWaiting*int64(o.MaxFrameBytes), framesMaxBytes),
		MaxMsgSize:  o.MaxFrameBytes,
		Duplicates:  o.DuplicateWindow,
		Storage:     framesStorage,
		Replicas:    o.Replicas,
	}
	if _, err := js.CreateOrUpdateStream(ctx, frames); err != nil {
		return fmt.Errorf("create stream %s: %w", FramesStream, err)
	}
	results := jetstream.StreamConfig{
		Name:        ResultsStream,
		Description: "per-frame detection results and per-video events",
		Subjects:    []string{ResultsSubject + ".>", EventsSubject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.ResultsMaxAge,
		MaxBytes:    o.ResultsMaxBytes,
		Discard:     jetstream.DiscardOld,
		// Per subject: one video's results, or its events.
		MaxMsgsPerSubject: o.ResultsMaxPerSubject,
		Duplicates:        o.DuplicateWindow,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
	}
	if _, err := js.CreateOrUpdateStream(ctx, results); err != nil {
		return fmt.Errorf("create stream %s: %w", ResultsStream, err)
	}
	workers := jetstream.ConsumerConfig{
		Durable:       WorkersConsumer,
		Description:   "every worker pulls frames from here",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    o.MaxDeliver,
		MaxAckPending: o.MaxAckPending,
		FilterSubject: FramesSubject + ".>",
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, FramesStream, workers); err != nil {
		return fmt.Errorf("create consumer %s: %w", WorkersConsumer, err)
	}
	return setupJobs(ctx, js, o)
}

// setupJobs creates what the job service adds: the video tasks and their
// consumer, and the jobs and workers KV buckets.
func setupJobs(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	videos := jetstream.StreamConfig{
		Name:        VideosStream,
		Description: "one ingest task per video of a submitted job",
		Subjects:    []string{VideosSubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxBytes:    o.JobsMaxBytes,
		Duplicates:  o.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	}
	if _, err := js.CreateOrUpdateStream(ctx, videos); err != nil {
		return fmt.Errorf("create stream %s: %w", VideosStream, err)
	}
	ingest := jetstream.ConsumerConfig{
		Durable:       IngestConsumer,
		Description:   "every ingest process pulls video tasks from here",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.IngestAckWait,
		MaxDeliver:    o.IngestMaxDeliver,
		MaxAckPending: 1024,
		FilterSubject: VideosSubject + ".>",
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, VideosStream, ingest); err != nil {
		return fmt.Errorf("create consumer %s: %w", IngestConsumer, err)
	}
	advisories := jetstream.StreamConfig{
		Name:        AdvisoriesStream,
		Description: "frames and video tasks that reached MaxDeliver, until a coordinator records them as failed",
		Subjects:    []string{MaxDeliveriesAdvisory, TaskMaxDeliveriesAdvisory},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      o.ResultsMaxAge,
		MaxBytes:    advisoriesMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	}
	if _, err := js.CreateOrUpdateStream(ctx, advisories); err != nil {
		return fmt.Errorf("create stream %s: %w", AdvisoriesStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, AdvisoriesStream, jetstream.ConsumerConfig{
		Durable: AdvisoriesConsumer, Description: "the coordinator records undeliverable frames",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	}); err != nil {
		return fmt.Errorf("create consumer %s: %w", AdvisoriesConsumer, err)
	}
	jobs := jetstream.KeyValueConfig{
		Bucket: JobsBucket, Description: "job records", History: 1,
		TTL: o.JobsMaxAge, MaxBytes: o.JobsMaxBytes, Storage: jetstream.FileStorage, Replicas: o.Replicas,
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jobs); err != nil {
		return fmt.Errorf("create kv %s: %w", JobsBucket, err)
	}
	hb := jetstream.KeyValueConfig{
		Bucket: WorkersBucket, Description: "worker heartbeats", History: 1,
		TTL: o.WorkerTTL, MaxBytes: workersMaxBytes, Storage: jetstream.MemoryStorage, Replicas: o.Replicas,
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, hb); err != nil {
		return fmt.Errorf("create kv %s: %w", WorkersBucket, err)
	}
	return nil
}

// Sizes of the streams that hold only small bookkeeping records: a few
// hundred bytes per undeliverable frame, or per live worker.
const (
	advisoriesMaxBytes = 64 << 20
	// framesMaxBytes caps the frames stream whatever MaxFramesWaiting says:
	// past it publishing is refused like past MaxMsgs, the same backpressure.
	framesMaxBytes  = 1 << 30
	workersMaxBytes = 16 << 20
)

// Await waits until the coordinator has created the consumer a process
// pulls from, retrying every second; it logs once while it waits. A process
// started before the coordinator therefore just waits for it.
func Await(ctx context.Context, js jetstream.JetStream, stream, consumer string, log func(msg string, args ...any)) (jetstream.Consumer, error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for logged := false; ; {
		c, err := js.Consumer(ctx, stream, consumer)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("consumer %s on %s: %w", consumer, stream, err)
		}
		if !logged && log != nil {
			log("waiting for the coordinator to create the consumer", "stream", stream, "consumer", consumer)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("consumer %s on %s: %w", consumer, stream, ctx.Err())
		case <-t.C:
		}
	}
}

// storeFailed is the JetStream error code for a refused store; with
// discard-new its description says which limit was hit.
const storeFailed jetstream.ErrorCode = 10077

// IsStreamFull reports whether a publish was refused because the frames
// stream is at its limit: the caller should wait and retry.
func IsStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != storeFailed {
		return false
	}
	d := apiErr.Description
	return strings.Contains(d, "maximum messages") || strings.Contains(d, "maximum bytes")
}
