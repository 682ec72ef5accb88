// Package annotate re-decodes a source video and writes annotated.mp4: H.264
// in MP4 at the source's resolution and timing, with detection boxes drawn.
package annotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/asticode/go-astiav"
)

// Errors a caller can test with errors.Is; all are permanent for the input.
var (
	// ErrInvalidInput: the container could not be opened (corrupt, truncated
	// or not a video).
	ErrInvalidInput = errors.New("invalid video")
	// ErrNoVideo: the input has no video stream.
	ErrNoVideo = errors.New("no video stream")
	// ErrNoDecoder: FFmpeg has no decoder for the video codec.
	ErrNoDecoder = errors.New("no decoder")
	// ErrNoEncoder: FFmpeg was built without libx264.
	ErrNoEncoder = errors.New("no libx264 encoder")
	// ErrTooLarge: the picture exceeds Options.MaxPixels.
	ErrTooLarge = errors.New("picture too large")
	// ErrTooSmall: the picture is under 2x2 pixels, too small for H.264 4:2:0.
	ErrTooSmall = errors.New("picture too small")
	// ErrNoFrames: no frame of the video decoded.
	ErrNoFrames = errors.New("no decodable frames")
)

// Box is one detection in original-picture pixels, display orientation.
type Box struct {
	X1, Y1, X2, Y2 float32
	ClassID        int
	Label          string // class name; "class N" is drawn when empty
	Conf           float32
}

// DetectionsFunc returns the boxes of decoded frame i (0-based, counting
// every decoded frame in display order) and whether frame i was analysed.
type DetectionsFunc func(frame int) (boxes []Box, analysed bool)

// holdSeconds is how long the boxes of the last analysed frame stay on
// frames that were not analysed (sampled analysis), so boxes do not blink.
const holdSeconds = 1.0

// Options tune the encoder; zero values select the defaults.
type Options struct {
	CRF       int    // libx264 quality, 1 (best) to 51; default 23
	Preset    string // libx264 preset; default "veryfast"
	Threads   int    // decoder and encoder threads; 0 lets FFmpeg choose
	MaxPixels int    // largest accepted picture, width*height; default 8192*8192
}

func (o Options) withDefaults() Options {
	if o.CRF <= 0 {
		o.CRF = 23
	}
	if o.Preset == "" {
		o.Preset = "veryfast"
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = 8192 * 8192
	}
	return o
}

// Stats describes the written video.
type Stats struct {
	Frames        int     // frames written, equal to frames decoded
	Width, Height int     // output size: display orientation, even
	Duration      float64 // seconds from the first frame's start to the last frame's end
	Analysed      int     // frames DetectionsFunc reported as analysed
	DecodeErrors  int     // packets or frames the decoder rejected
}

// Write decodes the video in src (or the local file srcName when src is nil)
// and writes it to dstPath as H.264/MP4 with the boxes of each frame drawn.
//
// The output keeps the source's timestamps (variable frame rate included)
// and frame count, and its resolution in display orientation: rotated
// sources are turned upright, and odd sizes lose their last column or row
// because H.264 4:2:0 needs even dimensions. dstPath appears only when the
// whole video was written; on error or cancellation nothing is left behind.
func Write(ctx context.Context, srcName string, src io.ReadSeeker, dstPath string, dets DetectionsFunc, opts Options) (Stats, error) {
	st, err := write(ctx, srcName, src, dstPath, dets, opts.withDefaults())
	if err != nil {
		return st, fmt.Errorf("annotate %s: %w", srcName, err)
	}
	return st, nil
}

func write(ctx context.Context, srcName string, src io.ReadSeeker, dstPath string, dets DetectionsFunc, opts Options) (st Stats, err error) {
	if dets == nil {
		dets = func(int) ([]Box, bool) { return nil, false }
	}
	s, err := openSource(ctx, srcName, src, opts)
	if err != nil {
		return st, err
	}
	defer s.close()

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

	a := annotator{src: s, dets: dets, opts: opts, tmpPath: tmpPath}
	defer a.free()
	for {
		err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.stats(), err
		}
		if err := a.frame(s.frame); err != nil {
			return a.stats(), fmt.Errorf("frame %d: %w", a.n, err)
		}
	}
	if a.n == 0 {
		return a.stats(), ErrNoFrames
	}
	if err := ctx.Err(); err != nil {
		return a.stats(), err
	}
	if err := a.sink.finish(); err != nil {
		return a.stats(), err
	}
	if err := os.Rename(tmpPath, dstPath); err != nil {
		return a.stats(), fmt.Errorf("publish output: %w", err)
	}
	return a.stats(), nil
}

// annotator turns decoded frames into annotated encoded frames; the encoder
// opens on the first frame, whose size fixes the output size.
type annotator struct {
	src     *source
	dets    DetectionsFunc
	opts    Options
	tmpPath string

	sink   *sink
	conv   *converter
	out    *astiav.Frame
	codedW int
	codedH int
	outW   int
	outH   int
	style  style
	matrix matrix

	n        int   // frames written
	analysed int   // frames with analysis
	first    int64 // pts of frame 0
	last     int64 // pts of the latest frame
	lastDur  int64
	held     []Box // boxes of the latest analysed frame
	heldPTS  int64
}

func (a *annotator) stats() Stats {
	st := Stats{Frames: a.n, Width: a.outW, Height: a.outH, Analysed: a.analysed, DecodeErrors: a.src.decodeErrors}
	if a.n > 0 {
		st.Duration = float64(a.last+a.lastDur-a.first) * a.src.timeBase.Float64()
	}
	return st
}

func (a *annotator) open(f *astiav.Frame) error {
	a.codedW, a.codedH = f.Width(), f.Height()
	if int64(a.codedW)*int64(a.codedH) > int64(a.opts.MaxPixels) {
		return fmt.Errorf("%w: %dx%d exceeds %d pixels", ErrTooLarge, a.codedW, a.codedH, a.opts.MaxPixels)
	}
	dw, dh := displaySize(a.codedW, a.codedH, a.src.rotation)
	a.outW, a.outH = evenSize(dw, dh)
	if a.outW < 2 || a.outH < 2 {
		return fmt.Errorf("%w: %dx%d", ErrTooSmall, dw, dh)
	}
	aspect := f.SampleAspectRatio()
	if a.src.rotation == 90 || a.src.rotation == 270 {
		aspect = astiav.NewRational(aspect.Den(), aspect.Num())
	}
	var err error
	a.sink, err = openSink(a.tmpPath, sinkParams{
		w: a.outW, h: a.outH,
		timeBase:  a.src.timeBase,
		frameRate: a.src.frameRate,
		aspect:    aspect,
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
	if a.src.colour == astiav.ColorSpaceBt709 || (a.src.colour == astiav.ColorSpaceUnspecified && a.codedH >= 720) {
		a.matrix = bt709
	}
	return nil
}

func (a *annotator) frame(f *astiav.Frame) error {
	if a.sink == nil {
		if err := a.open(f); err != nil {
			return err
		}
	}
	src, err := a.conv.yuv420(f)
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
	turnPicture(dst, src, a.codedW, a.codedH, a.outW, a.outH, a.src.rotation)

	pts, dur := a.timestamp(f)
	drawBoxes(&yuvCanvas{
		w: a.outW, h: a.outH,
		y: dst[0].data, u: dst[1].data, v: dst[2].data,
		yStride: dst[0].stride, cStride: dst[1].stride,
	}, a.boxes(pts), a.style, a.matrix)

	a.out.SetPts(pts)
	a.sink.durations[pts] = dur
	if err := a.sink.encode(a.out); err != nil {
		return err
	}
	a.n++
	return nil
}

// timestamp returns the frame's presentation time and duration in the stream
// time base. Missing timestamps continue from the previous frame, and
// timestamps that do not increase are nudged forward one tick, because the
// encoder and MP4 need strictly increasing times and no frame may be dropped.
func (a *annotator) timestamp(f *astiav.Frame) (pts, dur int64) {
	pts = bestEffortTimestamp(f)
	switch {
	case a.n == 0 && pts == astiav.NoPtsValue:
		pts = 0
	case a.n == 0:
	case pts == astiav.NoPtsValue:
		pts = a.last + max(a.lastDur, 1)
	case pts <= a.last:
		pts = a.last + 1
	}
	dur = frameDuration(f)
	if dur <= 0 {
		if a.n > 0 {
			dur = pts - a.last
		} else if r := a.src.frameRate; r.Num() > 0 && r.Den() > 0 {
			dur = astiav.RescaleQ(1, astiav.NewRational(r.Den(), r.Num()), a.src.timeBase)
		}
		dur = max(dur, 1)
	}
	if a.n == 0 {
		a.first = pts
	}
	a.last, a.lastDur = pts, dur
	return pts, dur
}

// boxes asks for frame n's detections; frames that were not analysed show
// the latest analysed frame's boxes for up to holdSeconds.
func (a *annotator) boxes(pts int64) []Box {
	b, ok := a.dets(a.n)
	if ok {
		a.analysed++
		a.held, a.heldPTS = b, pts
		return b
	}
	if a.held != nil && float64(pts-a.heldPTS)*a.src.timeBase.Float64() <= holdSeconds {
		return a.held
	}
	return nil
}

func (a *annotator) free() {
	if a.out != nil {
		a.out.Free()
	}
	if a.conv != nil {
		a.conv.free()
	}
	if a.sink != nil {
		a.sink.free()
	}
}
