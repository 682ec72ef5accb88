package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/metrics"
	"github.com/vidpipe/vidpipe/workers"
)

// pendingTimeout bounds the consumer read behind vidpipe_frames_pending at
// each scrape.
const pendingTimeout = 2 * time.Second

// workerConfig is `vidpipe worker`: detector workers as their own process,
// pulling frames from an external NATS JetStream whose streams the
// coordinator created (a worker's NATS user may create nothing). Each model
// session keeps a heartbeat in the workers KV bucket. SIGTERM drains the
// batch in hand before exit.
type workerConfig struct {
	name    string
	workers int
	threads int
	batch   int
	dev     deviceFlags
	metrics string
	model   modelFlags
	s3      s3Flags
	nats    natsFlags
	detect  detectFlags
}

func (c *workerConfig) registerFlags(cmd *kingpin.CmdClause) {
	host, _ := os.Hostname()
	cmd.Flag("name", "Worker name in results, statistics, metrics and heartbeats.").Default(fmt.Sprintf("%s-%d", bus.NameFrom(host), os.Getpid())).StringVar(&c.name)
	cmd.Flag("workers", "Model sessions in this process.").Default("1").IntVar(&c.workers)
	cmd.Flag("threads", "ONNX Runtime threads per session; 0 divides the cores.").Default("0").IntVar(&c.threads)
	cmd.Flag("batch", "Largest batch.").Default("8").IntVar(&c.batch)
	c.dev.register(cmd)
	cmd.Flag("metrics", "Serve Prometheus /metrics and /healthz on this address (host:port); empty: off.").Envar("VIDPIPE_METRICS").PlaceHolder("ADDR").StringVar(&c.metrics)
	c.model.register(cmd)
	c.s3.register(cmd) // for --model s3://...
	c.nats.register(cmd)
	c.detect.register(cmd)
}

// workerHealth is what /healthz reports: ready once NATS is connected and
// the sessions pull frames, not while starting or draining.
type workerHealth struct {
	nc      atomic.Pointer[nats.Conn]
	waiting atomic.Pointer[string] // why the process is not ready; nil once it is
}

func (h *workerHealth) set(why string) { h.waiting.Store(&why) }

func (h *workerHealth) ready() error {
	if why := h.waiting.Load(); why != nil {
		return errors.New(*why)
	}
	if nc := h.nc.Load(); nc == nil || nc.Status() != nats.CONNECTED {
		status := "not connected"
		if nc != nil {
			status = nc.Status().String()
		}
		return fmt.Errorf("nats %s", status)
	}
	return nil
}

func (c *workerConfig) run(ctx context.Context, logger *slog.Logger) error {
	if c.nats.url == "" {
		return usagef("--nats (or VIDPIPE_NATS) is required: a worker joins an external JetStream")
	}
	if err := bus.ValidName("worker", c.name); err != nil {
		return usageError{err}
	}
	if c.workers < 1 || c.batch < 1 || c.threads < 0 {
		return usagef("--workers and --batch must be at least 1, --threads not negative")
	}
	var health workerHealth
	health.set("opening model sessions")
	var reg *prometheus.Registry
	// runCtx also ends when the metrics server fails, so the process stops
	// (drained) rather than run unobserved.
	runCtx, failRun := context.WithCancelCause(ctx)
	defer failRun(nil)
	if c.metrics != "" {
		reg = metrics.NewRegistry()
		stop, err := serveMetrics(c.metrics, reg, health.ready, logger, failRun)
		if err != nil {
			return err
		}
		defer stop()
	}

	bks := c.s3.buckets(logger)
	defer bks.Close()
	mdl, err := c.model.load(runCtx, logger, bks)
	if err != nil {
		return err
	}
	set, err := workers.OpenSessions(runCtx, mdl, c.dev.sessions(c.workers, c.threads, c.batch), logger)
	if err != nil {
		return err
	}
	defer set.Close()

	nc, js, err := c.nats.jetStream("vidpipe-worker-"+c.name, bus.RoleWorker, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	health.nc.Store(nc)
	health.set("waiting for the coordinator to create the workers consumer")
	cons, err := bus.Await(runCtx, js, bus.FramesStream, bus.WorkersConsumer, logger.Info)
	if err != nil {
		if runCtx.Err() != nil && ctx.Err() != nil {
			logger.Info("worker process stopped before the coordinator was ready", "name", c.name)
			return nil
		}
		return errors.Join(err, context.Cause(runCtx))
	}
	if reg != nil {
		if err := metrics.RegisterPending(reg, cons, pendingTimeout); err != nil {
			return err
		}
		if err := metrics.RegisterNATS(reg, nc); err != nil {
			return err
		}
	}

	id := &workers.Identity{Device: c.dev.device, Model: mdl.Path, ModelSHA256: mdl.SHA256, Threads: set.Threads}
	ws := make([]*workers.Worker, len(set.List))
	for i, s := range set.List {
		name := c.name
		if len(set.List) > 1 {
			name = fmt.Sprintf("%s-%d", c.name, i+1)
		}
		var mw *metrics.Worker
		if reg != nil {
			if mw, err = metrics.NewWorker(reg, name); err != nil {
				return err
			}
		}
		ws[i], err = workers.New(runCtx, js, s, set.Options(workers.Options{
			Name: name, NMS: c.detect.options(), Logger: logger, Heartbeat: id, Metrics: mw,
		}))
		if err != nil {
			return err
		}
	}
	logger.Info("worker process ready", "name", c.name, "sessions", len(set.List), "threads", set.Threads, "batch", set.Batch, "device", c.dev.device, "model", mdl.Path)
	health.waiting.Store(nil)
	go func() {
		<-runCtx.Done()
		health.set("draining")
	}()
	var g errgroup.Group
	for _, w := range ws {
		g.Go(func() error { return w.Run(runCtx) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if cause := context.Cause(runCtx); err == nil && ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the metrics server failed
	}
	logger.Info("worker process drained and stopped", "name", c.name)
	return err
}
