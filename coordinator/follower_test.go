package coordinator

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// followThrough runs a one-video job whose results stream suffers fault
// once half its frames are applied, and checks it finishes with every frame
// once.
func followThrough(t *testing.T, js jetstream.JetStream, fault func(ctx context.Context, results jetstream.Stream)) {
	t.Helper()
	const job, n = "job1", 40
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	result := func(seq int) {
		publish(t, js, bus.ResultSubject(job, "v"), bus.Result{Job: job, Video: "v", Seq: seq, Index: seq, Worker: "w1", Detections: []bus.Detection{}})
	}
	publish(t, js, bus.EventSubject(job, "v"), bus.Event{Type: bus.VideoStarted, Job: job, Video: "v", FramesEstimate: n})
	for seq := range n / 2 {
		result(seq)
	}
	var done atomic.Int64
	c := New(js, Options{Out: folder(t, t.TempDir()), FollowIdle: 300 * time.Millisecond,
		OnProgress: func(p Progress) { done.Store(int64(p.Done)) }})
	type outcome struct {
		sum *Summary
		err error
	}
	res := make(chan outcome, 1)
	go func() {
		sum, err := c.RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{"v", "v.mp4"}}})
		res <- outcome{sum, err}
	}()
	poll.Until(t, 30*time.Second, "the first half applied", poll.True(func() bool { return done.Load() == n/2 }))
	st, err := js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	fault(ctx, st)
	for seq := n / 2; seq < n; seq++ {
		result(seq)
	}
	publish(t, js, bus.EventSubject(job, "v"), bus.Event{Type: bus.VideoEnded, Job: job, Video: "v", Frames: n, Decoded: n})
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
		v := r.sum.Videos[0]
		if v.Status != Succeeded || v.Stats.Frames != n || v.Stats.DuplicatesDropped != 0 {
			t.Fatalf("video %+v", v)
		}
	case <-ctx.Done():
		t.Fatalf("the job did not finish after the fault (%d of %d frames applied)", done.Load(), n)
	}
}

// eachConsumer applies fn to every consumer of the results stream: the
// follower's, the only one.
func eachConsumer(t *testing.T, ctx context.Context, st jetstream.Stream, fn func(name string) error) {
	t.Helper()
	names := st.ConsumerNames(ctx)
	var got []string
	for name := range names.Name() {
		got = append(got, name)
	}
	if len(got) == 0 {
		t.Fatal("no consumer on the results stream")
	}
	for _, name := range got {
		if err := fn(name); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFollowerSurvivesLostConsumer deletes the results consumer the
// coordinator reads a job through, mid-job, as a stream leader dying with
// it does.
func TestFollowerSurvivesLostConsumer(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	followThrough(t, js, func(ctx context.Context, st jetstream.Stream) {
		eachConsumer(t, ctx, st, func(name string) error { return st.DeleteConsumer(ctx, name) })
	})
}

// TestFollowerReplacesStalledConsumer leaves the follower's consumer in
// place, answering heartbeats, but delivering nothing (paused): what a
// follower looks like to its client library when its consumer went with a
// killed stream leader and was never re-created. The watch notices the
// pending messages and follows again from the last one applied.
func TestFollowerReplacesStalledConsumer(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	followThrough(t, js, func(ctx context.Context, st jetstream.Stream) {
		eachConsumer(t, ctx, st, func(name string) error {
			_, err := js.PauseConsumer(ctx, bus.ResultsStream, name, time.Now().Add(time.Hour))
			return err
		})
	})
}

// TestFollowerSurvivesServerRestart restarts nats-server on the same store
// mid-job: the results stream is kept, the follower's consumer (ephemeral,
// in memory) is not; the job still finishes with every frame once.
func TestFollowerSurvivesServerRestart(t *testing.T) {
	opts := server.Options{ServerName: "follow-test", Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	start := func() *server.Server {
		o := opts
		srv, err := server.NewServer(&o)
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready")
		}
		return srv
	}
	srv := start()
	opts.Port = srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Setup(context.Background(), js, bus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	followThrough(t, js, func(context.Context, jetstream.Stream) {
		srv.Shutdown()
		srv.WaitForShutdown()
		srv = start()
		poll.Until(t, 30*time.Second, "the client reconnected", poll.True(nc.IsConnected))
	})
}
