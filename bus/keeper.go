package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// IsMissing reports whether err says that a stream, consumer or KV bucket
// is not there (or that no stream took a publish): after a nats-server
// restart the in-memory workers bucket is gone, and a store lost or reset
// loses the rest. Setup puts them back.
func IsMissing(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders)
}

// Keeper keeps the streams, consumers and buckets that Setup creates in
// place for the process that owns them (the coordinator): whatever is found
// missing, at a use (Do), at a reconnect (Kick) or at a periodic check
// (Run), is created again. Setup being idempotent, running it when nothing
// was missing costs a few API calls and changes nothing.
type Keeper struct {
	js   jetstream.JetStream
	o    StreamOptions
	log  *slog.Logger
	kick chan struct{}

	mu sync.Mutex // one Setup at a time
}

// NewKeeper returns a Keeper of o's streams on js.
func NewKeeper(js jetstream.JetStream, o StreamOptions, log *slog.Logger) *Keeper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{js: js, o: o, log: log, kick: make(chan struct{}, 1)}
}

// Setup runs Setup.
func (k *Keeper) Setup(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return Setup(ctx, k.js, k.o)
}

// Do runs fn; if it fails because something Setup creates is missing, Do
// creates it again and runs fn once more.
func (k *Keeper) Do(ctx context.Context, fn func() error) error {
	err := fn()
	if !IsMissing(err) {
		return err
	}
	k.log.Warn("a stream or bucket is missing; creating it again", "err", err)
	if serr := k.Setup(ctx); serr != nil {
		return errors.Join(err, serr)
	}
	return fn()
}

// Kick asks Run for a Setup now: call it when the connection comes back,
// since the server may have restarted without its in-memory buckets.
func (k *Keeper) Kick() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// KeeperCheckEvery is how often Run looks for missing streams and buckets
// besides Kick: a cluster node restarting elsewhere drops no connection of
// ours, yet takes its in-memory replicas with it.
const KeeperCheckEvery = 30 * time.Second

// Run re-runs Setup at every Kick and every KeeperCheckEvery until ctx
// ends.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(KeeperCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.kick:
		case <-t.C:
		}
		if err := k.Setup(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("re-create streams and buckets", "err", err)
		}
	}
}
