// Package embedded runs vidpipe's distributed components in one process:
// the job service, the ingest pool, the workers and the max-deliveries
// watcher on one NATS server, with a job submitted as a spec and followed
// through its record. `vidpipe run` and `vidpipe bench` are this, so the
// embedded mode has no job lifecycle of its own to drift from the cluster's.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/workers"
)

// ErrJobDone ends a Pipeline whose job has reached its end.
var ErrJobDone = errors.New("job done")

// Config is what Run wires.
type Config struct {
	// JS is the JetStream the job runs on. Nil: Connect reaches an external
	// server, or, without Connect, a server starts in this process for the
	// job and stops after it.
	JS      jetstream.JetStream
	Connect func() (*nats.Conn, error)
	// Model, when set, is what the job records and the in-process workers
	// run; without it Service.Model is recorded as given.
	Model *workers.Model
	// Sessions opens the in-process workers' model sessions; none leaves
	// the frames to worker processes on the same NATS.
	Sessions workers.SessionOptions
	// Worker holds the in-process workers' thresholds and logger.
	Worker workers.Options
	// Service configures the job service; LocalInputs is always on.
	Service jobs.Options
	// Ingest configures the ingest processes' decoder and frames; the
	// decoder's size is the model's.
	Ingest      ingest.Options
	Concurrency int
	// OnRecord sees every change of the job's record (progress displays).
	OnRecord func(*jobs.Record)
	Logger   *slog.Logger
}

// Run submits spec to an in-process job service and follows the job to
// its end, with everything else it needs running beside it: the NATS
// server unless one is given, the streams, the max-deliveries watcher, the
// ingest pool and the workers. It returns the final record.
func Run(ctx context.Context, cfg Config, spec jobs.Spec) (*jobs.Record, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var services []func(context.Context) error
	if cfg.Model != nil {
		cfg.Service.Model = jobs.Model{Path: cfg.Model.Path, SHA256: cfg.Model.SHA256, Input: cfg.Model.Size}
		if cfg.Sessions.Sessions > 0 {
			set, err := workers.OpenSessions(ctx, cfg.Model, cfg.Sessions, cfg.Logger)
			if err != nil {
				return nil, err
			}
			defer set.Close()
			size, _ := set.List[0].InputSize()
			cfg.Service.Model.Input = size
			for i, sess := range set.List {
				o := set.Options(cfg.Worker)
				o.Name = fmt.Sprintf("worker-%d", i+1)
				services = append(services, func(ctx context.Context) error {
					w, err := workers.New(ctx, cfg.JS, sess, o)
					if err != nil {
						return err
					}
					return w.Run(ctx)
				})
			}
			cfg.Logger.Info("workers", "sessions", len(set.List), "threads", set.Threads, "batch", set.Batch, "input", size)
		}
	}
	size := cfg.Service.Model.Input
	if size <= 0 {
		return nil, fmt.Errorf("model %s: no static square input size", cfg.Service.Model.Path)
	}
	cfg.Ingest.Decode.Size = size
	if cfg.JS == nil {
		nc, stop, err := connect(cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
		// A raw frame is size*size*3 bytes plus a small header; JPEG frames
		// are far smaller. Refused before the first publish.
		if need := int64(size*size*3 + 1024); cfg.Ingest.Codec == bus.Raw && need > nc.MaxPayload() {
			return nil, fmt.Errorf("raw %dx%d frames need %d bytes per message, over the NATS server's max_payload of %d: raise max_payload (8MB suits 1280) or use --frame-codec jpeg", size, size, need, nc.MaxPayload())
		}
		if cfg.JS, err = jetstream.New(nc); err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		streams := bus.DefaultStreamOptions()
		// Frames are transient; on a server of this process's own they
		// need not touch the disk. An external server keeps its streams.
		streams.FramesInMemory = cfg.Connect == nil
		if err := bus.Setup(ctx, cfg.JS, streams); err != nil {
			return nil, err
		}
	}
	store, err := jobs.OpenStore(ctx, cfg.JS)
	if err != nil {
		return nil, err
	}
	watcher, err := coordinator.NewMaxDeliveriesWatcher(ctx, cfg.JS, cfg.Logger)
	if err != nil {
		return nil, err
	}
	pool, err := ingest.NewPool(ctx, cfg.JS, ingest.New(cfg.JS, cfg.Ingest), ingest.PoolOptions{Concurrency: cfg.Concurrency, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	opts := cfg.Service
	opts.LocalInputs = true
	opts.Logger = cfg.Logger
	svc := jobs.New(cfg.JS, store, opts)
	started := make(chan struct{})
	services = append(services, watcher.Run, pool.Run, func(ctx context.Context) error {
		err := svc.Start(ctx)
		close(started)
		if err != nil {
			return err
		}
		<-ctx.Done()
		svc.Wait()
		return nil
	})

	var (
		final *jobs.Record
		id    string
	)
	err = Pipeline(ctx, func(ctx context.Context) error {
		// Submitted once the service runs, which then follows the job.
		select {
		case <-started:
		case <-ctx.Done():
			return ctx.Err()
		}
		rec, _, err := svc.Submit(ctx, spec)
		if err != nil {
			return err
		}
		id = rec.ID
		final, err = store.Follow(ctx, rec.ID, cfg.OnRecord)
		return err
	}, services...)
	if err != nil {
		if id != "" && final == nil {
			// Stopped mid-job: on a shared NATS a coordinator would
			// otherwise resume it, with inputs that may be this host's.
			if _, cerr := svc.Cancel(context.WithoutCancel(ctx), id); cerr != nil && !errors.Is(cerr, jobs.ErrFinished) {
				cfg.Logger.Warn("cancel the stopped job", "job", id, "err", cerr)
			}
		}
		return final, err
	}
	if final.State == bus.JobFailed && final.Stats == nil {
		// Failed as a whole (its outputs could not be written, say), not
		// through its videos.
		return final, fmt.Errorf("job %s: %s", final.ID, final.Error)
	}
	return final, nil
}

// connect reaches cfg's external NATS, or starts one in this process with
// its store in a temporary folder; stop closes what connect opened.
func connect(cfg Config) (nc *nats.Conn, stop func(), err error) {
	if cfg.Connect != nil {
		if nc, err = cfg.Connect(); err != nil {
			return nil, nil, err
		}
		return nc, nc.Close, nil
	}
	dir, err := os.MkdirTemp("", "vidpipe-nats-")
	if err != nil {
		return nil, nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	if nc, err = bus.ConnectEmbedded(srv, "vidpipe-run"); err != nil {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cfg.Logger.Debug("embedded nats started", "store", dir)
	return nc, func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}, nil
}

// Pipeline runs a job's components as one group until follow returns: the
// first of them to fail, or follow's end, cancels the others' context
// before the group is waited for, so none is left blocked on a stream that
// nobody drains any more.
func Pipeline(ctx context.Context, follow func(context.Context) error, services ...func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, run := range services {
		g.Go(func() error { return run(ctx) })
	}
	g.Go(func() error {
		if err := follow(ctx); err != nil {
			return err
		}
		return ErrJobDone
	})
	if err := g.Wait(); !errors.Is(err, ErrJobDone) {
		return err
	}
	return nil
}
