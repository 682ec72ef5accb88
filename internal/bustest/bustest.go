// Package bustest starts real JetStream servers for tests: one embedded
// server with vidpipe's streams set up, or an in-process 3-node cluster.
package bustest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

// StartCluster runs a 3-node JetStream cluster in this process, routed on
// loopback, for the test's lifetime; it returns the nodes by server name
// (n0, n1, n2), so a test can kill the one that leads a stream.
func StartCluster(t testing.TB) map[string]*server.Server {
	t.Helper()
	ports := make([]int, 3)
	var routes []*url.URL
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routes = append(routes, u)
	}
	nodes := map[string]*server.Server{}
	for i, p := range ports {
		name := fmt.Sprintf("n%d", i)
		srv, err := server.NewServer(&server.Options{
			ServerName: name, Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "vidpipe-test", Host: "127.0.0.1", Port: p}, Routes: routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %s not ready", name)
		}
		nodes[name] = srv
	}
	return nodes
}
