// Package runbench measures what `vidpipe run` costs against its limits on
// one video: decode and letterbox alone (both preprocessings, and the
// ffmpeg CLI doing the same), the model alone on those frames, and the
// pipeline end to end through the embedded job service, so a slow stage
// shows as the ratio to its limit.
package runbench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/internal/embedded"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/workers"
)

// Options are what one measurement runs: the video, the model and how it
// runs, and the exact-vs-fast comparison.
type Options struct {
	Video   string
	Model   string // ONNX path; empty: the built-in model
	ImgSize int
	Batch   int
	// Workers are the model sessions, each a worker in the pipeline and a
	// concurrent runner alone; Threads is per session (0: the cores
	// divided among them).
	Workers int
	Threads int
	// Device, FP32, Half, Input and Candidates choose how the sessions run,
	// as for `vidpipe run` (workers.SessionOptions).
	Device     string
	FP32, Half bool
	Input      string
	Candidates int
	Preprocess decode.Preprocess
	// Codec is how frames travel in the pipeline.
	Codec bus.Codec
	// CompareFrames, evenly spaced, get the model on both preprocessings'
	// input; CompareConf is that comparison's confidence threshold.
	CompareFrames int
	CompareConf   float64
	// Rounds of the model alone and the pipeline, interleaved so that drift
	// in the machine's load hits both alike; medians are reported.
	Rounds int
	// Matrix, when set, are the batch sizes at which the model alone runs
	// in every precision the device has and with float and uint8 input.
	Matrix []int
	Logger *slog.Logger
}

// Round is one interleaved pair of measurements.
type Round struct {
	ModelFPS    float64 `json:"model_fps"`
	PipelineFPS float64 `json:"pipeline_fps"`
	Ratio       float64 `json:"pipeline_over_model"`
	// ModelCPUMS and PipelineCPUMS are the process's CPU time per frame,
	// every thread's: the pipeline's without opening its sessions.
	ModelCPUMS    float64 `json:"model_cpu_ms"`
	PipelineCPUMS float64 `json:"pipeline_cpu_ms"`
}

// Breakdown says where a pipeline frame's time goes, in milliseconds per
// frame, from the round of the median pipeline. ModelAloneMS and PipelineMS are wall time
// per frame of the whole process; the rest is per frame of one session
// (worker): the model alone would take SessionAloneMS of a session's time;
// in the pipeline reading frames into the model's input took ReadMS, Run
// InferMS (SlowdownMS more: cores shared with decode and the bus),
// post-processing PostMS, and the rest of the session's time, IdleMS, went
// to fetching frames, publishing results and waiting.
type Breakdown struct {
	ModelAloneMS   float64 `json:"model_alone_ms"`
	PipelineMS     float64 `json:"pipeline_ms"`
	GapMS          float64 `json:"gap_ms"`
	SessionAloneMS float64 `json:"session_alone_ms"`
	ReadMS         float64 `json:"read_ms"`
	InferMS        float64 `json:"infer_ms"`
	SlowdownMS     float64 `json:"slowdown_ms"`
	PostMS         float64 `json:"post_ms"`
	IdleMS         float64 `json:"idle_ms"`
	// DecodeMS is decode + letterbox on the ingest side, overlapping the
	// workers; QueueMS is a frame's mean time from publish to a worker.
	DecodeMS  float64 `json:"decode_ms"`
	QueueMS   float64 `json:"queue_ms"`
	BatchMean float64 `json:"batch_mean"`
	// CPU time per frame, every thread's: the model alone, the pipeline,
	// and what the pipeline adds (decode + letterbox, the bus, reading
	// frames, NMS, the coordinator). Where the model alone keeps every
	// core busy, as on a CPU, the added time comes off the same cores:
	// CPUCeiling, model ÷ pipeline CPU time, is the ratio the pipeline
	// could reach at best.
	ModelCPUMS    float64 `json:"model_cpu_ms"`
	PipelineCPUMS float64 `json:"pipeline_cpu_ms"`
	AddedCPUMS    float64 `json:"added_cpu_ms"`
	CPUCeiling    float64 `json:"cpu_ceiling"`
}

// Result is what `vidpipe bench` reports.
type Result struct {
	Video   string `json:"video"`
	Frames  int    `json:"frames"`
	Model   string `json:"model"`
	Input   int    `json:"input"`
	Batch   int    `json:"batch"`
	Workers int    `json:"workers"`
	Threads int    `json:"threads"`
	CPUs    int    `json:"cpus"`
	Device  string `json:"device"`
	// Precision and InputForm are what the sessions ran: fp32, tf32 or
	// fp16; float or u8.
	Precision string `json:"precision"`
	InputForm string `json:"input_form"`
	Codec     string `json:"codec"`
	// Pinned says the sessions' buffers are pinned host memory (CUDA).
	Pinned bool `json:"pinned"`

	// Model: ONNX Runtime alone on pre-letterboxed frames, the same
	// sessions, threads and batch, the sessions running at once; Pipeline:
	// `vidpipe run` end to end (embedded NATS, decode, workers,
	// coordinator), first frame published to last result. Each is the
	// median of the rounds; RatioMin and RatioMax are the spread of the
	// per-round ratios.
	ModelFPS        float64   `json:"model_fps"`
	PipelineFPS     float64   `json:"pipeline_fps"`
	PipelineOverORT float64   `json:"pipeline_over_model"`
	RatioMin        float64   `json:"ratio_min"`
	RatioMax        float64   `json:"ratio_max"`
	Rounds          []Round   `json:"rounds"`
	Breakdown       Breakdown `json:"breakdown"`
	// GPU is the device's utilisation during the pipeline rounds, from
	// nvidia-smi; nil without it.
	GPU *GPUUse `json:"gpu,omitempty"`

	// Reference is the bench's detections against float32 on the CPU.
	Reference *Reference `json:"reference"`

	// Matrix is the model alone across precisions, input forms and batch
	// sizes (Options.Matrix).
	Matrix []MatrixRow `json:"matrix,omitempty"`

	// Decode: ingest's decode + letterbox alone; FFmpegCLI: `ffmpeg -i X
	// -vf scale=W:H:flags=bilinear -f null -` on the same file.
	DecodeFPS        float64 `json:"decode_fps"`
	FFmpegCLIFPS     float64 `json:"ffmpeg_cli_fps"`
	DecodeOverFFmpeg float64 `json:"decode_over_ffmpeg"`
	// Frame codecs: what a frame costs on the bus, raw and as JPEG.
	RawFrameBytes  int     `json:"raw_frame_bytes"`
	JPEGFrameBytes int     `json:"jpeg_frame_bytes"`
	JPEGEncodeMS   float64 `json:"jpeg_encode_ms"`
	// ReadMS is what a worker spends per frame turning the message into
	// model input (the float conversion, or a copy for u8 input), raw and
	// JPEG (its decode included); CoresAt3000 are the worker cores that
	// takes at 3,000 frames/s.
	RawReadMS       float64 `json:"raw_read_ms"`
	JPEGReadMS      float64 `json:"jpeg_read_ms"`
	RawCoresAt3000  float64 `json:"raw_cores_at_3000"`
	JPEGCoresAt3000 float64 `json:"jpeg_cores_at_3000"`
	// JPEGMeanAbsDiff is the JPEG round trip's mean distance from the raw
	// frame, in levels over every byte.
	JPEGMeanAbsDiff float64 `json:"jpeg_mean_abs_diff"`
	// DecodeCPUMS is the CPU time decode + letterbox takes per frame (all
	// threads), and IngestCoresAt3000 the ingest cores that makes at 3,000
	// frames/s, raw frames (JPEG adds JPEGEncodeMS per frame).
	DecodeCPUMS       float64 `json:"decode_cpu_ms"`
	IngestCoresAt3000 float64 `json:"ingest_cores_at_3000"`

	// Preprocess is what the pipeline and the model ran on (DecodeFPS is
	// its decode rate); Preprocessing compares it with the other one.
	Preprocess    string        `json:"preprocess"`
	Preprocessing Preprocessing `json:"preprocessing"`
}

// Preprocessing compares the exact and fast preprocessings on the
// same video: decode + letterbox rates, pixel distance over every frame,
// and detection agreement on a few, exact taken as the reference.
type Preprocessing struct {
	ExactFPS      float64 `json:"exact_fps"`
	FastFPS       float64 `json:"fast_fps"`
	ExactMS       float64 `json:"exact_ms_per_frame"`
	FastMS        float64 `json:"fast_ms_per_frame"`
	PixelMaxDiff  int     `json:"pixel_max_diff"`  // levels, 0-255
	PixelMeanDiff float64 `json:"pixel_mean_diff"` // levels, over every byte of every frame

	DetFrames     int     `json:"det_frames"`
	DetConf       float64 `json:"det_conf"`
	DetExact      int     `json:"det_exact"`      // detections on the exact input
	DetMatched    int     `json:"det_matched"`    // same class, IoU > 0.9
	DetOnlyExact  int     `json:"det_only_exact"` // no partner on the fast input
	DetOnlyFast   int     `json:"det_only_fast"`
	DetMaxBoxDiff float64 `json:"det_max_box_diff_px"` // of matched pairs, model input pixels
}

// Run measures o.Video; it decodes the video several times, so a short clip
// suits it.
func Run(ctx context.Context, o Options) (*Result, error) {
	c := &o
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	logger := c.Logger
	c.Workers = max(c.Workers, 1)
	if c.Model == "" {
		var err error
		if c.Model, err = builtin.Path(c.ImgSize); err != nil {
			return nil, err
		}
	}
	dev, err := infer.ParseDevice(c.Device)
	if err != nil {
		return nil, err
	}
	// The sessions of the model alone, opened once: the same options as
	// the pipeline's workers.
	set, err := c.sessions(ctx, c.sessionOptions(c.Workers, c.Batch, c.Input, c.Half, c.FP32))
	if err != nil {
		return nil, err
	}
	defer set.Close()
	sess, lay := set.List[0], set.Layout
	size, _ := sess.InputSize()
	res := &Result{
		Video: c.Video, Model: c.Model, Input: size, Batch: set.Batch, Workers: c.Workers, Threads: set.Threads,
		CPUs: runtime.NumCPU(), Device: dev.String(), Precision: precision(dev, c.FP32, c.Half || lay.Float16),
		InputForm: inputForm(lay), Codec: c.Codec.String(), Pinned: sess.Pinned(),
	}
	c.Batch = set.Batch
	logger.Info("bench: model", "model", c.Model, "layout", lay.String(), "device", res.Device, "precision", res.Precision, "input", res.InputForm)

	pre := c.Preprocess
	res.Preprocess = pre.String()
	logger.Info("bench: decode + letterbox", "preprocess", pre)
	frames, decodeFPS, cpuMS, err := decodeAll(ctx, c.Video, size, pre)
	if err != nil {
		return nil, err
	}
	res.Frames, res.DecodeFPS, res.DecodeCPUMS = len(frames), decodeFPS, cpuMS
	res.IngestCoresAt3000 = round3(3 * cpuMS)
	if res.Frames == 0 {
		return nil, fmt.Errorf("bench %s: no frames decoded", c.Video)
	}
	logger.Info("bench: exact vs fast preprocessing")
	if err := c.comparePreprocessing(ctx, sess, lay, res, frames, pre, size); err != nil {
		return nil, err
	}

	logger.Info("bench: ffmpeg CLI")
	if res.FFmpegCLIFPS, err = ffmpegFPS(ctx, c.Video, size, res.Frames); err != nil {
		return nil, err
	}
	res.DecodeOverFFmpeg = round3(res.DecodeFPS / res.FFmpegCLIFPS)
	if err := codecCost(res, frames, size, lay.Bytes); err != nil {
		return nil, err
	}

	logger.Info("bench: detections against float32 on the CPU")
	if res.Reference, err = c.reference(ctx, sess, set, frames); err != nil {
		return nil, err
	}

	if len(c.Matrix) > 0 {
		if res.Matrix, err = c.matrix(ctx, dev, frames); err != nil {
			return nil, err
		}
	}

	gpu := startGPUSampler(ctx, dev)
	if err := c.rounds(ctx, set.List, frames, res); err != nil {
		gpu.stop()
		return nil, err
	}
	res.GPU = gpu.stop()
	return res, nil
}

// rounds measures the model alone and the pipeline, interleaved.
func (c *Options) rounds(ctx context.Context, sessions []*infer.Session, frames [][]byte, res *Result) error {
	rounds := max(c.Rounds, 1)
	stats := make([]*coordinator.Stats, rounds)
	for i := range rounds {
		var r Round
		// Alternate which goes first, so neither always runs warmer.
		steps := []func() error{
			func() (err error) {
				cpu0 := cpuTime()
				r.ModelFPS, err = modelAlone(ctx, sessions, frames, c.Batch, len(frames))
				r.ModelCPUMS = perFrame(cpuTime()-cpu0, len(frames))
				return err
			},
			func() (err error) {
				var cpu time.Duration
				stats[i], cpu, err = c.pipeline(ctx, res.Frames)
				if err == nil {
					r.PipelineFPS = stats[i].FPS
					r.PipelineCPUMS = perFrame(cpu, len(frames))
				}
				return err
			},
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		r.Ratio = round3(r.PipelineFPS / r.ModelFPS)
		res.Rounds = append(res.Rounds, r)
		c.Logger.Info("bench: round", "round", i+1, "of", rounds, "model_fps", r.ModelFPS, "pipeline_fps", r.PipelineFPS, "ratio", r.Ratio)
	}
	res.ModelFPS = medianOf(res.Rounds, func(r Round) float64 { return r.ModelFPS })
	res.PipelineFPS = medianOf(res.Rounds, func(r Round) float64 { return r.PipelineFPS })
	res.PipelineOverORT = medianOf(res.Rounds, func(r Round) float64 { return r.Ratio })
	res.RatioMin, res.RatioMax = res.Rounds[0].Ratio, res.Rounds[0].Ratio
	for _, r := range res.Rounds {
		res.RatioMin, res.RatioMax = min(res.RatioMin, r.Ratio), max(res.RatioMax, r.Ratio)
	}
	// The breakdown is one round's, the pipeline's median (the lower of
	// the middle two for an even count), so its parts add up.
	order := make([]int, rounds)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(res.Rounds[a].PipelineFPS, res.Rounds[b].PipelineFPS) })
	m := order[(rounds-1)/2]
	st, r := stats[m].StagesMS, res.Rounds[m]
	w := float64(c.Workers)
	b := Breakdown{
		ModelAloneMS: round3(1000 / r.ModelFPS), PipelineMS: round3(1000 / r.PipelineFPS),
		DecodeMS: st.Decode.Mean, QueueMS: st.Queue.Mean, ReadMS: st.Read.Mean, InferMS: st.Infer.Mean, PostMS: st.Post.Mean, BatchMean: stats[m].BatchMean,
	}
	b.GapMS = round3(b.PipelineMS - b.ModelAloneMS)
	b.SessionAloneMS = round3(w * b.ModelAloneMS)
	b.SlowdownMS = round3(b.InferMS - b.SessionAloneMS)
	b.IdleMS = round3(w*b.PipelineMS - b.ReadMS - b.InferMS - b.PostMS)
	b.ModelCPUMS, b.PipelineCPUMS = r.ModelCPUMS, r.PipelineCPUMS
	b.AddedCPUMS = round3(b.PipelineCPUMS - b.ModelCPUMS)
	b.CPUCeiling = round3(b.ModelCPUMS / b.PipelineCPUMS)
	res.Breakdown = b
	return nil
}

// sessionOptions are the pipeline's session options with n sessions of
// batch batch, input form in and the precision asked.
func (c *Options) sessionOptions(n, batch int, in string, half, fp32 bool) workers.SessionOptions {
	return workers.SessionOptions{
		Sessions: n, Threads: c.Threads, Batch: batch, Device: c.Device,
		FP32: fp32, Half: half, Input: in, Candidates: c.Candidates,
	}
}

// sessions loads the model and opens sessions of it with so.
func (c *Options) sessions(ctx context.Context, so workers.SessionOptions) (*workers.Sessions, error) {
	mdl, err := workers.LoadModel(ctx, c.Model, c.ImgSize, nil, c.Logger)
	if err != nil {
		return nil, err
	}
	return workers.OpenSessions(ctx, mdl, so, c.Logger)
}

// pipeline runs the video once through the embedded job service, as
// `vidpipe run` would, and returns its statistics and the CPU time it took
// from the job's submission (its sessions are open by then) to its end.
func (c *Options) pipeline(ctx context.Context, frames int) (*coordinator.Stats, time.Duration, error) {
	// Loaded afresh each round, as a run does: sessions release the bytes.
	mdl, err := workers.LoadModel(ctx, c.Model, c.ImgSize, nil, c.Logger)
	if err != nil {
		return nil, 0, err
	}
	out, err := os.MkdirTemp("", "vidpipe-bench-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(out)
	annotate := false
	pre := c.Preprocess
	var cpu0 time.Duration
	rec, err := embedded.Run(ctx, embedded.Config{
		Model:       mdl,
		Sessions:    c.sessionOptions(c.Workers, c.Batch, c.Input, c.Half, c.FP32),
		Worker:      workers.Options{NMS: detect.DefaultNMSOptions(), Logger: c.Logger},
		Service:     jobs.Options{Out: out, OutIsJobFolder: true},
		Ingest:      ingest.Options{Decode: decode.Options{Every: 1, Preprocess: pre}, Codec: c.Codec, Logger: c.Logger},
		Concurrency: 1, Logger: c.Logger,
		OnRecord: func(*jobs.Record) {
			if cpu0 == 0 {
				cpu0 = cpuTime()
			}
		},
	}, jobs.Spec{Name: "bench", Inputs: []string{c.Video}, Every: 1, Preprocess: pre.String(), Annotate: &annotate})
	cpu := cpuTime() - cpu0
	if err != nil {
		return nil, 0, err
	}
	if len(rec.Videos) != 1 || rec.Videos[0].Stats == nil || rec.Videos[0].Stats.Frames != frames {
		return nil, 0, fmt.Errorf("bench %s: pipeline analysed %d of the %d frames decode found (%s)", c.Video, rec.Progress.Done, frames, rec.State)
	}
	return rec.Videos[0].Stats, cpu, nil
}

// precision names what a session computes in.
func precision(d infer.Device, fp32, half bool) string {
	switch {
	case half:
		return "fp16"
	case d.Kind == infer.CUDA && !fp32:
		return "tf32"
	}
	return "fp32"
}

func inputForm(l *layout.Layout) string {
	if l.Bytes {
		return workers.InputU8
	}
	return workers.InputFloat
}

// medianOf is the median of f over rounds (the mean of the middle two for
// an even count).
func medianOf(rounds []Round, f func(Round) float64) float64 {
	v := make([]float64, len(rounds))
	for i, r := range rounds {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return round3((v[n/2-1] + v[n/2]) / 2)
}

// decodeAll decodes and letterboxes every frame, keeping copies, and
// returns the decode rate and the CPU time per frame it took (copies
// excluded from both).
func decodeAll(ctx context.Context, video string, size int, pre decode.Preprocess) ([][]byte, float64, float64, error) {
	dec, err := decode.Open(ctx, video, nil, decode.Options{Size: size, Preprocess: pre})
	if err != nil {
		return nil, 0, 0, err
	}
	defer dec.Close()
	var frames [][]byte
	var spent, cpu time.Duration
	for {
		t0, c0 := time.Now(), cpuTime()
		f, err := dec.Next(ctx)
		spent += time.Since(t0)
		cpu += cpuTime() - c0
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, 0, err
		}
		frames = append(frames, bytes.Clone(f.Letterbox))
	}
	n := float64(len(frames))
	return frames, round3(n / spent.Seconds()), round3(cpu.Seconds() * 1000 / n), nil
}

// perFrame is d per frame, in milliseconds.
func perFrame(d time.Duration, frames int) float64 {
	return round3(d.Seconds() * 1000 / float64(frames))
}

// cpuTime is the CPU time the process has used, every thread's.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ffmpegFPS runs `ffmpeg -i X -vf scale=W:H:flags=bilinear -f null -` on
// the same file and takes ffmpeg's own -benchmark real time, which leaves
// out its start-up and probing: the comparison leans against us.
func ffmpegFPS(ctx context.Context, video string, size, frames int) (float64, error) {
	w, h, err := probeSize(ctx, video)
	if err != nil {
		return 0, err
	}
	r := min(float64(size)/float64(w), float64(size)/float64(h))
	scale := fmt.Sprintf("scale=%d:%d:flags=bilinear", int(float64(w)*r+0.5), int(float64(h)*r+0.5))
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostats", "-benchmark", "-i", video, "-vf", scale, "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ffmpeg %s: %w: %s", video, err, out)
	}
	m := rtime.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("ffmpeg %s: no -benchmark line in its output", video)
	}
	secs, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("ffmpeg %s: benchmark time %q", video, m[1])
	}
	return round3(float64(frames) / secs), nil
}

var rtime = regexp.MustCompile(`rtime=([0-9.]+)s`)

func probeSize(ctx context.Context, video string) (int, int, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=p=0:s=x", video).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("ffprobe %s: %w", video, err)
	}
	var w, h int
	if _, err := fmt.Sscanf(string(bytes.TrimSpace(out)), "%dx%d", &w, &h); err != nil {
		return 0, 0, fmt.Errorf("ffprobe %s: %q: %w", video, out, err)
	}
	return w, h, nil
}

// load puts a batch of packed RGB letterboxes into the session's input as
// its model takes them: the bytes themselves, or planar floats.
func load(sess *infer.Session, frames [][]byte) error {
	per := len(frames[0])
	if sess.Bytes() {
		in, err := sess.InputBytes(len(frames))
		if err != nil {
			return err
		}
		for j, f := range frames {
			copy(in[j*per:(j+1)*per], f)
		}
		return nil
	}
	in, err := sess.Input(len(frames))
	if err != nil {
		return err
	}
	for j, f := range frames {
		detect.Planar(in[j*per:(j+1)*per], f)
	}
	return nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// comparePreprocessing decodes the video again with the other preprocessing,
// timing it, measuring its pixels against frames (decoded with pre), and
// running the model on both inputs of c.CompareFrames evenly spaced frames.
func (c *Options) comparePreprocessing(ctx context.Context, sess *infer.Session, lay *layout.Layout, res *Result, frames [][]byte, pre decode.Preprocess, size int) error {
	other := decode.PreprocessFast
	if pre == decode.PreprocessFast {
		other = decode.PreprocessExact
	}
	dec, err := decode.Open(ctx, c.Video, nil, decode.Options{Size: size, Preprocess: other})
	if err != nil {
		return err
	}
	defer dec.Close()
	every := max(1, len(frames)/max(1, c.CompareFrames))
	var exact, fast [][]byte // the compared frames in each preprocessing
	var spent time.Duration
	var sum, total int64
	p := &res.Preprocessing
	for i := 0; ; i++ {
		t0 := time.Now()
		f, err := dec.Next(ctx)
		spent += time.Since(t0)
		if errors.Is(err, io.EOF) {
			if i != len(frames) {
				return fmt.Errorf("bench %s: %s preprocessing gave %d frames, %s %d", c.Video, other, i, pre, len(frames))
			}
			break
		}
		if err != nil {
			return err
		}
		if i >= len(frames) {
			return fmt.Errorf("bench %s: %s preprocessing gave more frames than %s's %d", c.Video, other, pre, len(frames))
		}
		for j, v := range f.Letterbox {
			d := int(v) - int(frames[i][j])
			d = max(d, -d)
			sum += int64(d)
			p.PixelMaxDiff = max(p.PixelMaxDiff, d)
		}
		total += int64(len(f.Letterbox))
		if i%every == 0 && len(exact) < c.CompareFrames {
			x, y := frames[i], bytes.Clone(f.Letterbox)
			if pre == decode.PreprocessFast {
				x, y = y, x
			}
			exact, fast = append(exact, x), append(fast, y)
		}
	}
	otherFPS := round3(float64(len(frames)) / spent.Seconds())
	p.ExactFPS, p.FastFPS = res.DecodeFPS, otherFPS
	if pre == decode.PreprocessFast {
		p.ExactFPS, p.FastFPS = otherFPS, res.DecodeFPS
	}
	p.ExactMS, p.FastMS = round3(1000/p.ExactFPS), round3(1000/p.FastFPS)
	p.PixelMeanDiff = round3(float64(sum) / float64(total))

	det, err := newDetector(sess, lay, c.CompareConf)
	if err != nil {
		return err
	}
	agree, n, err := compare(ctx, det, det, exact, fast)
	if err != nil {
		return err
	}
	p.DetExact = n
	p.DetFrames, p.DetConf = len(exact), c.CompareConf
	p.DetMatched, p.DetOnlyExact, p.DetOnlyFast = agree.Matched, agree.OnlyA, agree.OnlyB
	p.DetMaxBoxDiff = round3(agree.MaxBoxDiff)
	return nil
}
