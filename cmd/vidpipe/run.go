package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/internal/embedded"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/model/yolo"
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
	cmd.Flag("frame-codec", "How frames travel: raw (letterboxed RGB, cheapest on CPU) or jpeg (smaller, for networks).").Default("raw").EnumVar(&c.codec, "raw", "jpeg")
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
}

func (f *deviceFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("device", "cpu, cuda or cuda:N.").Default("cpu").StringVar(&f.device)
	cmd.Flag("fp32", "On CUDA, compute in full float32 instead of TF32 tensor cores (ONNX Runtime's default): exact, slower.").BoolVar(&f.fp32)
	cmd.Flag("candidates", "Rows of output0 per image the model returns, those of highest objectness (the copy back from a GPU is the bottleneck); exact unless that many rows pass --conf, which is counted and logged. -1: 2000 on CUDA, all on the CPU; 0: all.").Default("-1").IntVar(&f.candidates)
}

// defaultCandidates is --candidates -1 on a GPU: 0.7 MB per 640 image to
// copy back instead of 8.6 MB, far more rows than pass a usual threshold.
const defaultCandidates = 2000

// k resolves --candidates for the device.
func (f *deviceFlags) k() int {
	if f.candidates >= 0 {
		return f.candidates
	}
	if d, err := infer.ParseDevice(f.device); err == nil && d.Kind == infer.CUDA {
		return defaultCandidates
	}
	return 0
}

// loadedModel is the detector a run uses, read once.
type loadedModel struct {
	path  string
	bytes []byte
	names []string
	hash  string
	size  int // square input size the model runs at
	// layout is the output layout decided when the model loaded.
	layout *layout.Layout
}

// modelFlags choose the detector.
type modelFlags struct {
	path  string
	imgsz int
}

func (f *modelFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("model", "ONNX detection model (YOLOv5 output0 [N,A,5+nc] or raw heads, YOLOv8/YOLO11 [N,4+nc,A]; FLOAT or FLOAT16); default: the built-in fused RepYOLOv5s (untrained).").PlaceHolder("PATH").StringVar(&f.path)
	cmd.Flag("imgsz", "Input size of the built-in model and of a --model exported with a dynamic input size; a model with a fixed size runs at its own.").Default("640").IntVar(&f.imgsz)
}

// load reads --model (a path or an s3:// URI), or builds and caches the
// built-in model.
func (f *modelFlags) load(ctx context.Context, logger *slog.Logger, bks *buckets) (*loadedModel, error) {
	path := f.path
	if path == "" {
		var err error
		if path, err = builtin.Path(f.imgsz); err != nil {
			return nil, err
		}
		logger.Info("using the built-in model (untrained weights: detections are not meaningful)", "path", path)
	}
	b, err := fetchModel(ctx, path, bks)
	if err != nil {
		return nil, err
	}
	// Refused here, before any job starts or frame is decoded.
	lay, err := layout.Check(ctx, b, path, infer.Options{ImgSize: f.imgsz})
	if err != nil {
		return nil, err
	}
	for _, n := range lay.Notes {
		logger.Warn(n, "model", path)
	}
	logger.Info("model layout", "model", path, "layout", lay.String())
	return &loadedModel{path: path, bytes: b, names: lay.Names, hash: sha256Hex(b), size: lay.Size, layout: lay}, nil
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

// sessionSet is the model sessions of one process and how they run.
type sessionSet struct {
	sessions       []*infer.Session
	threads, batch int
	// candidates is the k of a model rewritten to return its k best rows
	// (0: all rows).
	candidates int
	// layout is the sessions' output layout.
	layout *layout.Layout
}

// openSessions opens n ONNX Runtime sessions, one per worker.
func openSessions(ctx context.Context, logger *slog.Logger, mdl *loadedModel, n, threads, batch int, dev deviceFlags) (*sessionSet, error) {
	if threads == 0 {
		threads = max(1, runtime.NumCPU()/n)
	}
	set := &sessionSet{threads: threads, batch: batch, candidates: dev.k()}
	model := mdl.bytes
	if set.candidates > 0 && mdl.layout.Kind != layout.YOLOv5 {
		// Selecting rows by objectness means nothing in another layout.
		logger.Info("the model returns all its rows", "model", mdl.path, "reason", "candidates need YOLOv5 output0, the model has "+mdl.layout.Kind.String())
		set.candidates = 0
	}
	if set.candidates > 0 {
		sel, err := yolo.WithCandidates(mdl.bytes, set.candidates)
		switch {
		case errors.Is(err, yolo.ErrNoCandidates):
			logger.Info("the model returns all its rows", "model", mdl.path, "reason", err)
			set.candidates = 0
		case err != nil:
			return nil, fmt.Errorf("model %s: %w", mdl.path, err)
		default:
			model = sel
			logger.Info("the model returns its rows of highest objectness only", "model", mdl.path, "candidates", set.candidates)
		}
	}
	for i := 0; i < n; i++ {
		s, lay, err := layout.Open(ctx, model, mdl.path, infer.Options{Threads: threads, Device: dev.device, MaxBatch: batch, FP32: dev.fp32, ImgSize: mdl.size})
		if err != nil {
			closeAll(set.sessions)
			return nil, err
		}
		set.sessions, set.layout = append(set.sessions, s), lay
	}
	if mb := set.sessions[0].MaxBatch(); batch > mb {
		// Exports with a fixed batch (ultralytics' default is 1) cap it.
		logger.Info("model has a fixed batch size; batching less", "model", mdl.path, "batch", mb)
		set.batch = mb
	}
	return set, nil
}

func closeAll(sessions []*infer.Session) {
	for _, s := range sessions {
		s.Close()
	}
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
	set := &sessionSet{threads: c.threads, batch: c.batch}
	size := mdl.size
	if c.workers > 0 {
		if set, err = openSessions(ctx, logger, mdl, c.workers, c.threads, c.batch, c.dev); err != nil {
			return nil, err
		}
		defer closeAll(set.sessions)
		size, _ = set.sessions[0].InputSize()
	}
	threads, batch := set.threads, set.batch
	mdl.bytes = nil // ONNX Runtime holds its own copy now
	if size <= 0 {
		return nil, fmt.Errorf("model %s: no static square input size", mdl.path)
	}

	nc, cleanup, err := c.connect(logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	// A raw frame is size*size*3 bytes plus a small header; JPEG frames are
	// far smaller. Refuse early rather than fail on the first publish.
	if need := int64(size*size*3 + 1024); c.codec == "raw" && need > nc.MaxPayload() {
		return nil, fmt.Errorf("raw %dx%d frames need %d bytes per message, over the NATS server's max_payload of %d: raise max_payload (8MB suits 1280) or use --frame-codec jpeg", size, size, need, nc.MaxPayload())
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := bus.Setup(ctx, js, bus.DefaultStreamOptions()); err != nil {
		return nil, err
	}
	spec, err := c.spec(ctx, bks)
	if err != nil {
		return nil, err
	}
	logger.Info("job", "id", spec.Name, "videos", len(spec.Inputs), "model", mdl.path, "workers", c.workers, "threads", threads, "batch", batch, "input", size)

	var ws []func(context.Context) error
	for i, s := range set.sessions {
		w, err := workers.New(ctx, js, s, workers.Options{
			Name: fmt.Sprintf("worker-%d", i+1), Batch: batch, NMS: c.detect.options(), Names: mdl.names, Layout: set.layout, Logger: logger,
			Candidates: set.candidates,
		})
		if err != nil {
			return nil, err
		}
		ws = append(ws, w.Run)
	}
	codec, _ := bus.ParseCodec(c.codec)
	pre, _ := decode.ParsePreprocess(c.preprocess) // spec checked it
	rec, err := embedded.Run(ctx, embedded.Config{
		JS: js,
		Service: jobs.Options{
			Out: c.out, OutIsJobFolder: c.job == "" && !ingest.IsRemote(c.out),
			Model: jobs.Model{Path: mdl.path, SHA256: mdl.hash, Input: size},
			Open:  bks.Open, Annotate: c.annotate.stage(bks.Open, logger).Annotate, Versions: versions(),
		},
		Ingest: ingest.Options{
			Decode: decode.Options{Every: c.every, FPS: c.fps, Size: size, Preprocess: pre},
			Codec:  codec, Logger: logger, Open: bks.Open,
		},
		Concurrency: c.concurrency, Workers: ws, Logger: logger,
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

// connect reaches the NATS server: an external one, or one started here.
func (c *runConfig) connect(logger *slog.Logger) (*nats.Conn, func(), error) {
	if c.nats.url != "" {
		nc, err := c.nats.connect("vidpipe-run", logger)
		if err != nil {
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
	nc, err := bus.ConnectEmbedded(srv, "vidpipe-run")
	if err != nil {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	logger.Debug("embedded nats started", "store", dir)
	return nc, func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}, nil
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
