package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// advisoryJSON is an advisory as nats-server itself encodes it.
func advisoryJSON(t *testing.T, stream, consumer string, seq, deliveries uint64) []byte {
	t.Helper()
	b, err := json.Marshal(server.JSConsumerDeliveryExceededAdvisory{
		TypedEvent: server.TypedEvent{Type: server.JSConsumerDeliveryExceededAdvisoryType, ID: "test", Time: time.Now().UTC()},
		Stream:     stream, Consumer: consumer, StreamSeq: seq, Deliveries: deliveries,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMaxDeliveries(t *testing.T) {
	a, err := decodeMaxDeliveries(advisoryJSON(t, bus.FramesStream, bus.WorkersConsumer, 42, 5))
	if err != nil {
		t.Fatal(err)
	}
	if a.StreamSeq != 42 || a.Deliveries != 5 {
		t.Errorf("decoded %+v", a)
	}
	bad := map[string][]byte{
		"empty":          nil,
		"truncated":      []byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream_seq":`),
		"array":          []byte(`[1,2]`),
		"null":           []byte(`null`),
		"other type":     []byte(`{"type":"io.nats.jetstream.advisory.v1.nak","stream":"VIDPIPE_FRAMES","consumer":"workers","stream_seq":1}`),
		"no type":        []byte(`{"stream":"VIDPIPE_FRAMES","consumer":"workers","stream_seq":1}`),
		"other stream":   advisoryJSON(t, bus.VideosStream, bus.WorkersConsumer, 1, 5),
		"other consumer": advisoryJSON(t, bus.FramesStream, bus.IngestConsumer, 1, 5),
		"zero seq":       advisoryJSON(t, bus.FramesStream, bus.WorkersConsumer, 0, 5),
		"negative seq":   []byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"VIDPIPE_FRAMES","consumer":"workers","stream_seq":-1}`),
		"string seq":     []byte(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"VIDPIPE_FRAMES","consumer":"workers","stream_seq":"7"}`),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if a, err := decodeMaxDeliveries(b); !errors.Is(err, bus.ErrBadMessage) {
				t.Fatalf("decodeMaxDeliveries(%s) = %+v, %v; want ErrBadMessage", b, a, err)
			}
		})
	}
}

// logRecorder keeps log messages, the only trace some advisories leave.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// eventually waits generously for cond: the machine running the tests may
// be busy.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, poll.True(cond))
}

// frameKey signs the test frames' tokens, as an ingest attempt's key does.
var frameKey = bus.NewKey()

// publishFrame publishes a frame as ingest does, its token under frameKey
// included, and returns its stream sequence. Index is 10*seq+1, so a result
// shows where its Index came from.
func publishFrame(t *testing.T, js jetstream.JetStream, job, video string, seq int) uint64 {
	t.Helper()
	f := &bus.Frame{
		Job: job, Video: video, Seq: seq, Index: 10*seq + 1, PTS: float64(seq) / 25,
		Width: 4, Height: 4, Size: 2, Gain: 0.5, Codec: bus.Raw, Pixels: make([]byte, 12),
		PublishedUnixNano: time.Now().UnixNano(),
	}
	msg := &nats.Msg{Subject: bus.FrameSubject(job, video), Data: bus.AppendFrame(nil, f), Header: nats.Header{}}
	msg.Header.Set(bus.HeaderFrameToken, bus.FrameToken(frameKey, job, video, seq))
	ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(bus.MsgID(job, video, seq)))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// resultsOf reads every result stored for one video.
func resultsOf(t *testing.T, js jetstream.JetStream, job, video string) []bus.Result {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, bus.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.ResultSubject(job, video)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.Result
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var r bus.Result
			if err := bus.DecodeResult(m.Data(), &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if n == 0 {
			return out
		}
	}
}

func framesLeft(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// dyingWorker pulls frames until ctx ends. It analyses the "fine" video's
// frames; every other frame kills it before the ack, so it leaves them
// unacked exactly as a SIGKILLed worker does. It records how many times
// each such frame was delivered.
func dyingWorker(ctx context.Context, t *testing.T, js jetstream.JetStream, deliveries map[int]uint64, mu *sync.Mutex) {
	cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		t.Error(err)
		return
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			continue
		}
		for m := range batch.Messages() {
			job, video, seq, ok := bus.ParseFrameID(m.Subject(), m.Headers().Get(jetstream.MsgIDHeader))
			if !ok {
				t.Errorf("frame without an id: %s", m.Subject())
				continue
			}
			if video != "fine" {
				md, err := m.Metadata()
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				deliveries[seq] = max(deliveries[seq], md.NumDelivered)
				mu.Unlock()
				continue
			}
			b, _ := json.Marshal(bus.Result{Job: job, Video: video, Seq: seq, Index: 10*seq + 1, Worker: "w", Detections: []bus.Detection{}, Token: m.Headers().Get(bus.HeaderFrameToken)})
			r := &nats.Msg{Subject: bus.ResultSubject(job, video), Data: b}
			if _, err := js.PublishMsg(ctx, r, jetstream.WithMsgID(bus.MsgID(job, video, seq))); err != nil {
				t.Error(err)
				continue
			}
			_ = m.Ack()
		}
	}
}

// TestMaxDeliveriesFailFramesOfDeadWorkers runs a real JetStream with a
// short AckWait and MaxDeliver 2, a worker that dies on every frame of one
// video, and a real RunJob: the job must complete with those frames failed
// rather than hang, and the frames stream must end empty.
func TestMaxDeliveriesFailFramesOfDeadWorkers(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.AckWait = 300 * time.Millisecond
	o.MaxDeliver = 2
	nc, js := bustest.Start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	logs := &logRecorder{}
	w, err := NewMaxDeliveriesWatcher(ctx, js, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	watched := make(chan error, 1)
	go func() { watched <- w.Run(watchCtx) }()

	// Ingest: three frames of "doomed", two of "fine", with start and end.
	const job = "job1"
	frames := map[string]int{"doomed": 3, "fine": 2}
	doomedSeqs := make([]uint64, 0, frames["doomed"])
	for _, v := range []string{"doomed", "fine"} {
		// Keyed: RunJob then takes only results with their frame's token,
		// the watcher's error results included.
		publish(t, js, bus.EventSubject(job, v), bus.Event{Type: bus.VideoStarted, Job: job, Video: v, FramesEstimate: int64(frames[v]), Key: frameKey})
		for seq := range frames[v] {
			s := publishFrame(t, js, job, v, seq)
			if v == "doomed" {
				doomedSeqs = append(doomedSeqs, s)
			}
		}
		publish(t, js, bus.EventSubject(job, v), bus.Event{Type: bus.VideoEnded, Job: job, Video: v, Frames: frames[v], Decoded: frames[v]})
	}

	var (
		mu         sync.Mutex
		deliveries = map[int]uint64{}
		workerDone = make(chan struct{})
	)
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	go func() { defer close(workerDone); dyingWorker(workerCtx, t, js, deliveries, &mu) }()

	sum, err := New(js, Options{Out: folder(t, t.TempDir())}).RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{"doomed", "doomed.mp4"}, {"fine", "fine.mp4"}}})
	if err != nil {
		t.Fatalf("RunJob (a hang ends in the context deadline): %v", err)
	}
	doomed, fine := sum.Videos[0], sum.Videos[1]
	if doomed.Status != Failed || doomed.Stats.FailedFrames != 3 || doomed.Stats.Frames != 0 ||
		!strings.Contains(doomed.Error, "without an ack (workers died or timed out)") {
		t.Errorf("doomed: %+v", doomed)
	}
	if fine.Status != Succeeded || fine.Stats.Frames != 2 || fine.Stats.FailedFrames != 0 {
		t.Errorf("fine: %+v", fine)
	}

	eventually(t, "frames stream still holds frames", func() bool { return framesLeft(t, js) == 0 })
	stopWorker()
	<-workerDone

	got := resultsOf(t, js, job, "doomed")
	if len(got) != 3 {
		t.Fatalf("%d results for doomed, want 3: %+v", len(got), got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range got {
		if r.Job != job || r.Video != "doomed" || r.Seq < 0 || r.Seq > 2 || r.Index != 10*r.Seq+1 {
			t.Errorf("result %+v", r)
		}
		want := fmt.Sprintf("frame delivered %d times without an ack (workers died or timed out)", deliveries[r.Seq])
		if r.Error != want || deliveries[r.Seq] != uint64(o.MaxDeliver) {
			t.Errorf("result %d: error %q, want %q (delivered %d times, MaxDeliver %d)", r.Seq, r.Error, want, deliveries[r.Seq], o.MaxDeliver)
		}
	}
	seen := map[int]bool{}
	for _, r := range got {
		seen[r.Seq] = true
	}
	if len(seen) != 3 {
		t.Errorf("results cover seqs %v, want 0, 1, 2", seen)
	}

	// A repeated advisory finds its frame gone; a malformed one is ignored.
	// Neither adds a result, and the watcher keeps running.
	if err := nc.Publish(bus.MaxDeliveriesAdvisory, advisoryJSON(t, bus.FramesStream, bus.WorkersConsumer, doomedSeqs[1], 2)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(bus.MaxDeliveriesAdvisory, []byte(`{"stream_seq":"x"`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "repeated advisory not handled", func() bool { return logs.count("undeliverable frame already gone") >= 1 })
	eventually(t, "malformed advisory not reported", func() bool { return logs.count("ignoring advisory") >= 1 })
	if n := len(resultsOf(t, js, job, "doomed")); n != 3 {
		t.Errorf("%d results for doomed after a repeated advisory, want 3", n)
	}

	stopWatching()
	select {
	case err := <-watched:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestMaxDeliveriesRecordIdempotent drives record directly on a real
// JetStream, with frames nobody fetches.
func TestMaxDeliveriesRecordIdempotent(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := NewMaxDeliveriesWatcher(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	record := func(seq uint64) {
		t.Helper()
		if err := w.record(ctx, log, maxDeliveries{Type: maxDeliveriesType, Stream: bus.FramesStream, Consumer: bus.WorkersConsumer, StreamSeq: seq, Deliveries: 5}); err != nil {
			t.Fatalf("record(%d): %v", seq, err)
		}
	}

	t.Run("twice", func(t *testing.T) {
		seq := publishFrame(t, js, "j", "twice", 0)
		record(seq)
		record(seq)
		got := resultsOf(t, js, "j", "twice")
		if len(got) != 1 || got[0].Error != "frame delivered 5 times without an ack (workers died or timed out)" || got[0].Index != 1 {
			t.Errorf("results %+v, want one error result", got)
		}
	})
	t.Run("worker published before dying", func(t *testing.T) {
		b, _ := json.Marshal(bus.Result{Job: "j", Video: "late", Seq: 3, Index: 31, Worker: "w"})
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: bus.ResultSubject("j", "late"), Data: b}, jetstream.WithMsgID(bus.MsgID("j", "late", 3))); err != nil {
			t.Fatal(err)
		}
		record(publishFrame(t, js, "j", "late", 3))
		got := resultsOf(t, js, "j", "late")
		if len(got) != 1 || got[0].Error != "" || got[0].Worker != "w" {
			t.Errorf("results %+v, want only the worker's", got)
		}
	})
	t.Run("not a vidpipe frame", func(t *testing.T) {
		ack, err := js.Publish(ctx, bus.FramesSubject+".j.stray", []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		record(ack.Sequence)
		if got := resultsOf(t, js, "j", "stray"); len(got) != 0 {
			t.Errorf("results %+v for a message without an id", got)
		}
	})
	t.Run("never stored", func(t *testing.T) {
		record(1 << 40)
	})
	if n := framesLeft(t, js); n != 0 {
		t.Errorf("%d frames left in the stream", n)
	}
}

// TestMaxDeliveriesKeptWhileNoCoordinator exhausts a frame's deliveries
// while no watcher runs (the coordinator is down): the advisory waits in
// its stream, and a watcher started afterwards still records the frame.
func TestMaxDeliveriesKeptWhileNoCoordinator(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.AckWait = 200 * time.Millisecond
	o.MaxDeliver = 2
	_, js := bustest.Start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publishFrame(t, js, "job1", "v", 0)
	cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	advisories, err := js.Stream(ctx, bus.AdvisoriesStream)
	if err != nil {
		t.Fatal(err)
	}
	// A worker that dies holding the frame, on every delivery.
	for {
		info, err := advisories.Info(ctx)
		if err != nil {
			t.Fatalf("no advisory was stored: %v", err)
		}
		if info.State.Msgs > 0 {
			break
		}
		if _, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	w, err := NewMaxDeliveriesWatcher(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Run(ctx) }()
	results, err := js.OrderedConsumer(ctx, bus.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.ResultSubject("job1", "v")}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := results.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("no result for the undeliverable frame: %v", err)
	}
	var r bus.Result
	if err := bus.DecodeResult(m.Data(), &r); err != nil || r.Seq != 0 || !strings.Contains(r.Error, "delivered 2 times") {
		t.Fatalf("result %+v, err %v", r, err)
	}
}

// TestMaxDeliveriesFailVideoOfDeadIngest: a video task whose ingest
// processes die before the ack (here: fetched and never acked) reaches
// MaxDeliver; the job must end with that video failed, not wait for an end
// event that never comes, and the task must leave the videos stream.
func TestMaxDeliveriesFailVideoOfDeadIngest(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.IngestAckWait = 300 * time.Millisecond
	o.IngestMaxDeliver = 2
	_, js := bustest.Start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w, err := NewMaxDeliveriesWatcher(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go func() { _ = w.Run(watchCtx) }()

	const job = "job1"
	task := bus.Task{Job: job, Video: "doomed", Source: "doomed.mp4", Size: 640}
	b, err := bus.EncodeTask(&task)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, bus.VideoSubject(job, "doomed"), b); err != nil {
		t.Fatal(err)
	}
	// A frame the dead ingest published before dying: dropped with it.
	publishFrame(t, js, job, "doomed", 0)
	// "fine" was ingested and analysed by others.
	publish(t, js, bus.EventSubject(job, "fine"), bus.Event{Type: bus.VideoStarted, Job: job, Video: "fine", FramesEstimate: 1})
	publish(t, js, bus.ResultSubject(job, "fine"), bus.Result{Job: job, Video: "fine", Seq: 0, Index: 0, Worker: "w", Detections: []bus.Detection{}})
	publish(t, js, bus.EventSubject(job, "fine"), bus.Event{Type: bus.VideoEnded, Job: job, Video: "fine", Frames: 1, Decoded: 1})

	ingestCtx, stopIngest := context.WithCancel(ctx)
	defer stopIngest()
	go func() {
		cons, err := js.Consumer(ingestCtx, bus.VideosStream, bus.IngestConsumer)
		if err != nil {
			t.Error(err)
			return
		}
		for ingestCtx.Err() == nil {
			// Fetched, never acked: what a SIGKILLed ingest process leaves.
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(100*time.Millisecond))
			if err == nil {
				for range batch.Messages() {
				}
			}
		}
	}()

	sum, err := New(js, Options{Out: folder(t, t.TempDir())}).RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{"doomed", "doomed.mp4"}, {"fine", "fine.mp4"}}})
	if err != nil {
		t.Fatalf("RunJob (a hang ends in the context deadline): %v", err)
	}
	doomed, fine := sum.Videos[0], sum.Videos[1]
	if doomed.Status != Failed || doomed.Stats.Frames != 0 ||
		!strings.Contains(doomed.Error, "video task delivered 2 times without an ack") || strings.Count(doomed.Error, "doomed.mp4") != 1 {
		t.Errorf("doomed: %+v", doomed)
	}
	if fine.Status != Succeeded || fine.Stats.Frames != 1 {
		t.Errorf("fine: %+v", fine)
	}
	if sum.Status != Failed {
		t.Errorf("job status %s, want %s", sum.Status, Failed)
	}
	stopIngest()
	eventually(t, "videos stream still holds the task", func() bool { return streamMsgs(t, js, bus.VideosStream) == 0 })
	eventually(t, "frames stream still holds the dead video's frame", func() bool { return framesLeft(t, js) == 0 })
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
