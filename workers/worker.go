// Package workers runs the detector on frames pulled from the frames stream:
// it batches what is waiting, runs the model, applies NMS, publishes one
// result per frame and only then acks the frame, and it announces each
// worker with a heartbeat in the workers KV bucket.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/metrics"
	"github.com/vidpipe/vidpipe/media/jpeg"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
)

// Options configure a Worker.
type Options struct {
	// Name identifies the worker in results, statistics, metrics and its
	// heartbeat's key.
	Name string
	// Batch is the largest batch; a smaller one runs when fewer frames wait
	// than MaxWait allows to gather.
	Batch   int
	MaxWait time.Duration
	// NMS holds the worker's thresholds; a frame's bus.HeaderConf,
	// bus.HeaderIoU and bus.HeaderMaxDet headers override conf, IoU and
	// max detections for that frame only.
	NMS detect.NMSOptions
	// Names maps class ids to names.
	Names []string
	// Layout is the model's output layout, decided when it loaded
	// (layout.Open); required.
	Layout *layout.Layout
	// NakDelay is how long a frame waits before redelivery after a
	// transient failure.
	NakDelay time.Duration
	Logger   *slog.Logger
	// Heartbeat, when set, makes Run keep an entry in bus.WorkersBucket
	// while it runs (see Heartbeat) and delete it after the drain.
	Heartbeat *Identity
	// Metrics receives the worker's counts and timings; nil records none.
	Metrics *metrics.Worker
	// Candidates is k when the model was rewritten by yolo.WithCandidates
	// to return only its k rows of highest objectness (0: not rewritten). A
	// frame whose k rows all pass the threshold may have lost detections:
	// it is counted and logged.
	Candidates int
}

// Worker pulls frames and publishes detections. It owns one model session.
type Worker struct {
	js   jetstream.JetStream
	cons jetstream.Consumer
	sess Session
	// dets are finishBatch's detectors, one per goroutine; base is their
	// thresholds, the worker's own.
	dets       []*detector
	base       thresholds
	opts       Options
	size       int
	maxDeliver int
	ackWait    time.Duration

	// bytes is a session whose model takes the letterboxed bytes
	// themselves (layout.Layout.Bytes); nil for a float model.
	bytes     BytesSession
	saturated atomic.Int64 // frames whose candidate rows all passed
	frames    []bus.Frame
	thr       []thresholds // per frame of the batch
	msgs      []jetstream.Msg
	scratch   [][]byte // per frame of the batch: JPEG pixels
	readers   int      // frames decoded at once
	// decoders holds a JPEG decoder per reader goroutine of readBatch,
	// each made on its first JPEG frame and closed when Run returns.
	decoders []*jpeg.Decoder

	// Counts for the heartbeat, written by Run and read by the beater.
	published, failed atomic.Int64
	inFlight          atomic.Int32
}

// New prepares a worker on the shared workers consumer.
func New(ctx context.Context, js jetstream.JetStream, sess Session, opts Options) (*Worker, error) {
	if opts.Batch <= 0 {
		opts.Batch = 1
	}
	if opts.Batch > sess.MaxBatch() {
		return nil, fmt.Errorf("worker %s: batch %d is over the session's %d", opts.Name, opts.Batch, sess.MaxBatch())
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 20 * time.Millisecond
	}
	if opts.NakDelay == 0 {
		opts.NakDelay = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Heartbeat != nil {
		// The name is the heartbeat's key.
		if err := bus.ValidName("worker", opts.Name); err != nil {
			return nil, err
		}
	}
	h, w := sess.InputSize()
	if h != w {
		return nil, fmt.Errorf("worker %s: model input %dx%d is not square", opts.Name, w, h)
	}
	if opts.Layout != nil && opts.Layout.Size != w {
		return nil, fmt.Errorf("worker %s: model input %dx%d, its layout was decided at %d", opts.Name, w, h, opts.Layout.Size)
	}
	det, err := newDetector(opts.NMS, opts.Layout)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", opts.Name, err)
	}
	var bs BytesSession
	if opts.Layout.Bytes {
		// The model takes frames as they travel: no conversion to floats.
		var ok bool
		if bs, ok = sess.(BytesSession); !ok {
			return nil, fmt.Errorf("worker %s: the model takes uint8 input, the session has no InputBytes", opts.Name)
		}
	}
	cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		return nil, fmt.Errorf("worker %s: consumer %s: %w", opts.Name, bus.WorkersConsumer, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("worker %s: consumer info: %w", opts.Name, err)
	}
	return &Worker{
		js: js, cons: cons, sess: sess, bytes: bs, dets: []*detector{det}, base: det.base, opts: opts, size: w,
		maxDeliver: info.Config.MaxDeliver, ackWait: info.Config.AckWait,
		frames: make([]bus.Frame, opts.Batch), thr: make([]thresholds, opts.Batch), scratch: make([][]byte, opts.Batch),
		readers: runtime.GOMAXPROCS(0),
	}, nil
}

// Run processes batches until ctx is cancelled. On cancellation it finishes
// the batch in hand (publishing and acking it) before returning: SIGTERM
// drains, nothing is lost. With Options.Heartbeat it beats from the start
// and deletes its entry once drained.
func (w *Worker) Run(ctx context.Context) error {
	log := w.opts.Logger.With("worker", w.opts.Name)
	defer w.closeDecoders()
	if w.opts.Heartbeat != nil {
		hb := w.startBeat(ctx, log)
		defer hb.stopBeat(ctx)
	}
	log.Info("worker ready", "batch", w.opts.Batch, "input", w.size)
	// next is the batch fetched while the model ran on the one before: its
	// frames arrive during the run instead of after it. It is processed
	// even if ctx ends meanwhile, as the batch in hand is.
	var next jetstream.MessageBatch
	for ctx.Err() == nil || next != nil {
		batch := next
		next = nil
		if batch == nil {
			var err error
			if batch, err = w.cons.Fetch(w.opts.Batch, jetstream.FetchMaxWait(w.opts.MaxWait)); err != nil {
				if ctx.Err() != nil {
					break
				}
				log.Warn("fetch frames", "err", err)
				bus.Sleep(ctx, w.opts.NakDelay)
				continue
			}
		}
		w.msgs = w.msgs[:0]
		for m := range batch.Messages() {
			w.msgs = append(w.msgs, m)
		}
		if len(w.msgs) == 0 {
			continue
		}
		prefetch := func() {
			if ctx.Err() != nil {
				return
			}
			// A failed fetch is retried, and logged, by the loop's own.
			next, _ = w.cons.Fetch(w.opts.Batch, jetstream.FetchMaxWait(w.opts.MaxWait))
		}
		// The batch in hand is finished even if ctx is cancelled meanwhile.
		if err := w.process(context.WithoutCancel(ctx), w.msgs, prefetch); err != nil {
			log.Error("batch", "err", err, "frames", len(w.msgs))
		}
	}
	log.Info("worker stopped")
	return nil
}

// process runs one batch; prefetch is called as the model starts. Frames
// that cannot be read are poison: they get an error result and are
// terminated. A failing model run is transient until the frame's last
// delivery, when it becomes an error result too.
func (w *Worker) process(ctx context.Context, msgs []jetstream.Msg, prefetch func()) error {
	stop := bus.KeepAlive(w.ackWait, msgs...)
	defer stop()
	w.inFlight.Store(int32(len(msgs)))
	defer w.inFlight.Store(0)

	received := time.Now()
	input, err := w.input(len(msgs))
	if err != nil {
		return err
	}
	readErrs := w.readBatch(msgs, input)
	readMS := float32(time.Since(received).Seconds() * 1000 / float64(len(msgs)))
	good := msgs[:0:0]
	for i, m := range msgs {
		if err := readErrs[i]; err != nil {
			w.poison(ctx, m, err)
			continue
		}
		if n := len(good); n < i {
			// Close the gap a poison frame left.
			input.move(n, i)
			w.frames[n] = w.frames[i]
		}
		f := &w.frames[len(good)]
		t, err := frameThresholds(m.Headers(), w.base)
		if err != nil {
			w.poison(ctx, m, fmt.Errorf("frame %s/%s#%d: %w", f.Job, f.Video, f.Seq, err))
			continue
		}
		w.thr[len(good)] = t
		good = append(good, m)
	}
	if len(good) == 0 {
		return nil
	}
	prefetch()
	t0 := time.Now()
	outs, err := w.sess.Run(ctx, len(good))
	took := time.Since(t0)
	if err != nil {
		for _, m := range good {
			w.retryOrFail(ctx, m, err)
		}
		return err
	}
	w.opts.Metrics.Batch(len(good), took)
	b := batchTimes{received: received, read: readMS, infer: float32(took.Seconds() * 1000 / float64(len(good)))}
	return w.finishBatch(ctx, good, outs, b)
}

// batchTimes are a batch's timings that go into each frame's result.
type batchTimes struct {
	received    time.Time
	read, infer float32 // ms per frame
}

// finishBatch turns the model's outputs into each frame's result,
// publishes it and only then acks the frame, several frames at a time:
// on a GPU the NMS and the publish round trips of a 32-frame batch would
// otherwise take as long as the model.
func (w *Worker) finishBatch(ctx context.Context, good []jetstream.Msg, outs []infer.Output, b batchTimes) error {
	par := min(len(good), w.readers, maxPosters)
	for len(w.dets) < par {
		det, err := newDetector(w.opts.NMS, w.opts.Layout)
		if err != nil {
			return err
		}
		w.dets = append(w.dets, det)
	}
	errs := make([]error, len(good))
	var wg sync.WaitGroup
	for p := range par {
		wg.Go(func() {
			for i := p; i < len(good); i += par {
				errs[i] = w.finishFrame(ctx, w.dets[p], good[i], &w.frames[i], outs, i, len(good), b)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// maxPosters bounds finishBatch's goroutines, each with its detector's
// scratch buffers.
const maxPosters = 8

// finishFrame finishes frame i of a batch of n with det.
func (w *Worker) finishFrame(ctx context.Context, det *detector, m jetstream.Msg, f *bus.Frame, outs []infer.Output, i, n int, b batchTimes) error {
	t1 := time.Now()
	dets, err := det.image(outs, i, w.thr[i])
	if err != nil {
		w.poison(ctx, m, err)
		return nil
	}
	if w.opts.Candidates > 0 && det.saturated(outs, i, w.opts.Candidates, w.thr[i]) {
		w.opts.Metrics.Saturated()
		if k := w.saturated.Add(1); k&(k-1) == 0 { // 1st, 2nd, 4th...: not a log line per frame
			w.opts.Logger.Warn("every candidate row passed the threshold: detections may be missing; raise --candidates",
				"worker", w.opts.Name, "frame", fmt.Sprintf("%s/%s#%d", f.Job, f.Video, f.Seq), "candidates", w.opts.Candidates, "frames_so_far", k)
		}
	}
	r := w.result(f, dets, n)
	r.Token = m.Headers().Get(bus.HeaderFrameToken)
	r.QueueMS = float32(float64(b.received.UnixNano()-f.PublishedUnixNano) / 1e6)
	r.ReadMS, r.InferMS = b.read, b.infer
	r.PostMS = float32(time.Since(t1).Seconds() * 1000)
	if err := w.publish(ctx, r); err != nil {
		if errors.Is(err, bus.ErrBadMessage) {
			// A result that cannot be encoded never will be.
			w.poison(ctx, m, err)
			return nil
		}
		// Not acked: the frame comes back after the delay.
		_ = m.NakWithDelay(w.opts.NakDelay)
		return err
	}
	if err := m.Ack(); err != nil {
		return fmt.Errorf("ack frame %s/%s#%d: %w", f.Job, f.Video, f.Seq, err)
	}
	return nil
}

// frameInput is a batch's input buffer: CHW floats in [0, 1] for a float
// model, or the packed RGB bytes for a model that takes them.
type frameInput struct {
	f   []float32
	b   []byte
	per int // values per frame
}

func (w *Worker) input(n int) (frameInput, error) {
	per := 3 * w.size * w.size
	if w.bytes != nil {
		b, err := w.bytes.InputBytes(n)
		return frameInput{b: b, per: per}, err
	}
	f, err := w.sess.Input(n)
	return frameInput{f: f, per: per}, err
}

// set writes frame i's packed RGB pixels.
func (in frameInput) set(i int, rgb []byte) {
	if in.b != nil {
		copy(in.b[i*in.per:(i+1)*in.per], rgb)
		return
	}
	detect.Planar(in.f[i*in.per:(i+1)*in.per], rgb[:in.per])
}

// move copies frame i's slot to slot n.
func (in frameInput) move(n, i int) {
	if in.b != nil {
		copy(in.b[n*in.per:(n+1)*in.per], in.b[i*in.per:(i+1)*in.per])
		return
	}
	copy(in.f[n*in.per:(n+1)*in.per], in.f[i*in.per:(i+1)*in.per])
}

// readBatch decodes each frame into its input slot, several at a time: on
// a GPU node the CPU work per frame (JPEG decoding, the conversion to
// floats: 1.1 ms for a raw 640 frame) would otherwise hold the worker below
// the device's rate. It returns each frame's error.
func (w *Worker) readBatch(msgs []jetstream.Msg, input frameInput) []error {
	errs := make([]error, len(msgs))
	par := min(len(msgs), w.readers)
	if len(w.decoders) < par {
		w.decoders = append(w.decoders, make([]*jpeg.Decoder, par-len(w.decoders))...)
	}
	var wg sync.WaitGroup
	for p := range par {
		wg.Go(func() {
			for i := p; i < len(msgs); i += par {
				errs[i] = w.readFrame(msgs[i], &w.frames[i], input, i, &w.scratch[i], p)
			}
		})
	}
	wg.Wait()
	return errs
}

// readFrame decodes one frame into slot i of dst; scratch holds its JPEG
// pixels, decoded with reader's decoder.
func (w *Worker) readFrame(m jetstream.Msg, f *bus.Frame, dst frameInput, i int, scratch *[]byte, reader int) error {
	if err := bus.DecodeFrame(m.Data(), f); err != nil {
		return err
	}
	if f.Size != w.size {
		return fmt.Errorf("frame %s/%s#%d is %dx%d, the model takes %dx%d", f.Job, f.Video, f.Seq, f.Size, f.Size, w.size, w.size)
	}
	rgb := f.Pixels
	if f.Codec == bus.JPEG {
		if w.decoders[reader] == nil {
			w.decoders[reader] = &jpeg.Decoder{}
		}
		var err error
		if rgb, err = w.decodeJPEG(w.decoders[reader], f.Pixels, scratch); err != nil {
			return fmt.Errorf("frame %s/%s#%d: jpeg: %w", f.Job, f.Video, f.Seq, err)
		}
	}
	dst.set(i, rgb)
	return nil
}

// decodeJPEG decodes a frame's JPEG pixels into scratch as a picture of
// the model's size; dec refuses any other size before FFmpeg allocates it
// (a 600-byte JPEG may claim 65500x65500).
func (w *Worker) decodeJPEG(dec *jpeg.Decoder, b []byte, scratch *[]byte) ([]byte, error) {
	rgb, err := dec.Decode(*scratch, b, w.size, w.size)
	if err != nil {
		return nil, err
	}
	*scratch = rgb
	return rgb, nil
}

// closeDecoders frees the readers' JPEG decoders; a later batch makes new
// ones.
func (w *Worker) closeDecoders() {
	for i, d := range w.decoders {
		if d != nil {
			d.Close()
			w.decoders[i] = nil
		}
	}
}

func (w *Worker) result(f *bus.Frame, dets []detect.Detection, batch int) *bus.Result {
	lb := detect.Letterbox{Gain: f.Gain, PadX: float64(f.PadX), PadY: float64(f.PadY)}
	lb.ScaleBack(dets, f.Width, f.Height)
	out := make([]bus.Detection, len(dets))
	for i, d := range dets {
		out[i] = bus.Detection{
			ClassID: d.ClassID, Class: w.className(d.ClassID), Conf: d.Conf,
			Box: [4]float32{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2},
		}
	}
	return &bus.Result{
		Job: f.Job, Video: f.Video, Seq: f.Seq, Index: f.Index, PTS: f.PTS,
		Detections: out, Worker: w.opts.Name, Batch: batch,
		PublishedUnixNano: f.PublishedUnixNano, DecodeMS: f.DecodeMS,
	}
}

func (w *Worker) className(id int) string {
	if id >= 0 && id < len(w.opts.Names) {
		return w.opts.Names[id]
	}
	return "class" + strconv.Itoa(id)
}

func (w *Worker) publish(ctx context.Context, r *bus.Result) error {
	r.DoneUnixNano = time.Now().UnixNano()
	b, err := bus.EncodeResult(r)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: bus.ResultSubject(r.Job, r.Video), Data: b}
	if _, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.MsgID(r.Job, r.Video, r.Seq))); err != nil {
		return fmt.Errorf("publish result %s/%s#%d: %w", r.Job, r.Video, r.Seq, err)
	}
	w.published.Add(1)
	if r.Error != "" {
		w.failed.Add(1)
	}
	w.opts.Metrics.Published(r.Error != "")
	return nil
}

// poison records a frame that can never be analysed and terminates it, so
// it is neither lost silently nor redelivered forever.
func (w *Worker) poison(ctx context.Context, m jetstream.Msg, cause error) {
	log := w.opts.Logger.With("worker", w.opts.Name, "subject", m.Subject())
	job, video, seq, ok := bus.ParseFrameID(m.Subject(), m.Headers().Get(jetstream.MsgIDHeader))
	if ok {
		r := &bus.Result{Job: job, Video: video, Seq: seq, Error: cause.Error(), Worker: w.opts.Name, Token: m.Headers().Get(bus.HeaderFrameToken)}
		if f := w.frameOf(m); f != nil {
			r.Index, r.PTS = f.Index, f.PTS
		} else {
			// Its index is unreadable; its seq is what names it.
			r.Error = fmt.Sprintf("published frame #%d: %v", seq, cause)
		}
		if err := w.publish(ctx, r); err != nil {
			log.Warn("publish poison result", "err", err)
			_ = m.NakWithDelay(w.opts.NakDelay)
			return
		}
	}
	log.Warn("poison frame", "err", cause)
	if err := m.TermWithReason(cause.Error()); err != nil {
		log.Warn("term frame", "err", err)
	}
}

func (w *Worker) frameOf(m jetstream.Msg) *bus.Frame {
	var f bus.Frame
	if bus.DecodeFrame(m.Data(), &f) != nil {
		return nil
	}
	return &f
}

// retryOrFail naks a frame after a transient failure, or turns it into an
// error result on its last allowed delivery.
func (w *Worker) retryOrFail(ctx context.Context, m jetstream.Msg, cause error) {
	md, err := m.Metadata()
	if err == nil && w.maxDeliver > 0 && int(md.NumDelivered) >= w.maxDeliver {
		w.poison(ctx, m, fmt.Errorf("after %d deliveries: %w", md.NumDelivered, cause))
		return
	}
	_ = m.NakWithDelay(w.opts.NakDelay)
}
