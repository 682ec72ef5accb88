package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// TestPoolRollingRestart stops the ingest process holding a video three
// times while the video waits on backpressure (a rolling restart done
// thrice), then kills one without a word (its connection dropped, as by
// SIGKILL). Each stop hands the task back once and takes no other; the
// fifth process finishes the video with every frame published once.
func TestPoolRollingRestart(t *testing.T) {
	o := bus.DefaultStreamOptions()
	// A killed process's task comes back after the ack wait: short here.
	o.IngestAckWait = 2 * time.Second
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	connect := func(name string) (*nats.Conn, jetstream.JetStream) {
		nc, err := bus.ConnectEmbedded(srv, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	_, js := connect("test")
	ctx := context.Background()
	if err := bus.Setup(ctx, js, o); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bus.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "job1", []byte(`{"state":"RUNNING"}`)); err != nil {
		t.Fatal(err)
	}
	const frames = 200
	clip := testClip(t, "long.mp4", frames/10, 10)
	putTask(t, js, bus.Task{Job: "job1", Video: "long", Source: clip, Size: 64})
	tasks, err := js.Consumer(ctx, bus.VideosStream, bus.IngestConsumer)
	if err != nil {
		t.Fatal(err)
	}
	// held waits until the n-th delivery of the task is being ingested and
	// blocked on the full frames stream.
	held := func(n int) {
		t.Helper()
		poll.Until(t, 60*time.Second, fmt.Sprintf("delivery %d of the task held on backpressure", n), func() (bool, error) {
			info, err := tasks.Info(ctx)
			if err != nil {
				return false, err
			}
			full := streamMsgs(t, js, bus.FramesStream, bus.FramesSubject+".>") == uint64(o.MaxFramesWaiting)
			return info.Delivered.Consumer == uint64(n) && info.NumAckPending == 1 && full,
				fmt.Errorf("delivered %d, ack pending %d, frames full %v", info.Delivered.Consumer, info.NumAckPending, full)
		})
	}
	startPool := func(n int) (*nats.Conn, context.CancelFunc, chan error) {
		nc, pjs := connect(fmt.Sprintf("ingest-%d", n))
		pool, err := NewPool(ctx, pjs, New(pjs, Options{}), PoolOptions{Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- pool.Run(pctx) }()
		return nc, cancel, done
	}
	for n := 1; n <= 3; n++ {
		_, stop, done := startPool(n)
		held(n)
		stop() // SIGTERM
		if err := <-done; err != nil {
			t.Fatalf("pool %d: %v", n, err)
		}
	}
	nc, stop4, _ := startPool(4)
	defer stop4()
	held(4)
	nc.Close() // SIGKILL: nothing is handed back
	_, stop5, done5 := startPool(5)
	defer func() {
		stop5()
		<-done5
	}()
	held(5)

	// A worker drains the frames: every frame arrives, none twice.
	workers, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	poll.Until(t, 120*time.Second, "every frame of the video", func() (bool, error) {
		batch, err := workers.Fetch(64, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return false, err
		}
		for m := range batch.Messages() {
			_, _, seq, ok := bus.ParseFrameID(m.Subject(), m.Headers().Get(jetstream.MsgIDHeader))
			if !ok {
				t.Fatalf("frame %s without a frame id", m.Subject())
			}
			seen[seq]++
			_ = m.Ack()
		}
		return len(seen) == frames, fmt.Errorf("%d of %d frames", len(seen), frames)
	})
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("frame %d delivered to workers %d times", seq, n)
		}
	}
	poll.Until(t, 60*time.Second, "the task to be acked", poll.True(func() bool {
		return streamMsgs(t, js, bus.VideosStream, bus.VideosSubject+".>") == 0
	}))
	results, err := js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := results.GetLastMsgForSubject(ctx, bus.EventSubject("job1", "long"))
	if err != nil {
		t.Fatal(err)
	}
	var end bus.Event
	if err := bus.DecodeEvent(m.Data, &end); err != nil {
		t.Fatal(err)
	}
	if end.Type != bus.VideoEnded || end.Frames != frames || end.Error != "" {
		t.Fatalf("end event %+v, want %d frames and no error", end, frames)
	}
}
