package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/internal/embedded"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/workers"
)

// runConfig is `vidpipe run`: the whole job in one process, components
// wired through NATS exactly as they are when distributed.
type runConfig struct {
	out         string
	model       modelFlags
	workers     int
	threads     int
	batch       int
	every       int
	fps         float64
	concurrency int
	codec       string
	preprocess  string
	dev         deviceFlags
	noAnnotate  bool
	annotate    annotateFlags
	job         string
	s3          s3Flags
	nats        natsFlags
	detect      detectFlags
	videos      []string
}

func (c *runConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("out", "Output directory.").Default("out").StringVar(&c.out)
	c.model.register(cmd)
	cmd.Flag("workers", "In-process workers, each with its own model session; 0 leaves the frames to `vidpipe worker` processes on --nats.").Default("1").IntVar(&c.workers)
	cmd.Flag("threads", "ONNX Runtime threads per worker; 0 divides the cores among workers.").Default("0").IntVar(&c.threads)
	cmd.Flag("batch", "Largest batch a worker runs.").Default("4").IntVar(&c.batch)
	cmd.Flag("every", "Analyse every Nth frame.").Default("1").IntVar(&c.every)
	cmd.Flag("fps", "Analyse about F frames per second instead of every Nth.").Default("0").Float64Var(&c.fps)
	cmd.Flag("concurrency", "Videos decoded at the same time.").Default("2").IntVar(&c.concurrency)
	cmd.Flag("frame-codec", "How frames travel: raw (letterboxed RGB, cheapest on CPU) or jpeg (FFmpeg mjpeg at quality 90: 15-40x smaller, for networks).").Default("raw").EnumVar(&c.codec, "raw", "jpeg")
	preprocessFlag(cmd, &c.preprocess)
	c.dev.register(cmd)
	cmd.Flag("no-annotate", "Skip annotated.mp4.").BoolVar(&c.noAnnotate)
	c.annotate.register(cmd, 1)
	cmd.Flag("job", "Job name; outputs then go to OUT/JOB/<video>/ (always the case for s3:// outputs, with a generated name).").StringVar(&c.job)
	c.s3.register(cmd)
	c.nats.register(cmd)
	c.detect.register(cmd)
	cmd.Arg("videos", "Videos: local paths, s3://bucket/key, s3://bucket/prefix/ (every video under it) or @manifest (one per line, local or s3://).").Required().StringsVar(&c.videos)
}

func (c *runConfig) validate() error {
	switch {
	case c.every < 1:
		return usagef("--every must be at least 1")
	case c.fps < 0:
		return usagef("--fps must not be negative")
	case c.every > 1 && c.fps > 0:
		return usagef("--every and --fps exclude each other")
	case c.workers < 0:
		return usagef("--workers must not be negative")
	case c.workers == 0 && c.nats.url == "":
		return usagef("--workers 0 needs --nats: someone else must run the workers")
	case c.batch < 1:
		return usagef("--batch must be at least 1")
	case c.concurrency < 1:
		return usagef("--concurrency must be at least 1")
	case c.threads < 0:
		return usagef("--threads must not be negative")
	}
	if err := c.annotate.validate(); err != nil {
		return err
	}
	if _, err := infer.ParseDevice(c.dev.device); err != nil {
		return usageError{err}
	}
	return nil
}

func (c *runConfig) run(ctx context.Context, logger *slog.Logger) error {
	sum, err := c.execute(ctx, logger, newProgress(os.Stderr, logger))
	if err != nil {
		return err
	}
	printSummary(os.Stdout, sum, c.out)
	if !sum.OK() {
		return fmt.Errorf("%d of %d videos did not succeed (see summary.json)", sum.Unsuccessful(), len(sum.Videos))
	}
	return nil
}

// deviceFlags choose where the model runs and how.
type deviceFlags struct {
	device     string
	fp32       bool
	candidates int
	half       bool
	input      string
}

func (f *deviceFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("device", "cpu, cuda or cuda:N.").Default("cpu").StringVar(&f.device)
	cmd.Flag("fp32", "On CUDA, compute in full float32 instead of TF32 tensor cores (ONNX Runtime's default): exact, slower.").BoolVar(&f.fp32)
	cmd.Flag("candidates", "Rows of output0 per image the model returns, those of highest objectness (the copy back from a GPU is the bottleneck); exact unless that many rows pass --conf, which is counted and logged. -1: 2000 on CUDA, all on the CPU; 0: all.").Default("-1").IntVar(&f.candidates)
	cmd.Flag("half", "Run the model in float16, converted at load as `vidpipe model half` does (float32 input, outputs and Detect decode): for GPU tensor cores.").BoolVar(&f.half)
	cmd.Flag("input", "What the model is fed: u8 (the letterboxed bytes; the model casts, scales and transposes them itself: a quarter of the bytes to a GPU), float (NCHW floats made on the host), or auto: u8 on CUDA, the model's own form on the CPU.").Default(workers.InputAuto).EnumVar(&f.input, workers.InputAuto, workers.InputFloat, workers.InputU8)
}

// sessions are the model sessions n workers of this process run.
func (f *deviceFlags) sessions(n, threads, batch int) workers.SessionOptions {
	return workers.SessionOptions{Sessions: n, Threads: threads, Batch: batch, Device: f.device, FP32: f.fp32, Candidates: f.candidates, Half: f.half, Input: f.input}
}

// modelFlags choose the detector.
type modelFlags struct {
	path  string
	imgsz int
}

func (f *modelFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("model", "ONNX detection model (YOLOv5 output0 [N,A,5+nc] or raw heads, YOLOv8/YOLO11 [N,4+nc,A]; FLOAT or FLOAT16); default: the built-in fused RepYOLOv5s (distilled on the sample videos: people and cars in street scenes).").PlaceHolder("PATH").StringVar(&f.path)
	cmd.Flag("imgsz", "Input size of the built-in model and of a --model exported with a dynamic input size; a model with a fixed size runs at its own.").Default("640").IntVar(&f.imgsz)
}

// load reads --model (a path or an s3:// URI), or builds and caches the
// built-in model.
func (f *modelFlags) load(ctx context.Context, logger *slog.Logger, bks *buckets) (*workers.Model, error) {
	return workers.LoadModel(ctx, f.path, f.imgsz, func(ctx context.Context, path string) ([]byte, error) {
		return fetchModel(ctx, path, bks)
	}, logger)
}

// maxModelBytes bounds a model read from a bucket.
const maxModelBytes = 2 << 30

// fetchModel reads a model file or object.
func fetchModel(ctx context.Context, path string, bks *buckets) ([]byte, error) {
	if !ingest.IsRemote(path) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read model: %w", err)
		}
		return b, nil
	}
	if bks == nil {
		return nil, fmt.Errorf("read model %s: this command reads models from local paths only", path)
	}
	bk, key, err := bks.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	r, err := bk.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	if len(b) > maxModelBytes {
		return nil, fmt.Errorf("read model %s: over %d bytes", path, maxModelBytes)
	}
	return b, nil
}

// execute runs the job and returns its summary.
func (c *runConfig) execute(ctx context.Context, logger *slog.Logger, prog *progress) (*coordinator.Summary, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	bks := c.s3.buckets(logger)
	defer bks.Close()
	mdl, err := c.model.load(ctx, logger, bks)
	if err != nil {
		return nil, err
	}
	spec, err := c.spec(ctx, bks)
	if err != nil {
		return nil, err
	}
	logger.Info("job", "id", spec.Name, "videos", len(spec.Inputs), "model", mdl.Path, "workers", c.workers)
	var connect func() (*nats.Conn, error)
	if c.nats.url != "" {
		connect = func() (*nats.Conn, error) { return c.nats.connect("vidpipe-run", bus.RoleCoordinator, logger) }
	}
	codec, _ := bus.ParseCodec(c.codec)
	pre, _ := decode.ParsePreprocess(c.preprocess) // spec checked it
	rec, err := embedded.Run(ctx, embedded.Config{
		Connect:  connect,
		Model:    mdl,
		Sessions: c.dev.sessions(c.workers, c.threads, c.batch),
		Worker:   workers.Options{NMS: c.detect.options(), Logger: logger},
		Service: jobs.Options{
			Out: c.out, OutIsJobFolder: c.job == "" && !ingest.IsRemote(c.out),
			Open: bks.Open, Annotate: c.annotate.stage(bks.Open, logger).Annotate, Versions: versions(),
		},
		Ingest: ingest.Options{
			Decode: decode.Options{Every: c.every, FPS: c.fps, Preprocess: pre},
			Codec:  codec, Logger: logger, Open: bks.Open,
		},
		Concurrency: c.concurrency, Logger: logger,
		OnRecord: func(r *jobs.Record) { showRecord(prog, r) },
	}, spec)
	prog.finish()
	if err != nil {
		return nil, err
	}
	return readSummary(ctx, bks, rec.Output)
}

// spec is the job the flags ask for. Inputs are expanded here, where local
// manifests are allowed: they are the command line's own files.
func (c *runConfig) spec(ctx context.Context, bks *buckets) (jobs.Spec, error) {
	sources, err := ingest.Expand(ctx, c.videos, bks.Open)
	if err != nil {
		return jobs.Spec{}, err
	}
	id := c.job
	if id == "" {
		id = newJobID()
	}
	if err := bus.ValidName("job", id); err != nil {
		return jobs.Spec{}, usageError{err}
	}
	pre, err := decode.ParsePreprocess(c.preprocess)
	if err != nil {
		return jobs.Spec{}, usageError{err}
	}
	annotate := !c.noAnnotate
	spec := jobs.Spec{
		Name: id, Inputs: sources, FPS: c.fps, Preprocess: pre.String(),
		Conf: c.detect.conf, IoU: c.detect.iou, MaxDet: c.detect.maxDet, Annotate: &annotate,
	}
	if c.fps == 0 {
		spec.Every = c.every
	}
	return spec, nil
}

// readSummary reads the job's summary.json from its folder.
func readSummary(ctx context.Context, bks *buckets, folder string) (*coordinator.Summary, error) {
	uri := strings.TrimSuffix(folder, "/") + "/" + coordinator.SummaryFile
	b, key, err := bks.Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	if !ingest.IsRemote(uri) {
		defer b.Close() // bks keeps and closes only the s3:// ones
	}
	r, err := b.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	defer r.Close()
	var sum coordinator.Summary
	if err := json.NewDecoder(r).Decode(&sum); err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	return &sum, nil
}

func newJobID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "run-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// redactURL hides credentials in a NATS URL before it reaches a log.
func redactURL(u string) string {
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			return u[:scheme+3] + "REDACTED" + u[at:]
		}
	}
	return u
}
