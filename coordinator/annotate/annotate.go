// Package annotate writes annotated.mp4, H.264 in MP4 with detection boxes
// drawn, and preview.png, from the same decoded pictures the analysis saw:
// it decodes through media/decode, so it only draws and encodes here.
//
// Annotation is a bounded stage of the coordinator process, not a consumer
// of its own work queue: it reads the detections scratch file the
// coordinator has just written, which a queue would have to ship to another
// machine first, and its cost is memory, which one process-wide Limiter
// bounds across all jobs. Each video's working set is estimated from its
// picture size before decoding (coefficients measured by TestWorkingSet);
// outputs are capped at 4K UHD, encoder threads and then lookahead give way
// to fit, and a video that fits in no way fails its annotation early, never
// its analysis.
package annotate

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/media/decode"
)

// Errors of the output a caller can test with errors.Is; all are permanent
// for the input. Input errors are media/decode's (decode.ErrNotVideo,
// decode.ErrCorrupt, ...), the same the analysis reports.
var (
	// ErrNoEncoder: FFmpeg was built without libx264.
	ErrNoEncoder = errors.New("no libx264 encoder")
	// ErrTooSmall: the picture is under 2x2 pixels, too small for H.264 4:2:0.
	ErrTooSmall = errors.New("picture too small")
	// ErrOverBudget: annotating the video's pictures needs more memory than
	// the whole annotation budget, even at the smallest settings.
	ErrOverBudget = errors.New("over the annotation budget")
)

// Box is one detection in original-picture pixels, display orientation.
type Box struct {
	X1, Y1, X2, Y2 float32
	ClassID        int
	Label          string // class name; "class N" is drawn when empty
	Conf           float32
}

// DetectionsFunc returns the boxes of decoded frame i (decode.Frame.Index,
// in that frame's own display geometry) and whether frame i was analysed.
type DetectionsFunc func(frame int) (boxes []Box, analysed bool)

// holdSeconds is how long the boxes of the last analysed frame stay on
// frames that were not analysed (sampled analysis), so boxes do not blink.
const holdSeconds = 1.0

// DefaultPreviewWindow bounds the frames searched for the preview picture.
const DefaultPreviewWindow = 1500

// Options tune the encoder and the preview; zero values select the defaults.
type Options struct {
	CRF    int    // libx264 quality, 1 (best) to 51; default 23
	Preset string // libx264 preset; default "veryfast"
	// Threads are the decoder and the most encoder threads; 0 leaves the
	// decoder to decode.FrameThreads and gives the encoder as many threads,
	// up to one per CPU, as the memory budget allows.
	Threads   int
	MaxPixels int // largest accepted picture, width*height; default decode.DefaultMaxPixels
	// MaxOutputPixels bounds the annotated video and the preview; larger
	// pictures are scaled down, boxes with them. Default DefaultMaxOutputPixels.
	MaxOutputPixels int
	// Limiter is the process's annotation budget, shared by all videos
	// annotated at once; nil: a budget of DefaultMemory for this video alone.
	Limiter *Limiter
	// Preview, when set, is where a PNG of the analysed frame with the most
	// boxes among the first PreviewWindow frames is written, boxes drawn,
	// taken during the same pass.
	Preview       string
	PreviewWindow int // default DefaultPreviewWindow
}

func (o Options) withDefaults() Options {
	if o.CRF <= 0 {
		o.CRF = 23
	}
	if o.Preset == "" {
		o.Preset = "veryfast"
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = decode.DefaultMaxPixels
	}
	if o.MaxOutputPixels <= 0 {
		o.MaxOutputPixels = DefaultMaxOutputPixels
	}
	if o.PreviewWindow <= 0 {
		o.PreviewWindow = DefaultPreviewWindow
	}
	return o
}

// Stats describes the written video.
type Stats struct {
	Frames        int     // frames written, equal to frames decoded
	Width, Height int     // output size: display orientation, even
	Duration      float64 // seconds from the first frame's start to the last frame's end
	Plan          Plan    // the output size and encoder chosen for the memory budget
	Analysed      int     // frames DetectionsFunc reported as analysed
	DecodeErrors  int     // packets or frames the decoder rejected, and demuxer errors
	PreviewFrame  int     // frame shown in the preview; -1 when none was written
}

// inputError marks errors of the decoder, which already name the input.
type inputError struct{ error }

func (e inputError) Unwrap() error { return e.error }

// Write decodes the video in src (or the local file srcName when src is nil)
// and writes it to dstPath as H.264/MP4 with the boxes of each frame drawn.
//
// Every decoded picture is written, numbered as the analysis numbers them
// (both decode through media/decode), damaged streams included. Output
// timing is the decoder's media-time clock from the first frame's
// timestamp (0 when that is negative): the source's timestamps while they
// increase, one frame's duration where they jump back or repeat. Output is
// in display orientation at the first picture's size (odd sizes lose their
// last column or row, as H.264 4:2:0 needs even dimensions); pictures of
// another size are scaled to it and their boxes with them. dstPath appears
// only when the whole video was written; on error or cancellation nothing
// is left behind.
func Write(ctx context.Context, srcName string, src io.ReadSeeker, dstPath string, dets DetectionsFunc, opts Options) (Stats, error) {
	st, err := write(ctx, srcName, src, dstPath, dets, opts.withDefaults())
	var ie inputError
	switch {
	case err == nil:
		return st, nil
	case errors.As(err, &ie):
		return st, fmt.Errorf("annotate: %w", ie.error)
	default:
		return st, fmt.Errorf("annotate %s: %w", srcName, err)
	}
}

func write(ctx context.Context, srcName string, src io.ReadSeeker, dstPath string, dets DetectionsFunc, opts Options) (st Stats, err error) {
	st.PreviewFrame = -1
	if dets == nil {
		dets = func(int) ([]Box, bool) { return nil, false }
	}
	dec, err := decode.Open(ctx, srcName, src, decode.Options{Threads: opts.Threads, MaxPixels: int64(opts.MaxPixels)})
	if err != nil {
		return st, inputError{err}
	}
	defer dec.Close()

	// The budget is taken before the first picture is decoded, from the
	// size the container declares; a video that cannot fit is refused
	// before it costs anything.
	info := dec.Info()
	budget := int64(DefaultMemory)
	if opts.Limiter != nil {
		budget = opts.Limiter.Memory()
	}
	pl, err := plan(info.Width, info.Height, opts, budget)
	if err != nil {
		return st, err
	}
	st.Plan = pl
	if opts.Limiter != nil {
		release, err := opts.Limiter.acquire(ctx, pl.WorkingSet)
		if err != nil {
			return st, err
		}
		defer release()
	}

	// Write next to the destination and rename at the end, so a reader never
	// sees a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(dstPath), "."+filepath.Base(dstPath)+".*.part")
	if err != nil {
		return st, fmt.Errorf("create output: %w", err)
	}
	tmpPath := tmp.Name()
	err = tmp.Chmod(0o644) // CreateTemp's 0600 would hide the video from others
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmpPath)
		return st, fmt.Errorf("create output: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmpPath)
		}
	}()

	a := annotator{
		dets: dets, opts: opts, plan: pl, tmpPath: tmpPath, bestN: -1,
		tb: dec.TimeBase(), frameRate: dec.FrameRate(), colour: dec.ColorSpace(), rotation: dec.Info().Rotation,
	}
	defer a.free()
	for {
		p, err := dec.NextPicture(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.stats(dec), inputError{err}
		}
		if err := a.frame(p); err != nil {
			return a.stats(dec), fmt.Errorf("frame %d: %w", p.Index, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return a.stats(dec), err
	}
	if a.sink == nil { // the decoder ends with ErrCorrupt before this
		return a.stats(dec), errors.New("no picture decoded")
	}
	if err := a.sink.finish(); err != nil {
		return a.stats(dec), err
	}
	if err := os.Rename(tmpPath, dstPath); err != nil {
		return a.stats(dec), fmt.Errorf("publish output: %w", err)
	}
	st = a.stats(dec)
	// The decoder's and encoder's memory goes before the preview's PNG is made.
	a.free()
	dec.Close() //nolint:errcheck // closed once more by the defer; nothing is left to report
	if a.best != nil && opts.Preview != "" {
		if err := drawPNG(opts.Preview, a.best, a.bestBoxes); err != nil {
			return st, err
		}
		st.PreviewFrame = a.bestFrame
	}
	return st, nil
}

// annotator turns decoded pictures into annotated encoded frames; the
// encoder opens on the first picture, whose size fixes the output size.
type annotator struct {
	dets    DetectionsFunc
	opts    Options
	plan    Plan
	tmpPath string

	tb        astiav.Rational
	frameRate astiav.Rational // guessed; may be 0/1
	colour    astiav.ColorSpace
	rotation  int // clockwise degrees a player turns the picture

	sink         *sink
	conv         *converter
	out          *astiav.Frame
	codedW       int // the output's coded size, which all pictures are scaled to:
	codedH       int // the first picture's, bounded by plan.MaxOutputPixels
	dispW, dispH int // the same in display orientation
	outW         int
	outH         int
	style        style
	matrix       matrix

	n        int   // frames written
	analysed int   // frames with analysis
	base     int64 // output pts of the clock's 0
	last     int64 // output pts of the latest frame
	lastDur  int64
	held     []Box // boxes of the latest analysed frame, output geometry
	heldTime int64

	rgba      *converter // for the preview, at the preview frame's own size
	best      *image.RGBA
	bestBoxes []Box
	bestFrame int
	bestN     int // boxes in the preview frame; -1 before the first
}

func (a *annotator) stats(dec *decode.Decoder) Stats {
	ds := dec.Stats()
	st := Stats{Frames: a.n, Width: a.outW, Height: a.outH, Analysed: a.analysed,
		DecodeErrors: ds.DecodeErrors + ds.ReadErrors, PreviewFrame: -1, Plan: a.plan}
	if a.n > 0 {
		st.Duration = float64(a.last+a.lastDur-a.base) * a.tb.Float64()
	}
	return st
}

func (a *annotator) open(p *decode.Picture) error {
	f := p.Frame
	a.dispW, a.dispH = boundedSize(p.Width, p.Height, a.plan.MaxOutputPixels)
	a.codedW, a.codedH = displaySize(a.dispW, a.dispH, a.rotation) // a quarter turn is its own inverse here
	a.outW, a.outH = evenSize(a.dispW, a.dispH)
	if a.outW < 2 || a.outH < 2 {
		return fmt.Errorf("%w: %dx%d", ErrTooSmall, a.dispW, a.dispH)
	}
	if p.TS != astiav.NoPtsValue && p.TS > 0 {
		a.base = p.TS // the source's own start, unless it is negative
	}
	aspect := f.SampleAspectRatio()
	if a.rotation == 90 || a.rotation == 270 {
		aspect = astiav.NewRational(aspect.Den(), aspect.Num())
	}
	var err error
	a.sink, err = openSink(a.tmpPath, sinkParams{
		w: a.outW, h: a.outH,
		timeBase:  a.tb,
		frameRate: a.frameRate,
		aspect:    aspect,
		threads:   a.plan.EncodeThreads,
		lowMemory: a.plan.LowMemory,
	}, a.opts)
	if err != nil {
		return err
	}
	a.conv = newConverter(a.codedW, a.codedH, astiav.PixelFormatYuv420P)
	if a.out = astiav.AllocFrame(); a.out == nil {
		return errors.New("allocate frame: out of memory")
	}
	a.out.SetWidth(a.outW)
	a.out.SetHeight(a.outH)
	a.out.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := a.out.AllocBuffer(0); err != nil {
		return fmt.Errorf("allocate %dx%d frame: %w", a.outW, a.outH, err)
	}
	a.style = styleFor(a.outW, a.outH)
	// Players assume BT.709 for untagged HD and BT.601 below; box colours
	// follow the matrix the picture will be shown with.
	a.matrix = bt601
	if a.colour == astiav.ColorSpaceBt709 || (a.colour == astiav.ColorSpaceUnspecified && f.Height() >= 720) {
		a.matrix = bt709
	}
	return nil
}

func (a *annotator) frame(p *decode.Picture) error {
	if a.sink == nil {
		if err := a.open(p); err != nil {
			return err
		}
	}
	src, err := a.conv.yuv420(p.Frame)
	if err != nil {
		return err
	}
	if err := makeWritable(a.out); err != nil {
		return fmt.Errorf("make frame writable: %w", err)
	}
	rows := [3]int{a.outH, a.outH / 2, a.outH / 2}
	dst, ok := planes(a.out, rows)
	if !ok {
		return errors.New("output frame has no planes")
	}
	turnPicture(dst, src, a.codedW, a.codedH, a.outW, a.outH, a.rotation)

	draw, own := a.boxes(p)
	if own != nil && p.Index < a.opts.PreviewWindow && len(own) > a.bestN && a.opts.Preview != "" {
		if err := a.keepPreview(p, own); err != nil {
			return fmt.Errorf("preview: %w", err)
		}
	}
	drawBoxes(&yuvCanvas{
		w: a.outW, h: a.outH,
		y: dst[0].data, u: dst[1].data, v: dst[2].data,
		yStride: dst[0].stride, cStride: dst[1].stride,
	}, draw, a.style, a.matrix)

	pts := a.base + p.Time
	a.out.SetPts(pts)
	a.sink.durations[pts] = p.Duration
	if err := a.sink.encode(a.out); err != nil {
		return err
	}
	a.last, a.lastDur = pts, p.Duration
	a.n++
	return nil
}

// boxes returns what to draw on picture p, in output geometry, and p's own
// boxes when it was analysed (nil, not empty, when it was not). Frames that
// were not analysed show the latest analysed frame's boxes for up to
// holdSeconds of clock time.
func (a *annotator) boxes(p *decode.Picture) (draw, own []Box) {
	b, ok := a.dets(p.Index)
	if ok {
		a.analysed++
		a.held, a.heldTime = a.fit(a.held[:0], b, p), p.Time
		if b == nil {
			b = []Box{}
		}
		return a.held, b
	}
	if len(a.held) > 0 && float64(p.Time-a.heldTime)*a.tb.Float64() <= holdSeconds {
		return a.held, nil
	}
	return nil, nil
}

// fit appends boxes mapped from the picture's own display geometry to the
// output's, the first picture's: unchanged unless the size changed.
func (a *annotator) fit(dst, boxes []Box, p *decode.Picture) []Box {
	sx, sy := float32(1), float32(1)
	if (p.Width != a.dispW || p.Height != a.dispH) && p.Width > 0 && p.Height > 0 {
		sx, sy = float32(a.dispW)/float32(p.Width), float32(a.dispH)/float32(p.Height)
	}
	for _, b := range boxes {
		b.X1, b.X2, b.Y1, b.Y2 = b.X1*sx, b.X2*sx, b.Y1*sy, b.Y2*sy
		dst = append(dst, b)
	}
	return dst
}

// free releases FFmpeg's side; it may be called more than once.
func (a *annotator) free() {
	if a.out != nil {
		a.out.Free()
	}
	if a.conv != nil {
		a.conv.free()
	}
	if a.rgba != nil {
		a.rgba.free()
	}
	if a.sink != nil {
		a.sink.free()
	}
	a.out, a.conv, a.rgba, a.sink = nil, nil, nil, nil
}
