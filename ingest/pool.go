package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/media/decode"
)

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Concurrency is how many videos the pool decodes at once.
	Concurrency int
	// RetryDelay is how long a task waits before another attempt after a
	// bus failure.
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Pool is `vidpipe ingest`: a set of decoders taking video tasks from the
// videos stream. A task is acked once the video's frames and end event are
// published; a process that dies leaves its tasks to be redelivered to
// another, and frames published twice are dropped by message id or by the
// coordinator.
type Pool struct {
	js   jetstream.JetStream
	in   *Ingester
	cons jetstream.Consumer
	jobs jetstream.KeyValue
	opts PoolOptions

	mu      sync.Mutex
	cancels map[string]map[*context.CancelFunc]struct{} // per job
	// stopped are the reply subjects of cancellation notices to answer
	// once the job's last video here has stopped publishing.
	stopped map[string][]string
	ackWait time.Duration
}

// NewPool waits for the ingest consumer and the jobs bucket, which the
// coordinator creates.
func NewPool(ctx context.Context, js jetstream.JetStream, in *Ingester, opts PoolOptions) (*Pool, error) {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cons, err := bus.Await(ctx, js, bus.VideosStream, bus.IngestConsumer, opts.Logger.Info)
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", bus.IngestConsumer, err)
	}
	jobs, err := js.KeyValue(ctx, bus.JobsBucket)
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", bus.JobsBucket, err)
	}
	return &Pool{
		js: js, in: in, cons: cons, jobs: jobs, opts: opts,
		cancels: map[string]map[*context.CancelFunc]struct{}{},
		stopped: map[string][]string{},
		ackWait: info.Config.AckWait,
	}, nil
}

// Run takes tasks until ctx ends. Videos in hand when it ends are handed
// back (nak) at once, so another process restarts them rather than waiting
// for the ack deadline. A stopping pool takes no new task: every delivery
// counts toward the consumer's MaxDeliver, so a task fetched only to be
// handed back again would bring a video that is merely restarted closer
// to failing.
func (p *Pool) Run(ctx context.Context) error {
	sub, err := p.js.Conn().Subscribe(bus.CancelSubject("*"), p.onCancel)
	if err != nil {
		return fmt.Errorf("subscribe to cancellations: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	slots := make(chan struct{}, p.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	p.opts.Logger.Info("ingest pool ready", "concurrency", p.opts.Concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		// Both cases of the select may be ready once ctx has ended.
		if ctx.Err() != nil {
			return nil
		}
		msg, err := p.next(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			p.opts.Logger.Warn("fetch video task", "err", err)
			bus.Sleep(ctx, time.Second)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p.handle(ctx, msg)
		}()
	}
}

// next waits for one task; it holds no more tasks than it has free
// decoders, so idle processes get the rest.
func (p *Pool) next(ctx context.Context) (jetstream.Msg, error) {
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The pull ends with ctx: a pool that stops does not sit it out.
		pull, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := p.cons.Fetch(1, jetstream.FetchContext(pull))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		var msg jetstream.Msg
		for m := range batch.Messages() {
			msg = m
		}
		berr := batch.Error()
		cancel()
		switch {
		case msg != nil && ctx.Err() != nil:
			// Delivered as the pool stopped: hand it straight back, once.
			_ = msg.Nak()
			return nil, ctx.Err()
		case msg != nil:
			return msg, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case berr != nil && !errors.Is(berr, nats.ErrTimeout) && !errors.Is(berr, context.DeadlineExceeded):
			return nil, berr
		}
	}
}

// handle ingests one task and settles its message.
func (p *Pool) handle(ctx context.Context, m jetstream.Msg) {
	var t bus.Task
	if err := bus.DecodeTask(m.Data(), &t); err != nil {
		p.opts.Logger.Error("dropping a task that cannot be read", "subject", m.Subject(), "err", err)
		_ = m.TermWithReason(err.Error())
		return
	}
	log := p.opts.Logger.With("job", t.Job, "video", t.Video)
	if state, err := p.jobState(ctx, t.Job); err != nil {
		log.Warn("job state", "err", err)
	} else if state.Final() {
		log.Info("skipping a video of a finished job", "state", state)
		_ = m.Ack()
		return
	}
	jobCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	unregister := p.register(t.Job, &cancel)
	defer unregister()
	stop := bus.KeepAlive(p.ackWait, m)
	defer stop()

	err := p.in.Ingest(jobCtx, t.Job, videoOf(&t))
	switch {
	case err == nil:
		if err := m.DoubleAck(context.WithoutCancel(ctx)); err != nil {
			log.Warn("ack video task", "err", err)
		}
	case ctx.Err() != nil:
		// Shutting down: another process starts the video again.
		_ = m.Nak()
	case jobCtx.Err() != nil:
		log.Info("video stopped: job cancelled")
		_ = m.Ack()
	default:
		log.Error("ingest video; retrying later", "err", err)
		_ = m.NakWithDelay(p.opts.RetryDelay)
	}
}

// videoOf turns a task into the Ingester's video with its own sampling and
// preprocessing, and the job's thresholds in the frame header.
func videoOf(t *bus.Task) Video {
	v := Video{
		Name: t.Video, Source: t.Source,
		Decode: &decode.Options{Every: t.Every, FPS: t.FPS, Size: t.Size},
	}
	v.Preprocess = t.Preprocess
	h := nats.Header{}
	if t.Conf > 0 {
		h.Set(bus.HeaderConf, strconv.FormatFloat(t.Conf, 'g', -1, 64))
	}
	if t.IoU > 0 {
		h.Set(bus.HeaderIoU, strconv.FormatFloat(t.IoU, 'g', -1, 64))
	}
	if t.MaxDet > 0 {
		h.Set(bus.HeaderMaxDet, strconv.Itoa(t.MaxDet))
	}
	if len(h) > 0 {
		v.Header = h
	}
	return v
}

// jobState reads the job's state from the jobs bucket.
func (p *Pool) jobState(ctx context.Context, job string) (bus.JobState, error) {
	e, err := p.jobs.Get(ctx, job)
	if err != nil {
		return "", fmt.Errorf("read job %s: %w", job, err)
	}
	return bus.JobStateOf(e.Value())
}

// register makes cancel reachable by the job's cancellation notice.
func (p *Pool) register(job string, cancel *context.CancelFunc) (unregister func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancels[job] == nil {
		p.cancels[job] = map[*context.CancelFunc]struct{}{}
	}
	p.cancels[job][cancel] = struct{}{}
	return func() {
		p.mu.Lock()
		delete(p.cancels[job], cancel)
		var replies []string
		if len(p.cancels[job]) == 0 {
			delete(p.cancels, job)
			replies = p.stopped[job]
			delete(p.stopped, job)
		}
		p.mu.Unlock()
		// Ingest has returned: nothing more of the job will be published
		// from here, so the coordinator's purge now is the last one needed.
		for _, reply := range replies {
			if err := p.js.Conn().Publish(reply, nil); err != nil {
				p.opts.Logger.Warn("acknowledge cancellation", "job", job, "err", err)
			}
		}
	}
}

// onCancel stops the videos of a cancelled job that this pool is decoding.
// A notice with a reply subject is answered once they have all stopped.
func (p *Pool) onCancel(m *nats.Msg) {
	job := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cancels[job]) > 0 && m.Reply != "" {
		p.stopped[job] = append(p.stopped[job], m.Reply)
	}
	for cancel := range p.cancels[job] {
		(*cancel)()
	}
}
