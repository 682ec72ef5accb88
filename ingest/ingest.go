// Package ingest turns videos into frame messages: it decodes each video,
// letterboxes the frames to the model input and publishes them to the frames
// stream, bracketed by start and end events for the coordinator.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/media/jpeg"
	"github.com/vidpipe/vidpipe/storage"
)

// Video is one input: a validated name (the key of its outputs) and where
// to read it from.
type Video struct {
	Name   string
	Source string
	// Decode, when set, replaces the Ingester's decode options for this
	// video: a job's own sampling and the model's input size. Its
	// Preprocess is ignored: Preprocess below, or the Ingester's, applies.
	Decode *decode.Options
	// Preprocess, when set, names the preprocessing (decode.ParsePreprocess)
	// instead of the Ingester's: a job's own choice.
	Preprocess string
	// Header goes with every frame message: a job's detection thresholds
	// for the workers.
	Header nats.Header
}

// DefaultJPEGQuality is the quality of JPEG frames unless Options say.
const DefaultJPEGQuality = 90

// Options configure an Ingester.
type Options struct {
	Decode decode.Options
	// Codec is how pixels travel: raw RGB (default) or JPEG.
	Codec bus.Codec
	// JPEGQuality is the quality of JPEG frames on libjpeg's scale, 1 to
	// 100 (0: 90), as media/jpeg.NewEncoder maps it to FFmpeg's mjpeg
	// encoder.
	JPEGQuality int
	// FullBackoff is how long to wait before retrying when the frames stream
	// is full.
	FullBackoff time.Duration
	Logger      *slog.Logger
	// Progress, when set, is called after each published frame.
	Progress func(job, video string, published int)
	// Open resolves s3:// sources; videos are then streamed with ranged
	// reads, never downloaded whole.
	Open Opener
	// StorageRetry bounds the retries of a source whose store is
	// unavailable (zero: storage.DefaultRetry); past it the task is handed
	// back for later rather than the video failed.
	StorageRetry storage.RetryPolicy
}

// Ingester publishes videos' frames. One Ingester may ingest several videos
// concurrently; each Ingest call owns its decoder and buffers.
type Ingester struct {
	js   jetstream.JetStream
	opts Options
}

// New returns an Ingester publishing through js.
func New(js jetstream.JetStream, opts Options) *Ingester {
	if opts.JPEGQuality == 0 {
		opts.JPEGQuality = DefaultJPEGQuality
	}
	if opts.FullBackoff == 0 {
		opts.FullBackoff = 20 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ingester{js: js, opts: opts}
}

// Ingest decodes v and publishes its frames for job. A video that cannot be
// opened or stops decoding early is the video's failure, not Ingest's: it
// gets its end event carrying the error, so the coordinator never waits for
// it, and Ingest returns nil. Ingest returns an error only when the bus
// fails or ctx ends, that is when the coordinator may be left waiting.
func (in *Ingester) Ingest(ctx context.Context, job string, v Video) error {
	log := in.opts.Logger.With("job", job, "video", v.Name)
	end := bus.Event{Type: bus.VideoEnded, Job: job, Video: v.Name, Source: v.Source}
	start := time.Now()

	opts := in.opts.Decode
	if v.Decode != nil {
		opts = *v.Decode
		opts.Preprocess = in.opts.Decode.Preprocess
	}
	var err error
	if v.Preprocess != "" {
		opts.Preprocess, err = decode.ParsePreprocess(v.Preprocess)
	}
	var dec *decode.Decoder
	closeDec := func() {}
	if err == nil {
		p := in.opts.StorageRetry
		if p.For <= 0 {
			p = storage.DefaultRetry()
		}
		p.Logger = log
		if !IsRemote(v.Source) {
			p.For = 0 // a local file is there or not: one try
		}
		err = storage.Retry(ctx, p, "open "+v.Source, func() error {
			var oerr error
			dec, closeDec, oerr = in.open(ctx, v.Source, opts)
			return oerr
		})
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if storage.IsTransient(err) {
			// The store is down, not the video bad: the task is handed back.
			return fmt.Errorf("open %s: storage unavailable: %w", v.Name, err)
		}
		end.Error = err.Error()
		log.Warn("cannot open video", "source", v.Source, "err", err)
		return in.publishEvent(ctx, &end)
	}
	defer closeDec()
	var enc *jpeg.Encoder
	if in.opts.Codec == bus.JPEG {
		// One encoder for the video's frames; a bad quality fails the
		// video as an unreadable one does, before its start event.
		if enc, err = jpeg.NewEncoder(in.opts.JPEGQuality); err != nil {
			end.Error = err.Error()
			log.Warn("cannot encode frames", "err", err)
			return in.publishEvent(ctx, &end)
		}
		defer enc.Close()
	}

	info := dec.Info()
	// The key signs this attempt's frame tokens; the start event hands it
	// to the coordinator, which workers cannot read.
	key := bus.NewKey()
	if err := in.publishEvent(ctx, &bus.Event{
		Type: bus.VideoStarted, Job: job, Video: v.Name, Source: v.Source,
		Width: info.Width, Height: info.Height, FPS: info.FPS, Duration: info.Duration,
		FramesEstimate: info.Frames, Codec: info.Codec, Key: key,
	}); err != nil {
		return err
	}
	log.Info("ingesting", "source", v.Source, "width", info.Width, "height", info.Height, "fps", info.FPS, "frames_estimate", info.Frames)

	p := publisher{in: in, job: job, video: v.Name, key: key, header: nats.Header(http.Header(v.Header).Clone()), jpeg: enc}
	if p.header == nil {
		p.header = nats.Header{}
	}
	var decodeErr error
	for {
		t0 := time.Now()
		fr, err := dec.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			decodeErr = err
			break
		}
		if err := p.publish(ctx, fr, time.Since(t0)); err != nil {
			return err
		}
	}
	st := dec.Stats()
	end.Frames = p.seq
	end.Decoded = st.Decoded
	end.CorruptFrames = st.Corrupt
	end.Truncated, end.Expected, end.Missing = st.Truncated, st.Expected, st.Missing
	end.DecodeSeconds = time.Since(start).Seconds()
	if decodeErr != nil {
		end.Error = decodeErr.Error()
		log.Warn("decoding stopped early", "err", decodeErr, "frames", p.seq)
	}
	if err := in.publishEvent(ctx, &end); err != nil {
		return err
	}
	log.Info("ingested", "frames", p.seq, "decoded", st.Decoded, "corrupt", st.Corrupt, "seconds", end.DecodeSeconds)
	return nil
}

// open starts decoding source: a local file, or an object read through a
// seekable ranged reader (MP4s without faststart need the seeks).
// The returned close releases the decoder and then the reader under it.
func (in *Ingester) open(ctx context.Context, source string, opts decode.Options) (*decode.Decoder, func(), error) {
	if !IsRemote(source) {
		dec, err := decode.Open(ctx, source, nil, opts)
		if err != nil {
			return nil, nil, err
		}
		return dec, func() { dec.Close() }, nil
	}
	if in.opts.Open == nil {
		return nil, nil, fmt.Errorf("open %s: no storage configured", source)
	}
	b, key, err := in.opts.Open(ctx, source)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", source, err)
	}
	r, err := storage.NewReadSeeker(ctx, b, key, storage.ReaderOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", source, err)
	}
	dec, err := decode.Open(ctx, source, r, opts)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return dec, func() { dec.Close(); r.Close() }, nil
}

// publisher holds one video's publishing state and reusable buffers.
type publisher struct {
	in         *Ingester
	job, video string
	key        string
	// header is the video's frame header; publishing sets its message id.
	header nats.Header
	seq    int
	buf    []byte
	jpeg   *jpeg.Encoder // with Codec JPEG
	jpg    []byte
}

func (p *publisher) publish(ctx context.Context, fr *decode.Frame, decodeTime time.Duration) error {
	f := bus.Frame{
		Job: p.job, Video: p.video, Seq: p.seq, Index: fr.Index,
		PTS: fr.PTS, Estimated: fr.Estimated, Width: fr.Width, Height: fr.Height,
		Size: fr.Size, Gain: fr.Gain, PadX: float32(fr.PadX), PadY: float32(fr.PadY),
		DecodeMS: float32(decodeTime.Seconds() * 1000), Codec: p.in.opts.Codec,
		Pixels: fr.Letterbox,
	}
	if f.Codec == bus.JPEG {
		var err error
		if p.jpg, err = p.jpeg.Encode(p.jpg[:0], fr.Letterbox, fr.Size, fr.Size); err != nil {
			return fmt.Errorf("encode frame %d of %s: %w", fr.Index, p.video, err)
		}
		f.Pixels = p.jpg
	}
	if p.seq > 0 && p.seq%bus.ProgressStep == 0 {
		// Before the frame: the coordinator must know the range a result
		// may fall in before any result in it can exist.
		if err := p.in.publishEvent(ctx, &bus.Event{Type: bus.VideoProgress, Job: p.job, Video: p.video, Frames: p.seq}); err != nil {
			return err
		}
	}
	p.header.Set(bus.HeaderFrameToken, bus.FrameToken(p.key, p.job, p.video, p.seq))
	f.PublishedUnixNano = time.Now().UnixNano()
	p.buf = bus.AppendFrame(p.buf[:0], &f)
	msg := &nats.Msg{Subject: bus.FrameSubject(p.job, p.video), Data: p.buf, Header: p.header}
	if err := p.in.publishRetry(ctx, msg, bus.MsgID(p.job, p.video, p.seq)); err != nil {
		return fmt.Errorf("publish frame %d of %s: %w", fr.Index, p.video, err)
	}
	p.seq++
	if p.in.opts.Progress != nil {
		p.in.opts.Progress(p.job, p.video, p.seq)
	}
	return nil
}

// publishRetry publishes msg, waiting while the frames stream is full: that
// refusal is the pipeline's backpressure, not an error.
func (in *Ingester) publishRetry(ctx context.Context, msg *nats.Msg, id string) error {
	for {
		_, err := in.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
		if err == nil || !bus.IsStreamFull(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(in.opts.FullBackoff):
		}
	}
}

func (in *Ingester) publishEvent(ctx context.Context, e *bus.Event) error {
	b, err := bus.EncodeEvent(e)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: bus.EventSubject(e.Job, e.Video), Data: b}
	id := bus.EventMsgID(e.Job, e.Video, e.Type)
	switch e.Type {
	case bus.VideoStarted:
		id = bus.StartMsgID(e.Job, e.Video, e.Key)
	case bus.VideoProgress:
		id += "." + strconv.Itoa(e.Frames)
	}
	if _, err := in.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish %s event of %s: %w", e.Type, e.Video, err)
	}
	return nil
}
