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

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/ingest"
)

// ErrJobDone ends a Pipeline whose job has reached its end.
var ErrJobDone = errors.New("job done")

// Config is what Run wires.
type Config struct {
	JS jetstream.JetStream
	// Service configures the job service; LocalInputs is always on.
	Service jobs.Options
	// Ingest configures the ingest processes' decoder and frames.
	Ingest      ingest.Options
	Concurrency int
	// Workers are the in-process workers' Run; none leaves the frames to
	// worker processes on the same NATS.
	Workers []func(context.Context) error
	// OnRecord sees every change of the job's record (progress displays).
	OnRecord func(*jobs.Record)
	Logger   *slog.Logger
}

// Run submits spec to an in-process job service and follows the job to
// its end, with everything else it needs running beside it; it returns the
// final record.
func Run(ctx context.Context, cfg Config, spec jobs.Spec) (*jobs.Record, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
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
	services := append([]func(context.Context) error{watcher.Run, pool.Run, func(ctx context.Context) error {
		err := svc.Start(ctx)
		close(started)
		if err != nil {
			return err
		}
		<-ctx.Done()
		svc.Wait()
		return nil
	}}, cfg.Workers...)

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
