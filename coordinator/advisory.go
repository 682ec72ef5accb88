package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// maxDeliveriesType is the schema type of JetStream's max-deliveries
// advisory (nats-server's JSConsumerDeliveryExceededAdvisoryType).
const maxDeliveriesType = "io.nats.jetstream.advisory.v1.max_deliver"

// Retries of one advisory whose handling hit a transient error (a NATS
// timeout, say): giving up early would leave the frame's video waiting.
const (
	advisoryAttempts = 5
	advisoryBackoff  = 500 * time.Millisecond
)

// maxDeliveries is the part of nats-server's
// JSConsumerDeliveryExceededAdvisory that the watcher needs.
type maxDeliveries struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// decodeMaxDeliveries parses and checks an advisory about the workers
// consumer of the frames stream or the ingest consumer of the videos stream.
func decodeMaxDeliveries(b []byte) (maxDeliveries, error) {
	var a maxDeliveries
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("%w: max deliveries advisory: %v", bus.ErrBadMessage, err)
	}
	switch {
	case a.Type != maxDeliveriesType:
		return a, fmt.Errorf("%w: max deliveries advisory: type %q, want %q", bus.ErrBadMessage, a.Type, maxDeliveriesType)
	case !(a.Stream == bus.FramesStream && a.Consumer == bus.WorkersConsumer) && !(a.Stream == bus.VideosStream && a.Consumer == bus.IngestConsumer):
		return a, fmt.Errorf("%w: max deliveries advisory: about %s/%s, want %s/%s or %s/%s", bus.ErrBadMessage, a.Stream, a.Consumer,
			bus.FramesStream, bus.WorkersConsumer, bus.VideosStream, bus.IngestConsumer)
	case a.StreamSeq == 0:
		return a, fmt.Errorf("%w: max deliveries advisory: no stream sequence", bus.ErrBadMessage)
	}
	return a, nil
}

// MaxDeliveriesWatcher turns frames that reached the workers consumer's
// MaxDeliver without an ack (their workers were killed or kept timing out)
// into error results, so their videos finish with the frames counted as
// failed instead of waiting forever, and removes them from the frames
// stream, where they would otherwise hold a work-queue slot forever.
// Video tasks that reached the ingest consumer's MaxDeliver become their
// video's end event with the error, so the job finishes with the video
// failed instead of staying RUNNING.
//
// It reads the advisories from bus.AdvisoriesStream, which keeps them while
// no coordinator runs; handling one twice publishes a duplicate that
// Nats-Msg-Id drops and finds the frame already deleted.
type MaxDeliveriesWatcher struct {
	cons    jetstream.Consumer
	js      jetstream.JetStream
	log     *slog.Logger
	streams map[string]jetstream.Stream // looked up on first use
}

// NewMaxDeliveriesWatcher opens the advisories consumer (bus.Setup creates
// it). Call Run to handle the advisories.
func NewMaxDeliveriesWatcher(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*MaxDeliveriesWatcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cons, err := js.Consumer(ctx, bus.AdvisoriesStream, bus.AdvisoriesConsumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", bus.AdvisoriesConsumer, bus.AdvisoriesStream, err)
	}
	return &MaxDeliveriesWatcher{cons: cons, js: js, log: log.With("advisory", "max_deliveries"), streams: map[string]jetstream.Stream{}}, nil
}

// Run handles advisories one at a time until ctx ends, then returns nil.
// Malformed advisories are logged and dropped; one that could not be
// recorded is handed back for a later try.
func (w *MaxDeliveriesWatcher) Run(ctx context.Context) error {
	w.log.Info("watching for undeliverable frames and video tasks")
	for ctx.Err() == nil {
		// The pull ends with ctx: a watcher that stops does not sit it out.
		pull, cancel := context.WithTimeout(ctx, 2*time.Second)
		batch, err := w.cons.Fetch(16, jetstream.FetchContext(pull))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				break
			}
			w.log.Warn("fetch advisories", "err", err)
			bus.Sleep(ctx, time.Second)
			continue
		}
		for m := range batch.Messages() {
			if w.handle(ctx, m.Data()) {
				_ = m.Ack()
			} else {
				_ = m.NakWithDelay(5 * time.Second)
			}
		}
		cancel()
	}
	return nil
}

// handle records one advisory's frame, retrying transient errors; it
// reports whether the advisory is settled. Once started, an attempt runs to
// its end even if ctx is cancelled meanwhile, so a frame is never left with
// its result published but still stored.
func (w *MaxDeliveriesWatcher) handle(ctx context.Context, data []byte) bool {
	a, err := decodeMaxDeliveries(data)
	if err != nil {
		w.log.Warn("ignoring advisory", "err", err)
		return true
	}
	log := w.log.With("stream_seq", a.StreamSeq, "deliveries", a.Deliveries)
	wait := advisoryBackoff
	for attempt := 1; ; attempt++ {
		record := w.record
		if a.Stream == bus.VideosStream {
			record = w.recordTask
		}
		err := record(context.WithoutCancel(ctx), log, a)
		if err == nil {
			return true
		}
		if attempt == advisoryAttempts || ctx.Err() != nil {
			log.Error("undeliverable frame not recorded yet", "err", err, "attempts", attempt)
			return false
		}
		log.Warn("record undeliverable frame", "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// record publishes the error result of the frame at a.StreamSeq, then
// deletes the frame. Publishing first means a crash in between leaves a
// stuck slot at worst, never a frame without a result.
func (w *MaxDeliveriesWatcher) record(ctx context.Context, log *slog.Logger, a maxDeliveries) error {
	frames, err := w.stream(ctx, bus.FramesStream)
	if err != nil {
		return err
	}
	raw, err := frames.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Acked late by a slow worker, or handled already (a repeated
		// advisory, another coordinator): nothing left to do.
		log.Info("undeliverable frame already gone")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get frame %d from %s: %w", a.StreamSeq, bus.FramesStream, err)
	}
	job, video, seq, ok := bus.ParseFrameID(raw.Subject, raw.Header.Get(jetstream.MsgIDHeader))
	if !ok {
		// Not published by ingest, so no video waits for it; it only
		// holds a slot.
		log.Error("deleting undeliverable message that is not a vidpipe frame", "subject", raw.Subject)
	} else {
		r := &bus.Result{
			Job: job, Video: video, Seq: seq, Worker: "coordinator",
			Token:        raw.Header.Get(bus.HeaderFrameToken),
			Error:        fmt.Sprintf("frame delivered %d times without an ack (workers died or timed out)", a.Deliveries),
			DoneUnixNano: time.Now().UnixNano(),
		}
		var f bus.Frame
		if bus.DecodeFrame(raw.Data, &f) == nil && f.Job == job && f.Video == video && f.Seq == seq {
			r.Index, r.PTS, r.PublishedUnixNano = f.Index, f.PTS, f.PublishedUnixNano
		}
		b, err := bus.EncodeResult(r)
		if err != nil {
			return fmt.Errorf("encode result %s/%s#%d: %w", job, video, seq, err)
		}
		msg := &nats.Msg{Subject: bus.ResultSubject(job, video), Data: b}
		// The workers' Msg-Id: a result a worker published before dying
		// wins, and a repeated advisory adds nothing.
		ack, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.MsgID(job, video, seq)))
		if err != nil {
			return fmt.Errorf("publish result %s/%s#%d: %w", job, video, seq, err)
		}
		if ack.Duplicate {
			log.Info("undeliverable frame already has a result", "job", job, "video", video, "seq", seq)
		} else {
			log.Warn("frame failed: delivered too many times without an ack", "job", job, "video", video, "seq", seq)
		}
	}
	if err := frames.DeleteMsg(ctx, a.StreamSeq); err != nil {
		// The server reports a missing message only in words; ask again.
		if _, gerr := frames.GetMsg(ctx, a.StreamSeq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
		return fmt.Errorf("delete frame %d from %s: %w", a.StreamSeq, bus.FramesStream, err)
	}
	return nil
}

// recordTask publishes the failed end event of the video whose task is at
// a.StreamSeq, drops the video's frames still waiting, then deletes the
// task. The end event carries the ingest processes' Msg-Id: an end they
// published before dying wins.
func (w *MaxDeliveriesWatcher) recordTask(ctx context.Context, log *slog.Logger, a maxDeliveries) error {
	videos, err := w.stream(ctx, bus.VideosStream)
	if err != nil {
		return err
	}
	raw, err := videos.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Info("undeliverable video task already gone")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get task %d from %s: %w", a.StreamSeq, bus.VideosStream, err)
	}
	var t bus.Task
	if err := bus.DecodeTask(raw.Data, &t); err != nil {
		log.Error("deleting undeliverable message that is not a video task", "subject", raw.Subject, "err", err)
	} else {
		e := &bus.Event{
			Type: bus.VideoEnded, Job: t.Job, Video: t.Video, Source: t.Source,
			Error: fmt.Sprintf("video task delivered %d times without an ack (ingest processes died, timed out or kept failing)", a.Deliveries),
		}
		b, err := bus.EncodeEvent(e)
		if err != nil {
			return fmt.Errorf("encode end of %s/%s: %w", t.Job, t.Video, err)
		}
		msg := &nats.Msg{Subject: bus.EventSubject(t.Job, t.Video), Data: b}
		ack, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.EventMsgID(t.Job, t.Video, bus.VideoEnded)))
		if err != nil {
			return fmt.Errorf("publish end of %s/%s: %w", t.Job, t.Video, err)
		}
		if ack.Duplicate {
			log.Info("undeliverable video task already has its end", "job", t.Job, "video", t.Video)
		} else {
			log.Warn("video failed: its task was delivered too many times without an ack", "job", t.Job, "video", t.Video)
		}
		frames, err := w.stream(ctx, bus.FramesStream)
		if err == nil {
			err = frames.Purge(ctx, jetstream.WithPurgeSubject(bus.FrameSubject(t.Job, t.Video)))
		}
		if err != nil {
			return fmt.Errorf("drop frames of %s/%s: %w", t.Job, t.Video, err)
		}
	}
	if err := videos.DeleteMsg(ctx, a.StreamSeq); err != nil {
		if _, gerr := videos.GetMsg(ctx, a.StreamSeq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
		return fmt.Errorf("delete task %d from %s: %w", a.StreamSeq, bus.VideosStream, err)
	}
	return nil
}

func (w *MaxDeliveriesWatcher) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if s := w.streams[name]; s != nil {
		return s, nil
	}
	s, err := w.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", name, err)
	}
	w.streams[name] = s
	return s, nil
}
