package annotate

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"github.com/vidpipe/vidpipe/media/decode"
)

// DefaultMemory is the default process-wide annotation budget: one video of
// any size the decoder accepts (up to 8192x8192) fits it, next to the
// 800 MB or so the rest of `vidpipe run` holds with the 640 model, so the
// process stays under 1.5 GB. 1080p gets every encoder thread within it,
// 4K UHD the low-memory encoder, 8192x8192 a smaller output as well.
const DefaultMemory = 512 << 20

// DefaultMaxOutputPixels bounds the annotated video: 3840x2160, H.264 level
// 5.1's largest common frame, which players decode in hardware. Larger
// sources are scaled down to it (boxes with them); an 8192x8192 H.264 file
// would be beyond every H.264 level and cost gigabytes to encode.
const DefaultMaxOutputPixels = 3840 * 2160

// Bytes per output pixel of libx264 (preset veryfast, CRF 23) in this
// process, as TestWorkingSet measures them: the first thread with its
// lookahead of 10 frames and 3 B-frames, each further frame thread, and
// the low-memory profile (one thread, no lookahead, no B-frames).
const (
	encodeBytesPerPixel       = 72
	encodeThreadBytesPerPixel = 26
	lowMemoryBytesPerPixel    = 24
)

// fixedBytes covers what does not scale with the picture: libx264's and
// the muxer's own tables, the detections cursor, goroutine stacks.
const fixedBytes = 24 << 20

// Limiter is a process's annotation budget: every annotation holds its
// estimated working set from it while it runs, so concurrent annotations of
// all jobs together stay within the budget, and at most a number of them
// run at once. Make one per process and share it.
type Limiter struct {
	mem     *semaphore.Weighted
	workers *semaphore.Weighted
	total   int64
	waiting atomic.Int64
}

// NewLimiter returns a budget of memory bytes (0: DefaultMemory) for at
// most workers annotations at a time (0: one per CPU).
func NewLimiter(memory int64, workers int) *Limiter {
	if memory <= 0 {
		memory = DefaultMemory
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return &Limiter{mem: semaphore.NewWeighted(memory), workers: semaphore.NewWeighted(int64(workers)), total: memory}
}

// Waiting counts the annotations waiting for their share of the budget.
func (l *Limiter) Waiting() int { return int(l.waiting.Load()) }

// Memory is the budget in bytes.
func (l *Limiter) Memory() int64 { return l.total }

// acquire waits until n bytes and a worker slot are free. n must not be
// over the budget: plan refuses such videos first.
func (l *Limiter) acquire(ctx context.Context, n int64) (release func(), err error) {
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	if err := l.workers.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	if err := l.mem.Acquire(ctx, n); err != nil {
		l.workers.Release(1)
		return nil, err
	}
	return func() { l.mem.Release(n); l.workers.Release(1) }, nil
}

// Plan is how one video is annotated: its output size, encoder and the
// working set they need.
type Plan struct {
	InW, InH      int // source picture, display orientation
	OutW, OutH    int // annotated video, even
	DecodeThreads int // 0: FFmpeg's automatic count
	EncodeThreads int
	LowMemory     bool // libx264 without lookahead and B-frames
	// MaxOutputPixels is the bound the output and the preview were held
	// to: Options.MaxOutputPixels, or less where the budget asked for it.
	MaxOutputPixels int
	WorkingSet      int64
}

// boundedSize scales w x h down, aspect kept, to at most maxPixels.
func boundedSize(w, h, maxPixels int) (int, int) {
	if w <= 0 || h <= 0 || int64(w)*int64(h) <= int64(maxPixels) {
		return w, h
	}
	s := math.Sqrt(float64(maxPixels) / (float64(w) * float64(h)))
	bw, bh := int(float64(w)*s), int(float64(h)*s)
	for int64(bw)*int64(bh) > int64(maxPixels) { // rounding never lands over the bound
		bw, bh = bw-1, bh-1
	}
	return max(bw, 1), max(bh, 1)
}

// WorkingSet estimates the memory an annotation of w x h pictures holds
// with these settings: decoder frames (about two per frame thread, one
// more for the picture in hand), the scaled and drawn output pictures, the
// preview kept in RGBA three times over (FFmpeg's, Go's and the PNG's
// copy), and libx264.
func WorkingSet(inW, inH, outW, outH, decodeThreads, encodeThreads int, lowMemory bool) int64 {
	dt := decodeThreads
	if dt <= 0 {
		dt = min(runtime.NumCPU()+1, 16)
	}
	in := decode.PictureBytes(inW, inH)
	outPx := int64(outW) * int64(outH)
	ws := int64(1+2*dt)*in + 2*decode.PictureBytes(outW, outH) + 12*outPx + fixedBytes
	if lowMemory {
		return ws + lowMemoryBytesPerPixel*outPx
	}
	return ws + (encodeBytesPerPixel+encodeThreadBytesPerPixel*int64(max(encodeThreads, 1)-1))*outPx
}

// minOutputPixels is the smallest output plan scales to (640x360): below
// it, labels and boxes stop being legible.
const minOutputPixels = 640 * 360

// plan chooses the output size and encoder for a w x h source (display
// orientation) so that its working set fits budget: the most encoder
// threads up to opts.Threads (or one per CPU), then the low-memory encoder,
// then a smaller output, down to minOutputPixels. A source that fits in no
// way is refused with ErrOverBudget.
func plan(w, h int, opts Options, budget int64) (Plan, error) {
	p := Plan{InW: w, InH: h, DecodeThreads: decode.FrameThreads(opts.Threads, w, h), MaxOutputPixels: opts.MaxOutputPixels}
	p.OutW, p.OutH = evenSize(boundedSize(w, h, p.MaxOutputPixels))
	most := opts.Threads
	if most <= 0 {
		most = runtime.NumCPU()
	}
	for t := most; t >= 1; t-- {
		if ws := WorkingSet(w, h, p.OutW, p.OutH, p.DecodeThreads, t, false); ws <= budget {
			p.EncodeThreads, p.WorkingSet = t, ws
			return p, nil
		}
	}
	p.EncodeThreads, p.LowMemory = 1, true
	for {
		p.WorkingSet = WorkingSet(w, h, p.OutW, p.OutH, p.DecodeThreads, 1, true)
		if p.WorkingSet <= budget {
			return p, nil
		}
		smaller := p.OutW * p.OutH * 3 / 4
		if smaller < minOutputPixels {
			break
		}
		p.MaxOutputPixels = smaller
		p.OutW, p.OutH = evenSize(boundedSize(w, h, smaller))
	}
	return p, fmt.Errorf("%dx%d frames need ~%d MB, %w of %d MB", w, h, p.WorkingSet>>20, ErrOverBudget, budget>>20)
}
