package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/storage"
)

// preprocessFlag registers --preprocess: how frames become model input.
func preprocessFlag(cmd *kingpin.CmdClause, v *string) {
	cmd.Flag("preprocess", "How frames become model input: exact (the pixels YOLOv5's own cv2 pipeline makes, bit for bit) or fast (resize before the RGB conversion: cheaper, about 1 level off on average, different detections).").
		Default(decode.PreprocessExact.String()).EnumVar(v, decode.PreprocessNames()...)
}

// natsFlags is the NATS connection shared by every subcommand that talks to
// the bus; an empty URL means an embedded server where the command allows.
// Secrets come from the environment or files, never from the command line.
type natsFlags struct {
	url                    string
	user, password, token  string
	creds                  string
	tlsCA, tlsCert, tlsKey string
}

func (f *natsFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("nats", "NATS URL of an external JetStream server (nats://host:4222, tls://...); empty starts one in-process.").Envar("VIDPIPE_NATS").PlaceHolder("URL").StringVar(&f.url)
	cmd.Flag("nats-user", "NATS user; the password comes from VIDPIPE_NATS_PASSWORD.").Envar("VIDPIPE_NATS_USER").StringVar(&f.user)
	cmd.Flag("nats-creds", "NATS credentials file (JWT and nkey seed).").Envar("VIDPIPE_NATS_CREDS").PlaceHolder("FILE").StringVar(&f.creds)
	cmd.Flag("nats-tls-ca", "CA certificate that signs the NATS server's.").PlaceHolder("FILE").StringVar(&f.tlsCA)
	cmd.Flag("nats-tls-cert", "Client certificate for NATS mutual TLS.").PlaceHolder("FILE").StringVar(&f.tlsCert)
	cmd.Flag("nats-tls-key", "Client key for NATS mutual TLS.").PlaceHolder("FILE").StringVar(&f.tlsKey)
	f.password = os.Getenv("VIDPIPE_NATS_PASSWORD")
	f.token = os.Getenv("VIDPIPE_NATS_TOKEN")
}

// connect dials the external server as role, reconnecting forever with
// backoff and logging the connection's state changes. The role picks the
// inbox prefix, the only one nats.conf lets the role's user read.
func (f *natsFlags) connect(name string, role bus.Role, logger *slog.Logger) (*nats.Conn, error) {
	inbox, err := bus.InboxOption(role)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(name), inbox, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { logger.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
	}
	switch {
	case f.creds != "":
		opts = append(opts, nats.UserCredentials(f.creds))
	case f.user != "":
		opts = append(opts, nats.UserInfo(f.user, f.password))
	case f.token != "":
		opts = append(opts, nats.Token(f.token))
	}
	if f.tlsCA != "" {
		opts = append(opts, nats.RootCAs(f.tlsCA))
	}
	if f.tlsCert != "" || f.tlsKey != "" {
		opts = append(opts, nats.ClientCert(f.tlsCert, f.tlsKey))
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redactURL(f.url), err)
	}
	return nc, nil
}

// jetStream connects as connect does and opens JetStream on the connection;
// the caller closes nc.
func (f *natsFlags) jetStream(name string, role bus.Role, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := f.connect(name, role, logger)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
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
