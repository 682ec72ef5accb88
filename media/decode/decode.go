// Package decode is the one way this project opens, demuxes and decodes an
// untrusted video (FFmpeg through go-astiav): analysis takes letterboxed RGB
// frames from Next, annotation and previews take the same decoded pictures
// from NextPicture, so both see one stream choice, one hardening set, one
// error taxonomy and one frame numbering. By default the letterboxes hold
// exactly the pixels YOLOv5's own cv2 pipeline would feed the model.
package decode

// FFmpeg's logging is process-wide, so this package leaves it alone: a
// program quiets it with astiav.SetLogLevel. Avoid astiav.SetLogCallback in
// go-astiav v0.16.0: it formats messages with vsprintf into a 1 KiB stack
// buffer, and FFmpeg logs strings taken from untrusted files.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/asticode/go-astiav"
)

// maxErrorRun bounds consecutive decoder errors without a picture, so a
// stream of garbage ends with ErrCorrupt instead of spinning.
const maxErrorRun = 10000

// Info describes the selected video stream.
type Info struct {
	Frames      int64   // frame count from the container's index (AVI counts repeat-frame entries too); -1 if unknown
	Duration    float64 // seconds; -1 if unknown
	Width       int     // display orientation (after rotation)
	Height      int     // display orientation (after rotation)
	Rotation    int     // clockwise degrees applied to reach display orientation: 0, 90, 180, 270
	Codec       string  // FFmpeg codec name, e.g. "h264"
	PixelFormat string  // FFmpeg pixel format name, e.g. "yuv420p"
	Format      string  // demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	FPS         float64 // FFmpeg's frame-rate guess; 0 if unknown
}

// Frame is one kept picture.
type Frame struct {
	// Index counts decoded frames in display order from 0, kept or not, so a
	// consumer can tell sampling gaps from lost frames.
	Index int
	// PTS is the best-effort timestamp in seconds. When the stream has none,
	// it is extrapolated from the previous frame and the frame rate, and
	// Estimated is set.
	PTS       float64
	Estimated bool
	// Width and Height are the original size in display orientation.
	Width, Height int
	// Size is the letterbox side (Options.Size).
	Size int
	// Letterbox is packed RGB24, Size x Size, letterboxed as YOLOv5 does
	// (MODEL.md §4). The buffer is reused: valid until the next Next call.
	Letterbox []byte
	// Gain, PadX and PadY map model coordinates back to the original
	// picture: x0 = (x - PadX) / Gain.
	Gain, PadX, PadY float64
}

// Stats counts what happened to the video stream so far. A video with any
// damage counter above zero decoded only partly.
type Stats struct {
	Packets        int // video packets read
	CorruptPackets int // packets the demuxer flagged as corrupt (still decoded)
	DecodeErrors   int // packets or frames the decoder rejected and skipped
	ReadErrors     int // demuxer errors; reading stops at the first, as in ffmpeg
	Decoded        int // pictures out of the decoder
	CorruptFrames  int // pictures the decoder flagged as concealed or damaged (still yielded)
	Kept           int // frames returned by Next
	EstimatedPTS   int // pictures without a timestamp
	// Truncated is set at the end when the file is shorter than its
	// container declares (a top-level box, the Matroska Segment or a RIFF
	// chunk runs past its end, a TS ends inside a packet, the MP4 sample
	// table lists more packets than arrived) and frames are lost with it.
	Truncated bool
	// Expected is the frame count the container declares, set with
	// Truncated where it declares one (MP4 sample table, AVI header,
	// Matroska statistics or duration times rate); 0 when unknown, as in
	// MPEG-TS. Missing is how many of those frames never arrived.
	Expected int
	Missing  int
	// Corrupt sums the damage counters: CorruptPackets, DecodeErrors,
	// ReadErrors and CorruptFrames.
	Corrupt int
}

// Damaged reports whether any packet or picture was lost or damaged.
func (s Stats) Damaged() bool { return s.Corrupt+s.Missing > 0 || s.Truncated }

// Decoder reads one video. It is not safe for concurrent use. A canceled
// context ends it for good: FFmpeg cannot resume an interrupted read.
//
// Next letterboxes on Options.Letterboxers goroutines: it decodes ahead on
// the calling goroutine while earlier frames are letterboxed, and hands them
// out in order. Close, a canceled context or the end of the video stops
// those goroutines.
type Decoder struct {
	name string
	opts Options

	src    *source
	file   *os.File // opened by Open when no reader was given
	ioc    *astiav.IOContext
	fc     *astiav.FormatContext
	opened bool // OpenInput succeeded, so CloseInput owns fc
	intr   astiav.IOInterrupter
	st     *astiav.Stream
	cc     *astiav.CodecContext
	pkt    *astiav.Packet
	frame  *astiav.Frame
	sel    selector
	pic    Picture

	// newBoxer makes Options.Preprocess's boxer, for Next's serial path
	// (lb, drawing on canvas, made on its first frame) or a letterboxer.
	newBoxer func() boxer
	lb       boxer
	canvas   canvas

	// boxers is how many goroutines letterbox (Options.Letterboxers
	// resolved); fan runs them once Next fans out, and is nil before and
	// after. mixed is set by NextPicture: the decoder stays serial.
	boxers int
	fan    *fanout
	mixed  bool
	// shown are the counters as of the frame last handed out when decoding
	// runs ahead of it (fan-out), so Stats reads as the serial path does;
	// showing is false when d.stats is that already.
	shown   Stats
	showing bool

	info     Info
	tb       float64 // stream time base in seconds
	tbNum    int64   // the time base as a fraction, for exact conversions
	tbDen    int64
	frameDur float64 // seconds per frame, for extrapolating missing timestamps
	stats    Stats
	clk      clock

	out      *Frame // the frame Next hands out
	pending  bool   // pkt holds a packet the decoder refused with EAGAIN
	draining bool   // demuxer finished; the decoder is being flushed
	errRun   int
	prevPTS  float64
	havePrev bool
	readErr  error // demuxer error that ended reading, for messages
	err      error // sticky terminal result, io.EOF included
	closed   bool
}

// Info describes the selected video stream.
func (d *Decoder) Info() Info { return d.info }

// Stats reports counters for the frames decoded so far. Pictures Next
// decoded ahead count once it has returned the frames before them, or once
// decoding has stopped, so Stats reads as the serial path would.
func (d *Decoder) Stats() Stats {
	s := d.stats
	if d.showing {
		s = d.shown
		s.Kept = d.stats.Kept
	}
	s.Corrupt = s.CorruptPackets + s.DecodeErrors + s.ReadErrors + s.CorruptFrames
	return s
}

// Next returns the next kept frame, or io.EOF after the last one. Damaged
// packets are skipped and counted in Stats; a video that yields no picture at
// all ends with ErrCorrupt instead of io.EOF. Errors come at the frame they
// concern, after the frames before it, whatever was decoded ahead.
func (d *Decoder) Next(ctx context.Context) (*Frame, error) {
	err := d.run(ctx, false)
	if err != nil {
		return nil, err
	}
	return d.out, nil
}

// run decodes up to the next picture Next (raw false) or NextPicture (raw
// true) hands out, making every error terminal and naming the input.
func (d *Decoder) run(ctx context.Context, raw bool) error {
	if d.closed {
		return fmt.Errorf("decode %s: %w", d.name, ErrClosed)
	}
	if d.err != nil {
		d.stopFan()
		return d.err
	}
	d.src.ctx = ctx
	stop := context.AfterFunc(ctx, d.intr.Interrupt)
	err := d.step(ctx, raw)
	interrupted := !stop()
	d.src.ctx = context.Background()
	if err == nil && interrupted {
		// FFmpeg now refuses all I/O; make the next call say why.
		d.err = fmt.Errorf("decode %s: %w", d.name, ctx.Err())
	}
	if err != nil {
		if err != io.EOF {
			err = fmt.Errorf("decode %s: %w", d.name, err)
		}
		d.err = err
		d.stopFan()
		return err
	}
	return nil
}

// step hands out the next picture: a letterbox in d.out (raw false) or
// FFmpeg's own frame in d.pic (raw true), from the frames letterboxed
// ahead while there are any, else decoded here.
func (d *Decoder) step(ctx context.Context, raw bool) error {
	if raw {
		d.mixed = true
	} else if d.fan == nil && !d.mixed && d.boxers > 1 {
		d.startFan()
	}
	if d.fan != nil {
		done, err := d.fanNext(ctx, raw)
		if done || err != nil {
			return err
		}
		// NextPicture drained the frames read ahead: serial from here.
		d.stopFan()
	}
	d.showing = false
	if raw {
		return d.next(ctx, takePicture)
	}
	return d.next(ctx, takeLetterbox)
}

// take is what next does with a decoded picture.
type take uint8

const (
	takePicture   take = iota // hand it out as it is (NextPicture)
	takeLetterbox             // letterbox it here (serial Next)
	takeQueued                // queue it for the letterboxers (fanned-out Next)
)

// next decodes until a picture is taken: handed out into d.pic, where it
// stays referenced until the next call; letterboxed into d.out; or queued
// for the letterboxers.
func (d *Decoder) next(ctx context.Context, t take) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t == takeQueued && d.enough() {
			return nil
		}
		err := d.cc.ReceiveFrame(d.frame)
		switch {
		case err == nil:
			d.errRun = 0
			var took bool
			switch t {
			case takePicture:
				return d.onPicture()
			case takeLetterbox:
				took, err = d.onFrame()
			case takeQueued:
				took, err = d.onQueued()
			}
			d.frame.Unref()
			if err != nil || took {
				return err
			}
		case errors.Is(err, astiav.ErrEagain):
			if err := d.feed(ctx); err != nil {
				return err
			}
		case errors.Is(err, astiav.ErrEof):
			return d.finish()
		default:
			if e := d.ioFailure(); e != nil {
				return e
			}
			d.stats.DecodeErrors++
			if d.errRun++; d.errRun > maxErrorRun {
				return fmt.Errorf("%w: %d decode errors in a row: %w", ErrCorrupt, d.errRun, err)
			}
		}
	}
}

// feed gives the decoder one video packet, or starts flushing it at the end
// of input. Packets the decoder rejects are counted and skipped.
func (d *Decoder) feed(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.pending {
			if d.draining {
				// A drained decoder never asks for more input; end defensively.
				return d.finish()
			}
			if err := d.fc.ReadFrame(d.pkt); err != nil {
				return d.endOfInput(err)
			}
			if d.pkt.StreamIndex() != d.st.Index() {
				d.pkt.Unref()
				continue
			}
			d.stats.Packets++
			if d.pkt.Flags().Has(astiav.PacketFlagCorrupt) {
				d.stats.CorruptPackets++
			}
		}
		err := d.cc.SendPacket(d.pkt)
		if errors.Is(err, astiav.ErrEagain) {
			// The decoder has pictures to hand out first; resend afterwards.
			d.pending = true
			return nil
		}
		d.pending = false
		d.pkt.Unref()
		if err == nil {
			return nil
		}
		if e := d.ioFailure(); e != nil {
			return e
		}
		d.stats.DecodeErrors++
		if d.errRun++; d.errRun > maxErrorRun {
			return fmt.Errorf("%w: %d decode errors in a row: %w", ErrCorrupt, d.errRun, err)
		}
	}
}

// endOfInput handles a failed av_read_frame: reader and context failures are
// returned; EOF or an unreadable remainder (where ffmpeg also stops) flushes
// the decoder so buffered pictures still come out.
func (d *Decoder) endOfInput(err error) error {
	if e := d.ioFailure(); e != nil {
		return e
	}
	if !errors.Is(err, astiav.ErrEof) {
		d.stats.ReadErrors++
		d.readErr = err
	}
	d.draining = true
	if err := d.cc.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("flush decoder: %w", err)
	}
	return nil
}

func (d *Decoder) finish() error {
	if d.stats.Decoded == 0 {
		msg := fmt.Sprintf("no decodable picture in %d packets (%d decode errors)", d.stats.Packets, d.stats.DecodeErrors)
		if d.readErr != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, msg, d.readErr)
		}
		return fmt.Errorf("%w: %s", ErrCorrupt, msg)
	}
	d.truncation()
	return io.EOF
}

// ioFailure reports a context or reader error behind an FFmpeg failure, so
// the caller sees the real cause rather than FFmpeg's generic code.
func (d *Decoder) ioFailure() error {
	if err := d.src.ctx.Err(); err != nil {
		return err
	}
	if d.src.err != nil {
		return fmt.Errorf("read input: %w", d.src.err)
	}
	return nil
}

// accept does the bookkeeping every decoded picture gets, whoever takes
// it: its index, its limits, its damage and its place on the clock.
func (d *Decoder) accept() (idx int, pts float64, est bool, err error) {
	idx = d.stats.Decoded
	d.stats.Decoded++
	w, h := d.frame.Width(), d.frame.Height()
	if w <= 0 || h <= 0 {
		return idx, 0, false, fmt.Errorf("%w: frame %d has size %dx%d", ErrCorrupt, idx, w, h)
	}
	if int64(w)*int64(h) > d.opts.MaxPixels {
		return idx, 0, false, fmt.Errorf("%w: frame %d is %dx%d, over %d pixels", ErrTooLarge, idx, w, h, d.opts.MaxPixels)
	}
	if frameCorrupt(d.frame) {
		d.stats.CorruptFrames++
	}
	d.clk.advance(bestEffortTimestamp(d.frame), packetDuration(d.frame))
	pts, est = d.timestamp()
	return idx, pts, est, nil
}

// keep does what Next does with every decoded picture in d.frame before
// letterboxing it: the bookkeeping, then sampling. ok is false for a
// picture sampling skips; f is the frame to hand out, less its letterbox.
func (d *Decoder) keep() (f Frame, ok bool, err error) {
	idx, pts, est, err := d.accept()
	if err != nil {
		return f, false, err
	}
	// Sampling follows the clock, not raw timestamps, so it goes on past a
	// timestamp jump.
	if !d.sel.keep(int64(idx), d.seconds(d.clk.now)) {
		return f, false, nil
	}
	w, h := d.frame.Width(), d.frame.Height()
	if rot := d.info.Rotation; rot == 90 || rot == 270 {
		w, h = h, w
	}
	return Frame{Index: idx, PTS: pts, Estimated: est, Width: w, Height: h, Size: d.opts.Size}, true, nil
}

// job describes d.frame to a boxer. Only the decoding goroutine reads the
// codec context, so the exact preprocessing's conversion size is found here.
func (d *Decoder) job(src *astiav.Frame) boxJob {
	j := boxJob{src: src, rot: d.info.Rotation}
	if d.opts.Preprocess == PreprocessExact {
		j.convW, j.convH = convertSize(d.cc, src)
	}
	return j
}

// onFrame letterboxes a kept picture here, into d.out.
func (d *Decoder) onFrame() (bool, error) {
	f, ok, err := d.keep()
	if err != nil || !ok {
		return false, err
	}
	if d.lb == nil {
		d.lb, d.canvas = d.newBoxer(), newCanvas(d.opts.Size)
	}
	if err := d.lb.apply(&d.canvas, d.job(d.frame)); err != nil {
		return false, fmt.Errorf("letterbox frame %d: %w", f.Index, err)
	}
	d.stats.Kept++
	f.fill(&d.canvas)
	d.out = &f
	return true, nil
}

// fill sets the letterbox and its placement from c.
func (f *Frame) fill(c *canvas) {
	f.Letterbox = c.buf
	f.Gain, f.PadX, f.PadY = c.p.Gain, c.p.PadX, c.p.PadY
}

// timestamp converts the best-effort timestamp to seconds exactly as ffprobe
// prints it (ts * av_q2d(time_base)), extrapolating when it is missing.
func (d *Decoder) timestamp() (float64, bool) {
	if be := bestEffortTimestamp(d.frame); be != noPTS {
		t := d.seconds(be)
		d.prevPTS, d.havePrev = t, true
		return t, false
	}
	d.stats.EstimatedPTS++
	t := 0.0
	switch {
	case d.havePrev:
		t = d.prevPTS + d.frameDur
	case d.st.StartTime() != noPTS:
		t = d.seconds(d.st.StartTime())
	}
	d.prevPTS, d.havePrev = t, true
	return t, true
}

// seconds converts a timestamp in the stream's time base to seconds as
// ts*num/den, one rounding instead of ffprobe's two (ts * av_q2d(tb)), so
// 3 ticks of 1/10 s read 0.3, not 0.30000000000000004.
func (d *Decoder) seconds(ts int64) float64 {
	const exact = 1 << 53
	if n := ts * d.tbNum; d.tbDen > 0 && ts > -exact && ts < exact && n > -exact && n < exact && (d.tbNum == 0 || n/d.tbNum == ts) {
		return float64(n) / float64(d.tbDen)
	}
	return float64(ts) * d.tb
}

// Close frees every FFmpeg resource and closes the file Open opened. It is
// safe to call more than once.
func (d *Decoder) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	// The letterboxers stop, and their slots go, before what they came from.
	d.stopFan()
	if d.lb != nil {
		d.lb.free()
	}
	if d.cc != nil {
		d.cc.Free()
	}
	if d.fc != nil {
		if d.opened {
			d.fc.CloseInput() // frees the context; our custom pb stays ours
		} else {
			d.fc.Free()
		}
	}
	if d.ioc != nil {
		d.ioc.Free()
	}
	if d.pkt != nil {
		d.pkt.Free()
	}
	if d.frame != nil {
		d.frame.Free()
	}
	if d.src != nil {
		d.src.detach()
	}
	if d.file != nil {
		if err := d.file.Close(); err != nil {
			return fmt.Errorf("close %s: %w", d.name, err)
		}
	}
	return nil
}
