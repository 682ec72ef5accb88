// Package bustest starts a real embedded JetStream server for tests, with
// vidpipe's streams set up.
package bustest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// Start runs an embedded server for the test's lifetime and returns a
// connection and a JetStream context with the streams created.
func Start(t testing.TB, o bus.StreamOptions) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := bus.ConnectEmbedded(srv, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Setup(context.Background(), js, o); err != nil {
		t.Fatal(err)
	}
	return nc, js
}
