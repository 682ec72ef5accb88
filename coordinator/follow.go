package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// DefaultFollowIdle is how long the results follower waits for a message
// before it asks whether its consumer still delivers.
const DefaultFollowIdle = 20 * time.Second

// resultsFollower reads one job's results and events in stream order
// through an ordered consumer, and watches it: the client library re-creates
// an ordered consumer it knows is gone, but a consumer lost with a stream
// leader can leave it waiting on nothing for minutes. After an idle spell
// the follower asks for the consumer's state; a consumer that is gone, or
// that has messages pending yet delivers none, is replaced by a new one
// that starts after the last message returned, so nothing is applied twice
// and nothing is skipped.
type resultsFollower struct {
	js   jetstream.JetStream
	job  string
	idle time.Duration
	log  *slog.Logger

	cons jetstream.Consumer
	iter jetstream.MessagesContext
	last uint64 // stream sequence of the last message returned
}

func newResultsFollower(ctx context.Context, js jetstream.JetStream, job string, idle time.Duration, log *slog.Logger) (*resultsFollower, error) {
	if idle <= 0 {
		idle = DefaultFollowIdle
	}
	f := &resultsFollower{js: js, job: job, idle: idle, log: log}
	if err := f.open(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// open follows from the message after f.last (from the stream's start at
// first).
func (f *resultsFollower) open(ctx context.Context) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{
			bus.JobFilter(bus.ResultsSubject, f.job),
			bus.JobFilter(bus.EventsSubject, f.job),
		},
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if f.last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.last+1
	}
	cons, err := f.js.OrderedConsumer(ctx, bus.ResultsStream, cfg)
	if err != nil {
		return fmt.Errorf("follow results of job %s: %w", f.job, err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("follow results of job %s: %w", f.job, err)
	}
	f.cons, f.iter = cons, iter
	return nil
}

// stop ends the current iterator; next opens another if called again.
func (f *resultsFollower) stop() {
	if f.iter != nil {
		f.iter.Stop()
		f.iter = nil
	}
}

// next returns the job's next message. It ends only with ctx: a consumer
// that fails or stalls is replaced, and one that cannot be created yet (a
// stream without a leader) is tried again after an idle spell.
func (f *resultsFollower) next(ctx context.Context) (jetstream.Msg, error) {
	for {
		if f.iter == nil {
			if err := f.open(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				f.log.Warn("results follower: cannot follow yet", "after_seq", f.last, "err", err)
				bus.Sleep(ctx, f.idle)
				continue
			}
		}
		wait, cancel := context.WithTimeout(ctx, f.idle)
		msg, err := f.iter.Next(jetstream.NextContext(wait))
		cancel()
		if err == nil {
			if meta, merr := msg.Metadata(); merr == nil {
				f.last = meta.Sequence.Stream
			}
			return msg, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			if why := f.stalled(ctx); why != "" {
				f.log.Warn("results follower stalled; following again", "after_seq", f.last, "why", why)
				f.stop()
			}
			continue
		}
		f.log.Warn("results follower failed; following again", "after_seq", f.last, "err", err)
		f.stop()
	}
}

// stalled says why the consumer should be replaced after an idle spell,
// or "" when it is fine and there is just nothing to read.
func (f *resultsFollower) stalled(ctx context.Context) string {
	ictx, cancel := context.WithTimeout(ctx, f.idle)
	defer cancel()
	info, err := f.cons.Info(ictx)
	switch {
	case err != nil:
		return "consumer state: " + err.Error()
	case info.NumPending > 0:
		return fmt.Sprintf("%d messages pending, none delivered", info.NumPending)
	}
	return ""
}
