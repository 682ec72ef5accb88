package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configure an in-process NATS server.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// Listen opens a loopback TCP port (random) so other processes can
	// connect; without it only in-process connections work.
	Listen bool
	// MaxPayload is the largest message, sized for raw frames.
	MaxPayload int32
}

// StartEmbedded runs a JetStream-enabled nats-server inside this process, as
// `vidpipe run` does by default and tests do. Shut it down with
// srv.Shutdown() and srv.WaitForShutdown().
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "vidpipe-embedded",
		Host:       "127.0.0.1",
		Port:       -1,
		DontListen: !o.Listen,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		MaxPayload: o.MaxPayload,
		NoSigs:     true,
		NoLog:      true,
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded nats: not ready after 10s")
	}
	return srv, nil
}

// ConnectEmbedded opens an in-process client connection to srv.
func ConnectEmbedded(srv *server.Server, name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}
