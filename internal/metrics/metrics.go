// Package metrics exposes vidpipe's Prometheus metrics: one registry per
// process, the worker and coordinator instruments, and the HTTP server that
// serves /metrics and /healthz.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every vidpipe metric.
const Namespace = "vidpipe"

// shutdownTimeout bounds how long Serve waits for scrapes in flight once
// its context ends.
const shutdownTimeout = 5 * time.Second

// NewRegistry returns a registry for one process with the Go runtime and
// process collectors registered. Each process owns one and passes it to the
// constructors below; nothing registers into a global default.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves /metrics from reg and /healthz from ready: 200 "ok" when
// ready returns nil, else 503 with the error's text as the reason. A nil
// ready is always ready. Errors while collecting are logged to logger (nil
// discards them) and the metrics that could be gathered are still served,
// so one failing collector does not blind the whole scrape.
func Handler(reg *prometheus.Registry, ready func() error, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{logger},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
		Timeout:       10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve serves Handler(reg, ready, logger) on ln until ctx ends, then shuts
// down gracefully, letting scrapes in flight finish; it closes ln. The
// caller listens, so a port in use fails before a slow start. It returns nil
// after a clean shutdown and the error otherwise.
func Serve(ctx context.Context, ln net.Listener, reg *prometheus.Registry, ready func() error, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           Handler(reg, ready, logger),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down metrics %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics %s: %w", ln.Addr(), err)
	}
	return nil
}

// errorLog adapts slog to promhttp's Logger.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Println(v ...any) { e.l.Warn("metrics", "err", fmt.Sprint(v...)) }
