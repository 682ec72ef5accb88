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

// Consumer settings of the results follower.
const (
	// followHeartbeat is how often the server says an idle pull is alive;
	// two missed in a row replace the consumer.
	followHeartbeat = 5 * time.Second
	// followInactive is how long the server keeps a follower's consumer
	// that nobody pulls from: a replaced one, one whose creation timed out
	// (a reply lost, or a consumer placed on a node that is dead), and the
	// last one once its job is done.
	followInactive = 2 * time.Minute
	// minFollowRequest bounds a consumer's creation and its state request
	// from below, whatever the idle spell.
	minFollowRequest = 2 * time.Second
)

// resultsFollower reads one job's results and events in stream order
// through an ephemeral consumer of its own, and replaces that consumer
// from the message after the last one returned, so nothing is applied
// twice and nothing is skipped, when it:
//   - fails (deleted, its pulls unanswered past two heartbeats, a gap in its
//     delivery sequence after a reconnect);
//   - stalls: after an idle spell its state cannot be read, or it has
//     messages pending yet delivers none;
//   - cannot be created within a bounded wait.
//
// It does not use the client library's ordered consumer: that re-creates
// its consumer inside Next, retrying forever under the same name and deaf
// to Next's deadline. An R1 consumer placed on a node that was SIGKILLed
// (its peers count it online for minutes) then blocks the job for good.
// Every try here asks for a fresh consumer, which the cluster places anew.
type resultsFollower struct {
	js   jetstream.JetStream
	job  string
	idle time.Duration
	log  *slog.Logger

	cons      jetstream.Consumer
	iter      jetstream.MessagesContext
	delivered uint64 // consumer sequence of the last message from cons
	last      uint64 // stream sequence of the last message returned
}

// newResultsFollower follows job's results from the stream's start; its
// first consumer is created by the first next, which retries until it is.
func newResultsFollower(js jetstream.JetStream, job string, idle time.Duration, log *slog.Logger) *resultsFollower {
	if idle <= 0 {
		idle = DefaultFollowIdle
	}
	return &resultsFollower{js: js, job: job, idle: idle, log: log}
}

// requestWait bounds one request about the follower's consumer: a request
// that a dead node should answer is never answered.
func (f *resultsFollower) requestWait() time.Duration { return max(f.idle, minFollowRequest) }

// open follows from the message after f.last (from the stream's start at
// first) through a new consumer.
func (f *resultsFollower) open(ctx context.Context) error {
	cfg := jetstream.ConsumerConfig{
		Description: "results follower of job " + f.job,
		FilterSubjects: []string{
			bus.JobFilter(bus.ResultsSubject, f.job),
			bus.JobFilter(bus.EventsSubject, f.job),
		},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: followInactive,
		Replicas:          1,
		MemoryStorage:     true,
	}
	if f.last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.last+1
	}
	cctx, cancel := context.WithTimeout(ctx, f.requestWait())
	defer cancel()
	cons, err := f.js.CreateConsumer(cctx, bus.ResultsStream, cfg)
	if err != nil {
		return fmt.Errorf("follow results of job %s: %w", f.job, err)
	}
	iter, err := cons.Messages(jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		return fmt.Errorf("follow results of job %s: %w", f.job, err)
	}
	f.cons, f.iter, f.delivered = cons, iter, 0
	return nil
}

// stop ends the current consumer's iterator; next opens another if called
// again. The server deletes the consumer once it is inactive.
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
			meta, merr := msg.Metadata()
			switch {
			case merr != nil:
				f.log.Warn("results follower: message without metadata; following again", "after_seq", f.last, "err", merr)
				f.stop()
			case meta.Sequence.Consumer != f.delivered+1:
				// Messages were lost on the way (a pull answered while
				// the connection was down): read them again.
				f.log.Warn("results follower: gap in deliveries; following again", "after_seq", f.last,
					"delivered", meta.Sequence.Consumer, "want", f.delivered+1)
				f.stop()
			case meta.Sequence.Stream <= f.last:
				f.delivered = meta.Sequence.Consumer // already returned
			default:
				f.delivered, f.last = meta.Sequence.Consumer, meta.Sequence.Stream
				return msg, nil
			}
			continue
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
	ictx, cancel := context.WithTimeout(ctx, f.requestWait())
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
