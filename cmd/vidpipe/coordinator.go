package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/metrics"
	"github.com/vidpipe/vidpipe/workers"
)

// coordinatorConfig is `vidpipe coordinator`: the long-running job service.
// It owns the streams and buckets, serves the job API, follows every job's
// results into its outputs, and resumes running jobs after a restart.
type coordinatorConfig struct {
	listen      string
	tokenFile   string
	out         string
	localInputs bool
	buckets     []string
	annotate    annotateFlags
	streams     bus.StreamOptions
	model       modelFlags
	nats        natsFlags
	s3          s3Flags
}

func (c *coordinatorConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("listen", "Address of the job API, /metrics and /healthz.").Default(":8080").StringVar(&c.listen)
	cmd.Flag("token-file", "File holding the API bearer token (else VIDPIPE_TOKEN).").PlaceHolder("FILE").StringVar(&c.tokenFile)
	cmd.Flag("out", "Where job folders go unless a job names its output: s3://bucket/prefix or a local directory.").Default("out").StringVar(&c.out)
	cmd.Flag("local-inputs", "Accept local paths as job inputs (files on the ingest machines).").BoolVar(&c.localInputs)
	cmd.Flag("bucket", "A bucket jobs may read or write (repeatable); none: every bucket the credentials reach.").PlaceHolder("NAME").StringsVar(&c.buckets)
	c.annotate.register(cmd, 1)
	c.streams = bus.DefaultStreamOptions()
	o := &c.streams
	cmd.Flag("replicas", "JetStream replicas of streams and buckets (3 on a production cluster).").Default(strconv.Itoa(o.Replicas)).IntVar(&o.Replicas)
	cmd.Flag("frames-waiting", "Frames queued for workers before ingest is held back.").Default(strconv.FormatInt(o.MaxFramesWaiting, 10)).Int64Var(&o.MaxFramesWaiting)
	cmd.Flag("ack-wait", "How long a worker may hold a frame without a sign of life before it goes to another worker.").Default(o.AckWait.String()).DurationVar(&o.AckWait)
	cmd.Flag("max-deliver", "Deliveries of one frame before it is recorded as failed.").Default(strconv.Itoa(o.MaxDeliver)).IntVar(&o.MaxDeliver)
	cmd.Flag("results-max-bytes", "Size of the results stream in bytes; past it the oldest results and events go (a flood cannot fill the NATS store).").Default(strconv.FormatInt(o.ResultsMaxBytes, 10)).Int64Var(&o.ResultsMaxBytes)
	cmd.Flag("worker-ttl", "How long a worker's heartbeat lives.").Default(o.WorkerTTL.String()).DurationVar(&o.WorkerTTL)
	c.model.register(cmd)
	c.nats.register(cmd)
	c.s3.register(cmd)
}

// apiToken reads the bearer token from a file or VIDPIPE_TOKEN; never from
// the command line, where ps would show it.
func apiToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", usagef("token file %s is empty", file)
	}
	if tok := strings.TrimSpace(os.Getenv("VIDPIPE_TOKEN")); tok != "" {
		return tok, nil
	}
	return "", usagef("no API token: set VIDPIPE_TOKEN or --token-file")
}

func (c *coordinatorConfig) run(ctx context.Context, logger *slog.Logger) error {
	if c.nats.url == "" {
		return usagef("--nats (or VIDPIPE_NATS) is required: the coordinator runs on an external JetStream")
	}
	if err := c.annotate.validate(); err != nil {
		return err
	}
	token, err := apiToken(c.tokenFile)
	if err != nil {
		return err
	}
	bks := c.s3.buckets(logger)
	defer bks.Close()
	mdl, err := c.model.load(ctx, logger, bks)
	if err != nil {
		return err
	}
	if mdl.Size <= 0 {
		return fmt.Errorf("model %s: no static square input size; export it with a fixed --imgsz", mdl.Path)
	}
	nc, js, err := c.nats.jetStream("vidpipe-coordinator", bus.RoleCoordinator, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	// The keeper puts back what a nats-server restart loses (the in-memory
	// workers bucket) at a reconnect, a periodic check, or a use.
	keeper := bus.NewKeeper(js, c.streams, logger)
	if err := keeper.Setup(ctx); err != nil {
		return err
	}
	prevReconnect := nc.Opts.ReconnectedCB
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		if prevReconnect != nil {
			prevReconnect(nc)
		}
		keeper.Kick()
	})
	store, err := jobs.OpenStore(ctx, js)
	if err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	var met *metrics.Coordinator
	svc := jobs.New(js, store, jobs.Options{
		Out: c.out, Model: jobs.Model{Path: mdl.Path, SHA256: mdl.SHA256, Input: mdl.Size},
		Open: bks.Open, Annotate: c.annotate.stage(bks.Open, logger).Annotate,
		LocalInputs: c.localInputs, Buckets: c.buckets, Logger: logger,
		OnFrames: func(n int) { met.AddResults(n) },
		OnRate: func(job string, fps *float64) {
			if fps == nil {
				met.ForgetJob(job)
				return
			}
			met.SetJobFPS(job, *fps)
		},
	})
	if met, err = metrics.NewCoordinator(reg, svc.StateCounts, 5*time.Second); err != nil {
		return err
	}
	frames, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", bus.WorkersConsumer, err)
	}
	if err := metrics.RegisterPending(reg, frames, 5*time.Second); err != nil {
		return err
	}
	if err := metrics.RegisterNATS(reg, nc); err != nil {
		return err
	}
	apiHandler, err := api.Handler(svc, api.Options{
		Token: token, Logger: logger,
		Workers: func(ctx context.Context) (any, error) {
			var hb []workers.Heartbeat
			err := keeper.Do(ctx, func() (err error) { hb, err = workers.ListHeartbeats(ctx, js); return err })
			return hb, err
		},
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiHandler)
	ops := metrics.Handler(reg, natsReady(nc), logger)
	mux.Handle("/metrics", ops)
	mux.Handle("/healthz", ops)
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.listen, err)
	}
	srv := api.NewServer(mux, api.DefaultTimeouts())

	watcher, err := coordinator.NewMaxDeliveriesWatcher(ctx, js, logger)
	if err != nil {
		ln.Close()
		return err
	}
	if err := svc.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	if len(c.buckets) == 0 {
		logger.Warn("jobs may name any bucket the credentials reach; limit them with --bucket")
	}
	logger.Info("coordinator ready", "api", "http://"+ln.Addr().String(), "model", mdl.Path, "input", mdl.Size, "out", c.out)
	var g errgroup.Group
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve api: %w", err)
		}
		return nil
	})
	g.Go(func() error { return watcher.Run(ctx) })
	g.Go(func() error { keeper.Run(ctx); return nil })
	<-ctx.Done()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	svc.Wait()
	err = g.Wait()
	logger.Info("coordinator stopped; running jobs resume on the next start")
	return err
}
