package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vidpipe/vidpipe/internal/metrics"
)

// natsReady is a process's readiness: its NATS connection is up.
func natsReady(nc *nats.Conn) func() error {
	return func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats %s", nc.Status())
		}
		return nil
	}
}

// serveMetrics serves reg's /metrics and /healthz (answered by ready) on
// addr until stop is called, so a draining process can still say so. It
// listens at once, so a taken port fails before a slow start. A server that
// fails later calls onFail (nil: logs the error).
func serveMetrics(addr string, reg *prometheus.Registry, ready func() error, logger *slog.Logger, onFail func(error)) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.Serve(ctx, ln, reg, ready, logger); err != nil {
			if onFail == nil {
				logger.Error("metrics", "err", err)
			} else {
				onFail(err)
			}
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String())
	return func() { cancel(); <-done }, nil
}
