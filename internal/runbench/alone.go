package runbench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/workers"
)

// MatrixRow is the model alone in one precision, input form and batch
// size, on one session with the bench's threads.
type MatrixRow struct {
	Precision  string  `json:"precision"` // fp32, tf32 or fp16
	Input      string  `json:"input"`     // float or u8
	Batch      int     `json:"batch"`
	FPS        float64 `json:"fps"`
	MSPerBatch float64 `json:"ms_per_batch"`
	// Error says why this combination did not run (a CPU without float16
	// kernels, say); the others still do.
	Error string `json:"error,omitempty"`
}

// modelAlone runs total frames through the sessions at once, batch by
// batch, and returns frames per second of wall time. Each session's input
// is filled once, before the clock starts, with frames of its own: this is
// Session.Run alone (the copy to the device included), the limit the
// pipeline is held against. Every batch size used runs once untimed first
// (allocations, CUDA kernel selection).
func modelAlone(ctx context.Context, sessions []*infer.Session, frames [][]byte, batch, total int) (float64, error) {
	nb := (total + batch - 1) / batch
	last := total - (nb-1)*batch
	for s, sess := range sessions {
		in := make([][]byte, batch)
		for j := range in {
			in[j] = frames[(s*batch+j)%len(frames)]
		}
		if err := load(sess, in); err != nil {
			return 0, err
		}
		for _, n := range []int{batch, last} {
			if _, err := sess.Run(ctx, n); err != nil {
				return 0, err
			}
		}
	}
	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	start := time.Now()
	for s, sess := range sessions {
		wg.Go(func() {
			for k := s; k < nb; k += len(sessions) {
				n := batch
				if k == nb-1 {
					n = last
				}
				if _, err := sess.Run(ctx, n); err != nil {
					errs[s] = err
					return
				}
			}
		})
	}
	wg.Wait()
	spent := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return round3(float64(total) / spent.Seconds()), nil
}

// matrix runs the model alone in every precision dev has, with float and
// uint8 input, at each of c.Matrix's batch sizes: at least as many frames
// as the video has, and 4 batches.
func (c *Options) matrix(ctx context.Context, dev infer.Device, frames [][]byte) ([]MatrixRow, error) {
	type precision struct {
		name       string
		fp32, half bool
	}
	precs := []precision{{"fp32", true, false}}
	if dev.Kind == infer.CUDA {
		precs = append(precs, precision{"tf32", false, false}, precision{"fp16", false, true})
	}
	var rows []MatrixRow
	for _, p := range precs {
		for _, in := range []string{workers.InputFloat, workers.InputU8} {
			for _, b := range c.Matrix {
				row := MatrixRow{Precision: p.name, Input: in, Batch: b}
				c.Logger.Info("bench: model alone", "precision", p.name, "input", in, "batch", b)
				fps, err := c.alone(ctx, c.sessionOptions(1, b, in, p.half, p.fp32), frames, max(len(frames), 4*b))
				if err != nil {
					if ctx.Err() != nil {
						return nil, err
					}
					row.Error = err.Error()
					c.Logger.Warn("bench: model alone", "precision", p.name, "input", in, "batch", b, "err", err)
				} else {
					row.FPS, row.MSPerBatch = fps, round3(1000*float64(b)/fps)
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// alone opens sessions with so and runs total frames through them.
func (c *Options) alone(ctx context.Context, so workers.SessionOptions, frames [][]byte, total int) (float64, error) {
	set, err := c.sessions(ctx, so)
	if err != nil {
		return 0, err
	}
	defer set.Close()
	if set.Batch != so.Batch {
		return 0, fmt.Errorf("the model runs batches of %d at most", set.Batch)
	}
	return modelAlone(ctx, set.List, frames, so.Batch, total)
}
