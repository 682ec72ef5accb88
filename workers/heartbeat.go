package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// Heartbeat is a worker's entry in bus.WorkersBucket, keyed by its name. The
// worker puts it every third of the bucket's TTL and deletes it when it
// stops cleanly; the TTL removes the entry of a worker that died.
type Heartbeat struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	PID         int    `json:"pid"`
	Device      string `json:"device"`
	Model       string `json:"model"` // path or URI
	ModelSHA256 string `json:"model_sha256"`
	Batch       int    `json:"batch"`
	Threads     int    `json:"threads"`
	// Started is when the worker began pulling frames, Beat when this entry
	// was written.
	Started time.Time `json:"started"`
	Beat    time.Time `json:"beat"`
	// Frames counts the results published, Failed those of them that are
	// error results (poison frames).
	Frames int64 `json:"frames"`
	Failed int64 `json:"failed"`
	// FPS is the rate of published results since the previous beat,
	// FPSTotal since Started.
	FPS      float64 `json:"fps"`
	FPSTotal float64 `json:"fps_total"`
	// InFlight is the number of frames in the batch in hand.
	InFlight int `json:"in_flight"`
}

// Identity is what a heartbeat tells about the process and its model; the
// worker adds the counters. Host and PID default to this process's.
type Identity struct {
	Host        string
	PID         int
	Device      string
	Model       string
	ModelSHA256 string
	Threads     int
}

// maxHeartbeatBytes bounds a heartbeat entry read back from the bucket.
const maxHeartbeatBytes = 16 << 10

// DecodeHeartbeat parses a heartbeat entry stored under key and checks that
// it names the worker the key does.
func DecodeHeartbeat(key string, b []byte, h *Heartbeat) error {
	if len(b) > maxHeartbeatBytes {
		return fmt.Errorf("%w: heartbeat %q is %d bytes", bus.ErrBadMessage, key, len(b))
	}
	if err := json.Unmarshal(b, h); err != nil {
		return fmt.Errorf("%w: heartbeat %q: %v", bus.ErrBadMessage, key, err)
	}
	if err := bus.ValidName("worker", h.Name); err != nil {
		return fmt.Errorf("%w: heartbeat %q: %v", bus.ErrBadMessage, key, err)
	}
	if h.Name != key {
		return fmt.Errorf("%w: heartbeat under %q names worker %q", bus.ErrBadMessage, key, h.Name)
	}
	return nil
}

// ListHeartbeats returns the live workers' heartbeats sorted by name. An
// entry that does not decode was not written by a worker and is left out.
// It reads the whole bucket with a watcher (an ordered consumer), which
// needs more permissions than a worker has: it is for the coordinator and
// `vidpipe workers`.
func ListHeartbeats(ctx context.Context, js jetstream.JetStream) ([]Heartbeat, error) {
	kv, err := js.KeyValue(ctx, bus.WorkersBucket)
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", bus.WorkersBucket, err)
	}
	watch, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list kv %s: %w", bus.WorkersBucket, err)
	}
	defer func() { _ = watch.Stop() }()
	var out []Heartbeat
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list kv %s: %w", bus.WorkersBucket, ctx.Err())
		case e, ok := <-watch.Updates():
			if !ok {
				return nil, fmt.Errorf("list kv %s: watcher stopped", bus.WorkersBucket)
			}
			if e == nil { // every current entry has been delivered
				slices.SortFunc(out, func(a, b Heartbeat) int { return strings.Compare(a.Name, b.Name) })
				return out, nil
			}
			var h Heartbeat
			if DecodeHeartbeat(e.Key(), e.Value(), &h) == nil {
				out = append(out, h)
			}
		}
	}
}

// Heartbeat intervals: a third of the bucket's TTL, within these bounds.
const (
	defaultBeatEvery = 5 * time.Second
	minBeatEvery     = 100 * time.Millisecond
	// deleteTimeout bounds the deregistration at stop.
	deleteTimeout = 5 * time.Second
)

// beater keeps a worker's heartbeat entry fresh. It uses only what a
// worker's NATS user may do: read the bucket's stream info and publish to
// its subjects; it never creates the bucket.
type beater struct {
	w    *Worker
	log  *slog.Logger
	hb   Heartbeat
	kv   jetstream.KeyValue
	stop context.CancelFunc
	done sync.WaitGroup

	lastFrames int64
	lastBeat   time.Time
	failing    bool
}

// startBeat puts the first heartbeat and keeps beating until stopBeat. It
// runs on its own context so that beats go on while the worker drains.
func (w *Worker) startBeat(ctx context.Context, log *slog.Logger) *beater {
	id := w.opts.Heartbeat
	b := &beater{w: w, log: log, hb: Heartbeat{
		Name: w.opts.Name, Host: id.Host, PID: id.PID, Device: id.Device,
		Model: id.Model, ModelSHA256: id.ModelSHA256, Batch: w.opts.Batch, Threads: id.Threads,
		Started: time.Now().UTC(),
	}}
	if b.hb.Host == "" {
		b.hb.Host, _ = os.Hostname()
	}
	if b.hb.PID == 0 {
		b.hb.PID = os.Getpid()
	}
	b.lastBeat = b.hb.Started
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = stop
	b.done.Add(1)
	go b.run(bctx)
	return b
}

func (b *beater) run(ctx context.Context) {
	defer b.done.Done()
	every := b.beat(ctx)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(b.beat(ctx))
		}
	}
}

// beat binds the bucket if need be and puts the entry; it returns when to
// beat next.
func (b *beater) beat(ctx context.Context) time.Duration {
	every, err := b.put(ctx)
	switch {
	case err != nil && ctx.Err() == nil && !b.failing:
		b.log.Warn("heartbeat", "bucket", bus.WorkersBucket, "err", err)
		b.failing = true
	case err == nil && b.failing:
		b.log.Info("heartbeat restored", "bucket", bus.WorkersBucket)
		b.failing = false
	}
	return every
}

func (b *beater) put(ctx context.Context) (time.Duration, error) {
	every := defaultBeatEvery
	if b.kv == nil {
		kv, err := b.w.js.KeyValue(ctx, bus.WorkersBucket)
		if err != nil {
			return every, fmt.Errorf("open kv %s: %w", bus.WorkersBucket, err)
		}
		b.kv = kv
	}
	st, err := b.kv.Status(ctx)
	if err != nil {
		return every, fmt.Errorf("read kv %s status: %w", bus.WorkersBucket, err)
	}
	if ttl := st.TTL(); ttl > 0 {
		every = max(ttl/3, minBeatEvery)
	}
	now := time.Now().UTC()
	frames := b.w.published.Load()
	b.hb.Beat = now
	b.hb.Frames, b.hb.Failed = frames, b.w.failed.Load()
	b.hb.InFlight = int(b.w.inFlight.Load())
	b.hb.FPS = rate(frames-b.lastFrames, now.Sub(b.lastBeat))
	b.hb.FPSTotal = rate(frames, now.Sub(b.hb.Started))
	v, err := json.Marshal(&b.hb)
	if err != nil {
		return every, fmt.Errorf("encode heartbeat %s: %w", b.hb.Name, err)
	}
	if _, err := b.kv.Put(ctx, b.hb.Name, v); err != nil {
		return every, fmt.Errorf("put heartbeat %s: %w", b.hb.Name, err)
	}
	b.lastFrames, b.lastBeat = frames, now
	return every, nil
}

// stopBeat ends the beats and deletes the entry: the worker has drained and
// is gone. A failed delete is logged; the TTL removes the entry anyway.
func (b *beater) stopBeat(ctx context.Context) {
	b.stop()
	b.done.Wait()
	if b.kv == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	if err := b.kv.Delete(dctx, b.hb.Name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		b.log.Warn("delete heartbeat", "bucket", bus.WorkersBucket, "err", err)
	}
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
