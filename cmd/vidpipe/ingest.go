package main

import (
	"context"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/internal/metrics"
	"github.com/vidpipe/vidpipe/media/decode"
)

// ingestConfig is `vidpipe ingest`: a pool of decoders taking video tasks
// from JetStream and publishing their frames. SIGTERM hands the videos in
// hand back to the other ingest processes.
type ingestConfig struct {
	concurrency int
	codec       string
	preprocess  string
	metrics     string
	nats        natsFlags
	s3          s3Flags
}

func (c *ingestConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("concurrency", "Videos decoded at the same time.").Default("2").IntVar(&c.concurrency)
	cmd.Flag("frame-codec", "How frames travel: raw (letterboxed RGB) or jpeg (FFmpeg mjpeg at quality 90: 15-40x smaller, for networks).").Default("raw").EnumVar(&c.codec, "raw", "jpeg")
	preprocessFlag(cmd, &c.preprocess)
	cmd.Flag("metrics", "Address for /metrics and /healthz; empty: off.").PlaceHolder("ADDR").StringVar(&c.metrics)
	c.nats.register(cmd)
	c.s3.register(cmd)
}

func (c *ingestConfig) run(ctx context.Context, logger *slog.Logger) error {
	if c.nats.url == "" {
		return usagef("--nats (or VIDPIPE_NATS) is required: ingest takes its tasks from an external JetStream")
	}
	if c.concurrency < 1 {
		return usagef("--concurrency must be at least 1")
	}
	nc, js, err := c.nats.jetStream("vidpipe-ingest", bus.RoleIngest, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	bks := c.s3.buckets(logger)
	defer bks.Close()
	codec, _ := bus.ParseCodec(c.codec)
	pre, err := decode.ParsePreprocess(c.preprocess)
	if err != nil {
		return usageError{err}
	}
	in := ingest.New(js, ingest.Options{Codec: codec, Decode: decode.Options{Preprocess: pre}, Logger: logger, Open: bks.Open})
	pool, err := ingest.NewPool(ctx, js, in, ingest.PoolOptions{Concurrency: c.concurrency, Logger: logger})
	if err != nil {
		return err
	}
	if c.metrics != "" {
		reg := metrics.NewRegistry()
		if err := metrics.RegisterNATS(reg, nc); err != nil {
			return err
		}
		stop, err := serveMetrics(c.metrics, reg, natsReady(nc), logger, nil)
		if err != nil {
			return err
		}
		defer stop()
	}
	err = pool.Run(ctx)
	logger.Info("ingest stopped")
	return err
}
