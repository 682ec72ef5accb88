// Package runbench measures what `vidpipe run` costs against its limits on
// one video: decode and letterbox alone (both preprocessings, and the
// ffmpeg CLI doing the same), the model alone on those frames, and the
// pipeline end to end through the embedded job service, so a slow stage
// shows as the ratio to its limit.
package runbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"
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
	Video      string
	Model      string // ONNX path; empty: the built-in model
	ImgSize    int
	Batch      int
	Threads    int // 0: every core
	Preprocess decode.Preprocess
	// CompareFrames, evenly spaced, get the model on both preprocessings'
	// input; CompareConf is that comparison's confidence threshold.
	CompareFrames int
	CompareConf   float64
	// Rounds of the model alone and the pipeline, interleaved so that drift
	// in the machine's load hits both alike; medians are reported.
	Rounds int
	Logger *slog.Logger
}

// Round is one interleaved pair of measurements.
type Round struct {
	ModelFPS    float64 `json:"model_fps"`
	PipelineFPS float64 `json:"pipeline_fps"`
	Ratio       float64 `json:"pipeline_over_model"`
}

// Breakdown says where a pipeline frame's time goes, in milliseconds per
// frame, from the median round: the model alone against the pipeline's
// wall time, and the pipeline's own stage means (decode + letterbox runs
// on the same cores as inference, so its cost shows as the gap).
type Breakdown struct {
	ModelAloneMS float64 `json:"model_alone_ms"`
	PipelineMS   float64 `json:"pipeline_ms"`
	GapMS        float64 `json:"gap_ms"`
	DecodeMS     float64 `json:"decode_ms"`
	QueueMS      float64 `json:"queue_ms"`
	InferMS      float64 `json:"infer_ms"`
	PostMS       float64 `json:"post_ms"`
	BatchMean    float64 `json:"batch_mean"`
}

// Result is what `vidpipe bench` reports.
type Result struct {
	Video   string `json:"video"`
	Frames  int    `json:"frames"`
	Model   string `json:"model"`
	Input   int    `json:"input"`
	Batch   int    `json:"batch"`
	Threads int    `json:"threads"`
	CPUs    int    `json:"cpus"`

	// Model: ONNX Runtime alone on pre-letterboxed frames, same threads and
	// batch; Pipeline: `vidpipe run` end to end (embedded NATS, decode,
	// workers, coordinator), first frame published to last result.
	// Each is the median of the rounds; RatioMin and RatioMax are the
	// spread of the per-round ratios.
	ModelFPS        float64   `json:"model_fps"`
	PipelineFPS     float64   `json:"pipeline_fps"`
	PipelineOverORT float64   `json:"pipeline_over_model"`
	RatioMin        float64   `json:"ratio_min"`
	RatioMax        float64   `json:"ratio_max"`
	Rounds          []Round   `json:"rounds"`
	Breakdown       Breakdown `json:"breakdown"`

	// Decode: ingest's decode + letterbox alone; FFmpegCLI: `ffmpeg -i X
	// -vf scale=W:H:flags=bilinear -f null -` on the same file.
	DecodeFPS        float64 `json:"decode_fps"`
	FFmpegCLIFPS     float64 `json:"ffmpeg_cli_fps"`
	DecodeOverFFmpeg float64 `json:"decode_over_ffmpeg"`
	RawFrameBytes    int     `json:"raw_frame_bytes"`
	JPEGFrameBytes   int     `json:"jpeg_frame_bytes"`
	JPEGEncodeMS     float64 `json:"jpeg_encode_ms"`
	JPEGDecodeMS     float64 `json:"jpeg_decode_ms"`
	RawCopyMS        float64 `json:"raw_copy_ms"`

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
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &o
	modelPath := c.Model
	if modelPath == "" {
		var err error
		if modelPath, err = builtin.Path(c.ImgSize); err != nil {
			return nil, err
		}
	}
	threads := c.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	sess, lay, err := layout.OpenFile(ctx, modelPath, infer.Options{Threads: threads, MaxBatch: c.Batch, ImgSize: c.ImgSize})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	logger.Info("bench: model", "model", modelPath, "layout", lay.String())
	size, _ := sess.InputSize()
	res := &Result{Video: c.Video, Model: modelPath, Input: size, Batch: c.Batch, Threads: threads, CPUs: runtime.NumCPU()}

	pre := c.Preprocess
	res.Preprocess = pre.String()
	logger.Info("bench: decode + letterbox", "preprocess", pre)
	frames, decodeFPS, err := decodeAll(ctx, c.Video, size, pre)
	if err != nil {
		return nil, err
	}
	res.Frames, res.DecodeFPS = len(frames), decodeFPS
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

	rounds := max(c.Rounds, 1)
	var median *coordinator.Stats
	stats := make([]*coordinator.Stats, rounds)
	for i := range rounds {
		var r Round
		// Alternate which goes first, so neither always runs warmer.
		steps := []func() error{
			func() (err error) {
				r.ModelFPS, err = modelFPS(ctx, sess, frames, c.Batch)
				return err
			},
			func() (err error) {
				stats[i], err = c.pipeline(ctx, modelPath, threads, pre, res.Frames, logger)
				if err == nil {
					r.PipelineFPS = stats[i].FPS
				}
				return err
			},
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
		r.Ratio = round3(r.PipelineFPS / r.ModelFPS)
		res.Rounds = append(res.Rounds, r)
		logger.Info("bench: round", "round", i+1, "of", rounds, "model_fps", r.ModelFPS, "pipeline_fps", r.PipelineFPS, "ratio", r.Ratio)
	}
	res.ModelFPS = medianOf(res.Rounds, func(r Round) float64 { return r.ModelFPS })
	res.PipelineFPS = medianOf(res.Rounds, func(r Round) float64 { return r.PipelineFPS })
	res.PipelineOverORT = medianOf(res.Rounds, func(r Round) float64 { return r.Ratio })
	res.RatioMin, res.RatioMax = res.Rounds[0].Ratio, res.Rounds[0].Ratio
	for i, r := range res.Rounds {
		res.RatioMin, res.RatioMax = min(res.RatioMin, r.Ratio), max(res.RatioMax, r.Ratio)
		if median == nil && r.PipelineFPS == res.PipelineFPS {
			median = stats[i]
		}
	}
	if median == nil { // an even count's median lies between two rounds
		median = stats[len(stats)/2]
	}
	st := median.StagesMS
	res.Breakdown = Breakdown{
		ModelAloneMS: round3(1000 / res.ModelFPS), PipelineMS: round3(1000 / res.PipelineFPS),
		DecodeMS: st.Decode.Mean, QueueMS: st.Queue.Mean, InferMS: st.Infer.Mean, PostMS: st.Post.Mean, BatchMean: median.BatchMean,
	}
	res.Breakdown.GapMS = round3(res.Breakdown.PipelineMS - res.Breakdown.ModelAloneMS)
	res.DecodeOverFFmpeg = round3(res.DecodeFPS / res.FFmpegCLIFPS)

	codecCost(res, frames[0], size)

	return res, nil
}

// pipeline runs the video once through the embedded job service, as
// `vidpipe run` would, and returns its statistics.
func (c *Options) pipeline(ctx context.Context, modelPath string, threads int, pre decode.Preprocess, frames int, logger *slog.Logger) (*coordinator.Stats, error) {
	// Loaded afresh each round, as a run does: sessions release the bytes.
	mdl, err := workers.LoadModel(ctx, modelPath, c.ImgSize, nil, logger)
	if err != nil {
		return nil, err
	}
	out, err := os.MkdirTemp("", "vidpipe-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	annotate := false
	rec, err := embedded.Run(ctx, embedded.Config{
		Model:       mdl,
		Sessions:    workers.SessionOptions{Sessions: 1, Threads: threads, Batch: c.Batch, Device: "cpu"},
		Worker:      workers.Options{NMS: detect.DefaultNMSOptions(), Logger: logger},
		Service:     jobs.Options{Out: out, OutIsJobFolder: true},
		Ingest:      ingest.Options{Decode: decode.Options{Every: 1, Preprocess: pre}, Codec: bus.Raw, Logger: logger},
		Concurrency: 1, Logger: logger,
	}, jobs.Spec{Name: "bench", Inputs: []string{c.Video}, Every: 1, Preprocess: pre.String(), Annotate: &annotate})
	if err != nil {
		return nil, err
	}
	if len(rec.Videos) != 1 || rec.Videos[0].Stats == nil || rec.Videos[0].Stats.Frames != frames {
		return nil, fmt.Errorf("bench %s: pipeline analysed %d of the %d frames decode found (%s)", c.Video, rec.Progress.Done, frames, rec.State)
	}
	return rec.Videos[0].Stats, nil
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
// returns the decode rate (copies excluded).
func decodeAll(ctx context.Context, video string, size int, pre decode.Preprocess) ([][]byte, float64, error) {
	dec, err := decode.Open(ctx, video, nil, decode.Options{Size: size, Preprocess: pre})
	if err != nil {
		return nil, 0, err
	}
	defer dec.Close()
	var frames [][]byte
	var spent time.Duration
	for {
		t0 := time.Now()
		f, err := dec.Next(ctx)
		spent += time.Since(t0)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		frames = append(frames, bytes.Clone(f.Letterbox))
	}
	return frames, round3(float64(len(frames)) / spent.Seconds()), nil
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

// modelFPS runs the model alone over the frames, batch by batch, timing
// Session.Run only: the input is filled outside the clock, so this is the
// limit the pipeline is compared against.
func modelFPS(ctx context.Context, sess *infer.Session, frames [][]byte, batch int) (float64, error) {
	var spent time.Duration
	for i := 0; i < len(frames); i += batch {
		n := min(batch, len(frames)-i)
		if err := load(sess, frames[i:i+n]); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if _, err := sess.Run(ctx, n); err != nil {
			return 0, err
		}
		spent += time.Since(t0)
	}
	return round3(float64(len(frames)) / spent.Seconds()), nil
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

// codecCost measures what each frame encoding costs: the numbers behind
// choosing raw frames by default.
func codecCost(res *Result, frame []byte, size int) {
	const reps = 20
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i, j := 0, 0; i+2 < len(frame); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = frame[i], frame[i+1], frame[i+2], 255
	}
	var buf bytes.Buffer
	t0 := time.Now()
	for range reps {
		buf.Reset()
		_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	res.JPEGEncodeMS = round3(time.Since(t0).Seconds() * 1000 / reps)
	res.JPEGFrameBytes = buf.Len()
	t0 = time.Now()
	for range reps {
		_, _ = jpeg.Decode(bytes.NewReader(buf.Bytes()))
	}
	res.JPEGDecodeMS = round3(time.Since(t0).Seconds() * 1000 / reps)
	dst := make([]byte, len(frame))
	t0 = time.Now()
	for range reps {
		copy(dst, frame)
	}
	res.RawCopyMS = round3(time.Since(t0).Seconds() * 1000 / reps)
	res.RawFrameBytes = len(frame)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Write prints the result for a terminal.
func (r *Result) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "video\t%s (%d frames)\n", r.Video, r.Frames)
	fmt.Fprintf(tw, "model\t%s (input %d, batch %d, %d threads on %d CPUs)\n", r.Model, r.Input, r.Batch, r.Threads, r.CPUs)
	fmt.Fprintf(tw, "pipeline end to end\t%.2f frames/s (median of %d rounds)\n", r.PipelineFPS, len(r.Rounds))
	fmt.Fprintf(tw, "ONNX Runtime alone\t%.2f frames/s (median)\n", r.ModelFPS)
	fmt.Fprintf(tw, "  pipeline ÷ model\t%.3f median, %.3f to %.3f over the rounds (target >= 0.95)\n", r.PipelineOverORT, r.RatioMin, r.RatioMax)
	b := r.Breakdown
	fmt.Fprintf(tw, "  ms per frame\tmodel alone %.2f, pipeline %.2f (gap %.2f); pipeline stage means: decode %.2f, queued %.2f, infer %.2f, post %.2f; mean batch %.2f\n",
		b.ModelAloneMS, b.PipelineMS, b.GapMS, b.DecodeMS, b.QueueMS, b.InferMS, b.PostMS, b.BatchMean)
	fmt.Fprintf(tw, "decode + letterbox\t%.1f frames/s (preprocess %s)\n", r.DecodeFPS, r.Preprocess)
	fmt.Fprintf(tw, "ffmpeg CLI decode + scale\t%.1f frames/s\n", r.FFmpegCLIFPS)
	fmt.Fprintf(tw, "  decode ÷ ffmpeg\t%.3f (target >= 0.8)\n", r.DecodeOverFFmpeg)
	p := r.Preprocessing
	fmt.Fprintf(tw, "preprocess exact\t%.1f frames/s decode + letterbox (%.2f ms a frame)\n", p.ExactFPS, p.ExactMS)
	fmt.Fprintf(tw, "preprocess fast\t%.1f frames/s decode + letterbox (%.2f ms a frame)\n", p.FastFPS, p.FastMS)
	fmt.Fprintf(tw, "  fast vs exact pixels\tmax %d, mean %.3f levels over %d frames\n", p.PixelMaxDiff, p.PixelMeanDiff, r.Frames)
	fmt.Fprintf(tw, "  fast vs exact detections\t%d of %d matched (same class, IoU > 0.9), %d only on exact, %d only on fast, max box diff %.2f px (%d frames, conf %g)\n",
		p.DetMatched, p.DetExact, p.DetOnlyExact, p.DetOnlyFast, p.DetMaxBoxDiff, p.DetFrames, p.DetConf)
	fmt.Fprintf(tw, "raw frame\t%d bytes, %.3f ms to copy\n", r.RawFrameBytes, r.RawCopyMS)
	fmt.Fprintf(tw, "jpeg frame (q90)\t%d bytes, %.2f ms to encode + %.2f ms to decode\n", r.JPEGFrameBytes, r.JPEGEncodeMS, r.JPEGDecodeMS)
	return tw.Flush()
}

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
	type pair struct{ exact, fast []byte }
	var pairs []pair
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
		if i%every == 0 && len(pairs) < c.CompareFrames {
			q := pair{frames[i], bytes.Clone(f.Letterbox)}
			if pre == decode.PreprocessFast {
				q.exact, q.fast = q.fast, q.exact
			}
			pairs = append(pairs, q)
		}
	}
	otherFPS := round3(float64(len(frames)) / spent.Seconds())
	p.ExactFPS, p.FastFPS = res.DecodeFPS, otherFPS
	if pre == decode.PreprocessFast {
		p.ExactFPS, p.FastFPS = otherFPS, res.DecodeFPS
	}
	p.ExactMS, p.FastMS = round3(1000/p.ExactFPS), round3(1000/p.FastFPS)
	p.PixelMeanDiff = round3(float64(sum) / float64(total))

	post, err := detect.NewPostprocessor(detect.NMSOptions{Conf: float32(c.CompareConf), IoU: 0.45, MaxDet: bus.MaxDet})
	if err != nil {
		return err
	}
	var agree detect.Agreement
	rows := lay.NewDecoder()
	for _, q := range pairs {
		a, err := detectOne(ctx, sess, rows, lay.Cols(), post, q.exact)
		if err != nil {
			return err
		}
		b, err := detectOne(ctx, sess, rows, lay.Cols(), post, q.fast)
		if err != nil {
			return err
		}
		p.DetExact += len(a)
		agree.Agree(a, b, 0.9)
	}
	p.DetFrames, p.DetConf = len(pairs), c.CompareConf
	p.DetMatched, p.DetOnlyExact, p.DetOnlyFast = agree.Matched, agree.OnlyA, agree.OnlyB
	p.DetMaxBoxDiff = round3(agree.MaxBoxDiff)
	return nil
}

// detectOne runs the model on one packed RGB letterbox and decodes its
// outputs as the layout decided at load says.
func detectOne(ctx context.Context, sess *infer.Session, dec *layout.Decoder, cols int, post *detect.Postprocessor, rgb []byte) ([]detect.Detection, error) {
	if err := load(sess, [][]byte{rgb}); err != nil {
		return nil, err
	}
	outs, err := sess.Run(ctx, 1)
	if err != nil {
		return nil, err
	}
	rows, n, err := dec.Rows(outs, 0, post.Options().Conf)
	if err != nil {
		return nil, err
	}
	return post.NMS(nil, rows, n, cols)
}
