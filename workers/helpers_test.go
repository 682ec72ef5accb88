package workers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// publishFrame publishes f as the workers receive it from ingest, with the
// given headers.
func publishFrame(t *testing.T, ctx context.Context, js jetstream.JetStream, f *bus.Frame, hdr map[string]string) {
	t.Helper()
	msg := &nats.Msg{Subject: bus.FrameSubject(f.Job, f.Video), Data: bus.AppendFrame(nil, f), Header: nats.Header{}}
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.MsgID(f.Job, f.Video, f.Seq))); err != nil {
		t.Fatal(err)
	}
}

// collectResults reads results of job j, video v until n distinct frames
// have one, failing on a second result for a frame.
func collectResults(t *testing.T, ctx context.Context, js jetstream.JetStream, n int) map[int]bus.Result {
	t.Helper()
	cons, err := js.OrderedConsumer(ctx, bus.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.ResultSubject("j", "v")}})
	if err != nil {
		t.Fatal(err)
	}
	results := map[int]bus.Result{}
	for len(results) < n {
		msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
		if err != nil {
			t.Fatalf("waiting for results (%d of %d so far): %v", len(results), n, err)
		}
		var r bus.Result
		if err := bus.DecodeResult(msg.Data(), &r); err != nil {
			t.Fatal(err)
		}
		if _, dup := results[r.Seq]; dup {
			t.Fatalf("second result for seq %d", r.Seq)
		}
		results[r.Seq] = r
	}
	return results
}

// runWorker runs w until the returned stop is called; stop waits for Run
// to return (the drain) and fails the test on its error.
func runWorker(t *testing.T, ctx context.Context, w *Worker) (stop func()) {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("worker still running 60 s after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// eventually waits generously for cond; what names what it waits for.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

// startServer runs an embedded JetStream server with two users in one
// account: admin, unrestricted, and worker, with exactly the permissions
// infra/nats/nats.conf gives the worker role. It returns the client URL.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`
listen: "127.0.0.1:-1"
jetstream { store_dir: %q }
accounts {
  VIDPIPE {
    jetstream: enabled
    users: [
      { user: admin, password: admin }
      {
        user: worker, password: worker
        permissions: {
          publish: { allow: [
            "$JS.API.CONSUMER.MSG.NEXT.VIDPIPE_FRAMES.workers",
            "$JS.API.CONSUMER.INFO.VIDPIPE_FRAMES.workers",
            "$JS.ACK.VIDPIPE_FRAMES.workers.>",
            "vidpipe.results.>",
            "$KV.VIDPIPE_WORKERS.>",
            "$JS.API.STREAM.INFO.KV_VIDPIPE_WORKERS"
          ] }
          subscribe: { allow: ["_INBOX_worker.>"] }
        }
      }
    ]
  }
}
`, filepath.Join(dir, "js"))
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready after 10 s")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// conn is a test client connection and the asynchronous errors the server
// sent it, permission violations among them.
type conn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	errs []error
}

// asyncErrors returns the asynchronous errors so far.
func (c *conn) asyncErrors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs)
}

// dial connects as user (whose password is its name); the worker user gets
// the worker role's inbox prefix, the only inbox it may read.
func dial(t *testing.T, url, user string) *conn {
	t.Helper()
	c := &conn{}
	inbox, err := bus.InboxOption(bus.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	if user != "worker" {
		inbox = func(*nats.Options) error { return nil }
	}
	nc, err := nats.Connect(url, nats.UserInfo(user, user), nats.Name(t.Name()+"-"+user), inbox,
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.nc, c.js = nc, js
	return c
}
