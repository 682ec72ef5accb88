package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/workers"
)

// workerConfig is `vidpipe worker`: detector workers as their own process,
// pulling frames from an external NATS JetStream. SIGTERM drains the batch
// in hand before exit.
type workerConfig struct {
	name    string
	workers int
	threads int
	batch   int
	device  string
	model   modelFlags
	nats    natsFlags
	detect  detectFlags
}

func (c *workerConfig) registerFlags(cmd *kingpin.CmdClause) {
	host, _ := os.Hostname()
	cmd.Flag("name", "Worker name in results and statistics.").Default(fmt.Sprintf("%s-%d", bus.NameFrom(host), os.Getpid())).StringVar(&c.name)
	cmd.Flag("workers", "Model sessions in this process.").Default("1").IntVar(&c.workers)
	cmd.Flag("threads", "ONNX Runtime threads per session; 0 divides the cores.").Default("0").IntVar(&c.threads)
	cmd.Flag("batch", "Largest batch.").Default("8").IntVar(&c.batch)
	cmd.Flag("device", "cpu, cuda or cuda:N.").Default("cpu").StringVar(&c.device)
	c.model.register(cmd)
	c.nats.register(cmd)
	c.detect.register(cmd)
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
	mdl, err := c.model.load(logger)
	if err != nil {
		return err
	}
	sessions, threads, batch, err := openSessions(ctx, logger, mdl, c.workers, c.threads, c.batch, c.device)
	if err != nil {
		return err
	}
	defer closeAll(sessions)
	mdl.bytes = nil

	nc, err := c.nats.connect("vidpipe-worker-"+c.name, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := bus.Setup(ctx, js, bus.DefaultStreamOptions()); err != nil {
		return err
	}
	logger.Info("worker process ready", "name", c.name, "sessions", len(sessions), "threads", threads, "batch", batch, "device", c.device, "model", mdl.path)
	var g errgroup.Group
	for i, s := range sessions {
		name := c.name
		if len(sessions) > 1 {
			name = fmt.Sprintf("%s-%d", c.name, i+1)
		}
		w, err := workers.New(ctx, js, s, workers.Options{Name: name, Batch: batch, NMS: c.detect.options(), Names: mdl.names, Logger: logger})
		if err != nil {
			return err
		}
		g.Go(func() error { return w.Run(ctx) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	logger.Info("worker process drained and stopped", "name", c.name)
	return err
}
