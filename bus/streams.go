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
	}
}

// Setup creates or updates the streams and the workers' consumer. It is
// idempotent: every component calls it on start.
func Setup(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	frames := jetstream.StreamConfig{
		Name:        FramesStream,
		Description: "decoded frames waiting for a worker",
		Subjects:    []string{FramesSubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     o.MaxFramesWaiting,
		MaxMsgSize:  o.MaxFrameBytes,
		Duplicates:  o.DuplicateWindow,
		Storage:     jetstream.FileStorage,
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
		Duplicates:  o.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
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
	return nil
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
