// Package bench reproduces the RepYOLOv5s inference comparison on this
// machine: yolov5s, RepYOLOv5s in training form and RepYOLOv5s fused, run by
// ONNX Runtime on the same inputs with the same threads, interleaved so that
// drift in machine load hits every model alike.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// Options select what to measure.
type Options struct {
	Sizes   []int  // input sizes, default [640]
	Batches []int  // batch sizes, default [1, 8]
	Rep     string // RepVGG variant: "all" (default) or "downsample"
	Threads int    // ONNX Runtime intra-op threads, 0 = all cores
	Runs    int    // timed runs per model and batch, default 20
	Warmup  int    // untimed runs first, default 3
	Device  string // cpu, cuda, cuda:N
	Logger  *slog.Logger
}

func (o Options) withDefaults() Options {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{640}
	}
	if len(o.Batches) == 0 {
		o.Batches = []int{1, 8}
	}
	if o.Rep == "" {
		o.Rep = "all"
	}
	if o.Runs <= 0 {
		o.Runs = 20
	}
	if o.Warmup <= 0 {
		o.Warmup = 3
	}
	if o.Device == "" {
		o.Device = "cpu"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// The three models compared.
const (
	YOLOv5s  = "yolov5s (fused)"
	RepTrain = "repyolov5s train form"
	RepFused = "repyolov5s fused"
)

// Latency is per-image time at one batch size.
type Latency struct {
	Batch    int     `json:"batch"`
	MedianMS float64 `json:"median_ms_per_image"`
	P90MS    float64 `json:"p90_ms_per_image"`
	// VsYOLOv5s is this model's median over yolov5s's at the same batch.
	VsYOLOv5s float64 `json:"ratio_to_yolov5s"`
}

// Row is one model at one input size.
type Row struct {
	Model   string    `json:"model"`
	Size    int       `json:"imgsz"`
	Params  int64     `json:"params"`
	GFLOPs  float64   `json:"gflops"`
	Latency []Latency `json:"latency"`
}

// Result is one whole comparison.
type Result struct {
	Device  string `json:"device"`
	Threads int    `json:"threads"`
	CPUs    int    `json:"cpus"`
	Rep     string `json:"rep"`
	Runs    int    `json:"runs"`
	Rows    []Row  `json:"rows"`
	// TrainOverFused is training-form median ÷ fused median, per size and
	// batch ("640/b1"): the cost of not fusing.
	TrainOverFused map[string]float64 `json:"train_over_fused"`
	// FusedOverYOLOv5s is fused RepYOLOv5s median ÷ yolov5s median: fusion
	// should leave nothing to pay.
	FusedOverYOLOv5s map[string]float64 `json:"fused_over_yolov5s"`
}

type candidate struct {
	name   string
	model  *onnx.Model
	sess   *infer.Session
	times  map[int][]float64 // batch -> ms per image
	params int64
	gflops float64
}

// Models builds the three compared models at one size.
func Models(size int, rep string) (yolov5s, train, fused *onnx.Model, err error) {
	base := yolo.Config{Width: 0.5, Depth: 0.33, ImgSize: size, Classes: 80}
	ycfg := base
	ycfg.Arch = "yolov5s"
	if yolov5s, err = yolo.Build(ycfg); err != nil {
		return nil, nil, nil, err
	}
	if _, err = fuse.Model(yolov5s); err != nil {
		return nil, nil, nil, fmt.Errorf("fuse yolov5s: %w", err)
	}
	rcfg := base
	rcfg.Arch, rcfg.Rep = "repyolov5s", rep
	if train, err = yolo.Build(rcfg); err != nil {
		return nil, nil, nil, err
	}
	// Same weights, fused: decode the training form's encoding afresh.
	if fused, err = onnx.Decode(onnx.Encode(train)); err != nil {
		return nil, nil, nil, err
	}
	if _, err = fuse.Model(fused); err != nil {
		return nil, nil, nil, fmt.Errorf("fuse repyolov5s: %w", err)
	}
	return yolov5s, train, fused, nil
}

// Run measures every model at every size and batch.
func Run(ctx context.Context, o Options) (*Result, error) {
	o = o.withDefaults()
	threads := o.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	res := &Result{
		Device: o.Device, Threads: threads, CPUs: runtime.NumCPU(), Rep: o.Rep, Runs: o.Runs,
		TrainOverFused: map[string]float64{}, FusedOverYOLOv5s: map[string]float64{},
	}
	maxBatch := slices.Max(o.Batches)
	for _, size := range o.Sizes {
		y, t, f, err := Models(size, o.Rep)
		if err != nil {
			return nil, err
		}
		cands := []*candidate{{name: YOLOv5s, model: y}, {name: RepTrain, model: t}, {name: RepFused, model: f}}
		if err := measure(ctx, o, size, threads, maxBatch, cands); err != nil {
			return nil, err
		}
		medians := map[string]map[int]float64{}
		for _, c := range cands {
			medians[c.name] = map[int]float64{}
			for _, b := range o.Batches {
				medians[c.name][b] = percentile(c.times[b], 0.5)
			}
		}
		for _, c := range cands {
			row := Row{Model: c.name, Size: size, Params: c.params, GFLOPs: c.gflops}
			for _, b := range o.Batches {
				row.Latency = append(row.Latency, Latency{
					Batch: b, MedianMS: round(medians[c.name][b]), P90MS: round(percentile(c.times[b], 0.9)),
					VsYOLOv5s: round(medians[c.name][b] / medians[YOLOv5s][b]),
				})
			}
			res.Rows = append(res.Rows, row)
		}
		for _, b := range o.Batches {
			key := fmt.Sprintf("%d/b%d", size, b)
			res.TrainOverFused[key] = round(medians[RepTrain][b] / medians[RepFused][b])
			res.FusedOverYOLOv5s[key] = round(medians[RepFused][b] / medians[YOLOv5s][b])
		}
	}
	return res, nil
}

func measure(ctx context.Context, o Options, size, threads, maxBatch int, cands []*candidate) error {
	for _, c := range cands {
		c.params = onnx.Params(c.model.Graph)
		flops, err := onnx.ConvFLOPs(c.model.Graph, []int64{1, 3, int64(size), int64(size)})
		if err != nil {
			return fmt.Errorf("count flops of %s: %w", c.name, err)
		}
		c.gflops = round(float64(flops) / 1e9)
		sess, err := infer.Open(ctx, onnx.Encode(c.model), c.name, infer.Options{Threads: threads, Device: o.Device, MaxBatch: maxBatch})
		if err != nil {
			return err
		}
		defer sess.Close()
		c.sess = sess
		c.times = map[int][]float64{}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range o.Batches {
		// The same random images for every model.
		images := make([]float32, b*3*size*size)
		for i := range images {
			images[i] = rng.Float32()
		}
		for round := -o.Warmup; round < o.Runs; round++ {
			for _, c := range cands {
				in, err := c.sess.Input(b)
				if err != nil {
					return err
				}
				copy(in, images)
				t0 := time.Now()
				if _, err := c.sess.Run(ctx, b); err != nil {
					return err
				}
				if round >= 0 {
					c.times[b] = append(c.times[b], time.Since(t0).Seconds()*1000/float64(b))
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		o.Logger.Info("measured", "imgsz", size, "batch", b, "runs", o.Runs)
	}
	return nil
}

// percentile is the nearest-rank percentile of v (sorted in place).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	i := int(p*float64(len(v))+0.5) - 1
	return v[min(max(i, 0), len(v)-1)]
}

func round(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// WriteTable prints the comparison for a terminal.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\timgsz\tparams\tGFLOPs\t")
	for _, l := range r.Rows[0].Latency {
		fmt.Fprintf(tw, "b%d median ms/img\tb%d p90\tb%d vs yolov5s\t", l.Batch, l.Batch, l.Batch)
	}
	fmt.Fprintln(tw)
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t", row.Model, row.Size, row.Params, row.GFLOPs)
		for _, l := range row.Latency {
			fmt.Fprintf(tw, "%.2f\t%.2f\t%.3f\t", l.MedianMS, l.P90MS, l.VsYOLOv5s)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s, %d threads on %d CPUs, rep=%s, %d runs each (interleaved)\n", r.Device, r.Threads, r.CPUs, r.Rep, r.Runs)
	for _, k := range sortedKeys(r.TrainOverFused) {
		fmt.Fprintf(w, "%s: train form ÷ fused = %.3f, fused RepYOLOv5s ÷ yolov5s = %.3f\n", k, r.TrainOverFused[k], r.FusedOverYOLOv5s[k])
	}
	return nil
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
