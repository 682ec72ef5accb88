package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/storage"
)

// natsFlags is the NATS connection shared by every subcommand that talks to
// the bus; empty URL means an embedded server.
type natsFlags struct {
	url string
}

func (f *natsFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("nats", "NATS URL of an external JetStream server; empty starts one in-process.").Envar("VIDPIPE_NATS").PlaceHolder("URL").StringVar(&f.url)
}

// detectFlags are the detector's thresholds.
type detectFlags struct {
	conf, iou float64
	maxDet    int
}

func (f *detectFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("conf", "Confidence threshold (objectness and class score).").Default("0.25").Float64Var(&f.conf)
	cmd.Flag("iou", "NMS IoU threshold.").Default("0.45").Float64Var(&f.iou)
	cmd.Flag("max-det", "Most detections kept per frame.").Default("300").IntVar(&f.maxDet)
}

func (f *detectFlags) options() detect.NMSOptions {
	o := detect.DefaultNMSOptions()
	o.Conf = float32(f.conf)
	o.IoU = f.iou
	o.MaxDet = f.maxDet
	return o
}

// s3Flags reach an S3 or S3-compatible store; credentials come from the
// AWS default chain (environment, shared config, instance roles) and are
// never taken on the command line, so they never land in logs or ps.
type s3Flags struct {
	endpoint, region string
}

func (f *s3Flags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("s3-endpoint", "S3-compatible endpoint (MinIO, versitygw...), path-style; empty means AWS.").Envar("VIDPIPE_S3_ENDPOINT").PlaceHolder("URL").StringVar(&f.endpoint)
	cmd.Flag("s3-region", "S3 region; default from the AWS chain.").Envar("VIDPIPE_S3_REGION").StringVar(&f.region)
}

// buckets opens each bucket once and hands it to every caller.
type buckets struct {
	opts storage.Options
	mu   sync.Mutex
	open map[string]storage.Bucket
}

func (f *s3Flags) buckets(logger *slog.Logger) *buckets {
	return &buckets{
		opts: storage.Options{S3Endpoint: f.endpoint, S3Region: f.region, Logger: logger},
		open: map[string]storage.Bucket{},
	}
}

// Open resolves uri to its bucket and key; it is an ingest.Opener.
func (b *buckets) Open(ctx context.Context, uri string) (storage.Bucket, string, error) {
	scheme, name, key, err := storage.ParseURI(uri)
	if err != nil {
		return nil, "", err
	}
	if scheme != "s3" {
		return storage.Open(ctx, uri, b.opts)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk, ok := b.open[name]; ok {
		return bk, key, nil
	}
	bk, _, err := storage.Open(ctx, "s3://"+name, b.opts)
	if err != nil {
		return nil, "", err
	}
	b.open[name] = bk
	return bk, key, nil
}

func (b *buckets) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bk := range b.open {
		bk.Close()
	}
}
