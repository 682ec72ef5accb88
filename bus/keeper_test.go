package bus

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/internal/poll"
)

// restartable is a JetStream server on a fixed loopback port that a test
// restarts on the same store, as an operator restarts nats-server.
type restartable struct {
	t    *testing.T
	opts server.Options
	srv  *server.Server
}

func startRestartable(t *testing.T) *restartable {
	r := &restartable{t: t, opts: server.Options{
		ServerName: "keeper-test", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}}
	r.start()
	// The port the first start picked is kept for the restarts.
	r.opts.Port = r.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { r.srv.Shutdown(); r.srv.WaitForShutdown() })
	return r
}

func (r *restartable) start() {
	opts := r.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		r.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		r.t.Fatal("nats-server not ready")
	}
	r.srv = srv
}

func (r *restartable) restart() {
	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	r.start()
}

// TestKeeperRecreatesMissing restarts nats-server on the same store: the
// in-memory workers bucket is gone, and stays gone for a plain caller; the
// Keeper creates it again at the first use that finds it missing, and at a
// reconnect without any use.
func TestKeeperRecreatesMissing(t *testing.T) {
	srv := startRestartable(t)
	reconnected := make(chan struct{}, 8)
	nc, err := nats.Connect(srv.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k := NewKeeper(js, DefaultStreamOptions(), nil)
	if err := k.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	list := func() error {
		kv, err := js.KeyValue(ctx, WorkersBucket)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, "w1", []byte(`{}`))
		return err
	}
	if err := list(); err != nil {
		t.Fatal(err)
	}

	srv.restart()
	<-reconnected
	if err := list(); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("after a restart, without the Keeper: %v, want the bucket missing", err)
	}
	if err := k.Do(ctx, list); err != nil {
		t.Fatalf("through the Keeper: %v", err)
	}
	if _, err := js.Stream(ctx, FramesStream); err != nil {
		t.Fatalf("file-backed stream after the restart: %v", err)
	}

	// Kicked at the reconnect, Run puts the bucket back with no use.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { k.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	srv.restart()
	<-reconnected
	k.Kick()
	poll.Until(t, 30*time.Second, "the workers bucket back after the reconnect", func() (bool, error) {
		_, err := js.KeyValue(ctx, WorkersBucket)
		return err == nil, err
	})
}
