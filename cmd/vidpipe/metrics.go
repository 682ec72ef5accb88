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

// serveMetrics serves /metrics and /healthz on addr until ctx ends or stop
// is called; an empty addr serves nothing. A nil reg gets the process
// collectors only.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, nc *nats.Conn, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	if err := metrics.RegisterNATS(reg, nc); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.ServeListener(ctx, ln, reg, natsReady(nc), logger); err != nil {
			logger.Error("metrics", "err", err)
		}
	}()
	logger.Info("metrics", "addr", ln.Addr().String())
	return func() { cancel(); <-done }, nil
}
