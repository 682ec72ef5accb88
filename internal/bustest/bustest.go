// Package bustest starts real JetStream servers for tests: one embedded
// server with vidpipe's streams set up, or an in-process 3-node cluster
// whose nodes can be killed as SIGKILL kills a process.
package bustest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
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

// Cluster is a 3-node JetStream cluster in this process. Its nodes route
// to one another through loopback relays, one per ordered pair, so Kill can
// take a node away as SIGKILL does.
type Cluster struct {
	// Nodes are the servers by name (n0, n1, n2), so a test can find the
	// one that leads a stream.
	Nodes map[string]*server.Server

	t      testing.TB
	relays map[string][]*relay // every relay carrying a route of the node
}

// StartCluster runs a 3-node JetStream cluster in this process, routed on
// loopback, for the test's lifetime.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	const n = 3
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	c := &Cluster{Nodes: map[string]*server.Server{}, t: t, relays: map[string][]*relay{}}
	name := func(i int) string { return fmt.Sprintf("n%d", i) }
	routes := make([][]*url.URL, n)
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			r := startRelay(t, ports[j])
			c.relays[name(i)] = append(c.relays[name(i)], r)
			c.relays[name(j)] = append(c.relays[name(j)], r)
			u, _ := url.Parse("nats://" + r.addr())
			routes[i] = append(routes[i], u)
		}
	}
	for i, p := range ports {
		srv, err := server.NewServer(&server.Options{
			ServerName: name(i), Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			// Gossiped routes would bypass the relays: advertise a port
			// nothing listens on (tcpmux), so only the relayed ones exist.
			Cluster: server.ClusterOpts{Name: "vidpipe-test", Host: "127.0.0.1", Port: p, Advertise: "127.0.0.1:1"},
			Routes:  routes[i],
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %s not ready", name(i))
		}
		c.Nodes[name(i)] = srv
	}
	return c
}

// URLs are the nodes' client URLs.
func (c *Cluster) URLs() []string {
	var urls []string
	for _, srv := range c.Nodes {
		urls = append(urls, srv.ClientURL())
	}
	return urls
}

// Kill stops node name as SIGKILL would: its routes are cut before it shuts
// down, so its peers never get the shutdown notice a clean Shutdown sends
// and keep counting it online (placing new assets on it) until their
// orphan check, minutes later.
func (c *Cluster) Kill(name string) {
	c.t.Helper()
	srv := c.Nodes[name]
	if srv == nil {
		c.t.Fatalf("no node %s", name)
	}
	for _, r := range c.relays[name] {
		r.close()
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// relay forwards every connection it accepts to one loopback port until
// closed; closing it drops its connections too.
type relay struct {
	ln    net.Listener
	to    int
	mu    sync.Mutex
	conns []net.Conn
	done  bool
}

func startRelay(t testing.TB, to int) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, to: to}
	t.Cleanup(r.close)
	go r.serve()
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) serve() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.to))
		if err != nil {
			in.Close()
			continue
		}
		if !r.track(in, out) {
			return
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// track remembers a relayed pair, or closes it if the relay is closed.
func (r *relay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	r.conns = append(r.conns, conns...)
	return true
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func (r *relay) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
}
