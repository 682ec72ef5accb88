package runbench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Write prints the result for a terminal.
func (r *Result) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "video\t%s (%d frames)\n", r.Video, r.Frames)
	fmt.Fprintf(tw, "model\t%s (input %d, %s, %s input)\n", r.Model, r.Input, r.Precision, r.InputForm)
	host := "Go memory"
	if r.Pinned {
		host = "pinned host memory"
	}
	fmt.Fprintf(tw, "sessions\t%d x %d threads on %s (%d CPUs), batch %d, %s frames, buffers in %s\n", r.Workers, r.Threads, r.Device, r.CPUs, r.Batch, r.Codec, host)
	fmt.Fprintf(tw, "pipeline end to end\t%.2f frames/s (median of %d rounds)\n", r.PipelineFPS, len(r.Rounds))
	fmt.Fprintf(tw, "ONNX Runtime alone\t%.2f frames/s (median)\n", r.ModelFPS)
	fmt.Fprintf(tw, "  pipeline ÷ model\t%.3f median, %.3f to %.3f over the rounds\n", r.PipelineOverORT, r.RatioMin, r.RatioMax)
	b := r.Breakdown
	fmt.Fprintf(tw, "  ms per frame\tmodel alone %.2f, pipeline %.2f (gap %.2f)\n", b.ModelAloneMS, b.PipelineMS, b.GapMS)
	fmt.Fprintf(tw, "  ms per frame of a session\tRun alone %.2f; in the pipeline read %.2f, Run %.2f (%+.2f), post %.2f, fetch/publish/wait %.2f; mean batch %.2f\n",
		b.SessionAloneMS, b.ReadMS, b.InferMS, b.SlowdownMS, b.PostMS, b.IdleMS, b.BatchMean)
	fmt.Fprintf(tw, "  beside the workers\tdecode + letterbox %.2f ms, queued %.2f ms\n", b.DecodeMS, b.QueueMS)
	fmt.Fprintf(tw, "  CPU ms per frame\tmodel alone %.2f, pipeline %.2f: %.2f added (decode + letterbox %.2f of it); model ÷ pipeline %.3f\n",
		b.ModelCPUMS, b.PipelineCPUMS, b.AddedCPUMS, r.DecodeCPUMS, b.CPUCeiling)
	if f := r.Reference; f != nil {
		fmt.Fprintf(tw, "against fp32 on the CPU\t%d of %d detections matched (same class, IoU > 0.9), %d only on the CPU, %d only here; max box diff %.2f px, conf %.2g (%d frames, conf %g)\n",
			f.Matched, f.CPU, f.OnlyCPU, f.OnlyBench, f.MaxBoxDiff, f.MaxConfDiff, f.Frames, f.Conf)
	}
	if g := r.GPU; g != nil {
		fmt.Fprintf(tw, "GPU utilisation\t%s: %.0f%% mean, %.0f%% max over %d samples, %.0f MiB max\n", g.Name, g.MeanPercent, g.MaxPercent, g.Samples, g.MaxMemMiB)
	}
	for _, m := range r.Matrix {
		if m.Error != "" {
			fmt.Fprintf(tw, "model alone %s %s batch %d\tdid not run: %s\n", m.Precision, m.Input, m.Batch, m.Error)
			continue
		}
		fmt.Fprintf(tw, "model alone %s %s batch %d\t%.1f frames/s (%.2f ms a batch)\n", m.Precision, m.Input, m.Batch, m.FPS, m.MSPerBatch)
	}
	fmt.Fprintf(tw, "decode + letterbox\t%.1f frames/s (preprocess %s), %.2f ms CPU a frame: %.1f cores at 3,000 frames/s\n", r.DecodeFPS, r.Preprocess, r.DecodeCPUMS, r.IngestCoresAt3000)
	fmt.Fprintf(tw, "ffmpeg CLI decode + scale\t%.1f frames/s\n", r.FFmpegCLIFPS)
	fmt.Fprintf(tw, "  decode ÷ ffmpeg\t%.3f\n", r.DecodeOverFFmpeg)
	p := r.Preprocessing
	fmt.Fprintf(tw, "preprocess exact\t%.1f frames/s decode + letterbox (%.2f ms a frame)\n", p.ExactFPS, p.ExactMS)
	fmt.Fprintf(tw, "preprocess fast\t%.1f frames/s decode + letterbox (%.2f ms a frame)\n", p.FastFPS, p.FastMS)
	fmt.Fprintf(tw, "  fast vs exact pixels\tmax %d, mean %.3f levels over %d frames\n", p.PixelMaxDiff, p.PixelMeanDiff, r.Frames)
	fmt.Fprintf(tw, "  fast vs exact detections\t%d of %d matched (same class, IoU > 0.9), %d only on exact, %d only on fast, max box diff %.2f px (%d frames, conf %g)\n",
		p.DetMatched, p.DetExact, p.DetOnlyExact, p.DetOnlyFast, p.DetMaxBoxDiff, p.DetFrames, p.DetConf)
	fmt.Fprintf(tw, "raw frame\t%d bytes; worker read %.3f ms: %.2f cores at 3,000 frames/s\n", r.RawFrameBytes, r.RawReadMS, r.RawCoresAt3000)
	fmt.Fprintf(tw, "jpeg frame\t%d bytes, %.2f ms to encode; worker read %.2f ms: %.2f cores at 3,000 frames/s; %.2f levels off raw\n",
		r.JPEGFrameBytes, r.JPEGEncodeMS, r.JPEGReadMS, r.JPEGCoresAt3000, r.JPEGMeanAbsDiff)
	return tw.Flush()
}
