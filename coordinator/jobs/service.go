package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/storage"
)

// ErrFinished: the job has already ended, so it cannot be cancelled.
var ErrFinished = errors.New("job has finished")

// Options configure a Service.
type Options struct {
	// Out is where job folders go unless a spec names its own output: a
	// local directory or s3://bucket/prefix.
	Out string
	// OutIsJobFolder makes Out the folder of a job without its own output,
	// not its parent (`vidpipe run` without --job).
	OutIsJobFolder bool
	// Versions are the components' versions, recorded in job.json.
	Versions map[string]string
	// Model is what the worker pool serves; jobs run it.
	Model Model
	// Open resolves s3:// inputs and outputs.
	Open ingest.Opener
	// Annotate writes annotated videos for jobs that want them; one per
	// process (annotate.Stage), so its budget is shared by all jobs.
	Annotate coordinator.Annotator
	// LocalInputs allows local paths in specs: files on the ingest machines.
	LocalInputs bool
	// Buckets, when set, are the only buckets jobs may read and write.
	Buckets []string
	// FlushEvery is how often running jobs' progress reaches the bucket.
	FlushEvery time.Duration
	// OnFrames is told of frames newly analysed, and OnRate of a running
	// job's frames per second (nil: forget the job); both for metrics.
	OnFrames func(n int)
	OnRate   func(job string, fps *float64)
	Logger   *slog.Logger
	// StorageRetry bounds a job's retries of one output while the store is
	// unavailable (zero: storage.DefaultRetry); past it the job runs again.
	StorageRetry storage.RetryPolicy
}

// Service runs jobs: Submit, Get, List and Cancel back the HTTP API; Start
// resumes the jobs a previous coordinator left running.
type Service struct {
	js    jetstream.JetStream
	store *Store
	opts  Options

	mu      sync.Mutex
	ctx     context.Context
	running map[string]*follower
	wg      sync.WaitGroup
}

// New returns a Service on js; Start it before use.
func New(js jetstream.JetStream, store *Store, opts Options) *Service {
	if opts.FlushEvery == 0 {
		opts.FlushEvery = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{js: js, store: store, opts: opts, running: map[string]*follower{}}
}

// Start resumes every job that is queued or running. The jobs run until
// ctx ends; Wait then returns once they have stopped.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	recs, err := s.store.List(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if !r.State.Final() {
			s.opts.Logger.Info("resuming job", "job", r.ID, "state", r.State, "videos", len(r.Videos))
			s.launch(r.ID)
		}
	}
	return nil
}

// StateCounts counts jobs per state (metrics).
func (s *Service) StateCounts(ctx context.Context) (map[string]int, error) {
	briefs, err := s.store.Briefs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, b := range briefs {
		out[string(b.State)]++
	}
	return out, nil
}

// Wait waits for the jobs this process follows to stop.
func (s *Service) Wait() { s.wg.Wait() }

// Get returns one job.
func (s *Service) Get(ctx context.Context, id string) (*Record, error) { return s.store.Get(ctx, id) }

// List returns every job, newest first.
func (s *Service) List(ctx context.Context) ([]Brief, error) { return s.store.Briefs(ctx) }

// Submit validates spec, expands its inputs and starts the job. A spec
// with the idempotency key of an existing job returns that job and false.
func (s *Service) Submit(ctx context.Context, spec Spec) (*Record, bool, error) {
	if err := spec.Validate(s.opts.LocalInputs); err != nil {
		return nil, false, err
	}
	if m := spec.Model; m != "" && m != s.opts.Model.Path && m != "sha256:"+s.opts.Model.SHA256 {
		return nil, false, fmt.Errorf("%w: model: %q is not the model this worker pool serves (%s, sha256:%s); run a pool per model", ErrBadSpec, m, s.opts.Model.Path, s.opts.Model.SHA256)
	}
	out := spec.Output
	if out == "" {
		out = s.opts.Out
	}
	if err := checkBuckets(s.opts.Buckets, "inputs", spec.Inputs...); err != nil {
		return nil, false, err
	}
	if err := checkBuckets(s.opts.Buckets, "output", spec.Output); err != nil {
		return nil, false, err
	}
	id := jobID(&spec)
	if old, err := s.store.Get(ctx, id); err == nil {
		return s.existing(old, &spec)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	sources, err := ingest.ExpandWith(ctx, spec.Inputs, s.opts.Open, ingest.Policy{
		Allow: allowLocation(s.opts.LocalInputs, s.opts.Buckets),
	})
	if err != nil {
		return nil, false, fmt.Errorf("%w: inputs: %w", ErrBadSpec, err)
	}
	if len(sources) > MaxVideos {
		return nil, false, fmt.Errorf("%w: inputs: %d videos, at most %d per job", ErrBadSpec, len(sources), MaxVideos)
	}
	// A manifest may name more locations: the same rules hold for them.
	for _, src := range sources {
		if err := checkLocation(src, s.opts.LocalInputs); err != nil {
			return nil, false, fmt.Errorf("%w: inputs: %v", ErrBadSpec, err)
		}
	}
	if err := checkBuckets(s.opts.Buckets, "inputs", sources...); err != nil {
		return nil, false, err
	}
	rec := &Record{
		ID: id, State: bus.JobQueued, Spec: spec, Model: s.opts.Model,
		Output: joinOutput(out, id), Created: time.Now().UTC(), Versions: s.opts.Versions,
	}
	if spec.Output == "" && s.opts.OutIsJobFolder {
		rec.Output = joinOutput(out, "")
	}
	for i, name := range ingest.Names(sources) {
		rec.Videos = append(rec.Videos, Video{Name: name, Source: sources[i], State: VideoQueued})
	}
	if err := s.store.Create(ctx, rec); err != nil {
		if errors.Is(err, ErrExists) {
			if old, gerr := s.store.Get(ctx, id); gerr == nil {
				return s.existing(old, &spec)
			}
		}
		return nil, false, err
	}
	s.opts.Logger.Info("job submitted", "job", id, "videos", len(rec.Videos), "output", rec.Output)
	s.launch(id)
	return rec, true, nil
}

// existing answers a submission whose job id is taken: the same job when
// the idempotency keys match, a conflict otherwise.
func (s *Service) existing(old *Record, spec *Spec) (*Record, bool, error) {
	if spec.IdempotencyKey != "" && old.Spec.IdempotencyKey == spec.IdempotencyKey {
		return old, false, nil
	}
	return nil, false, fmt.Errorf("job %s: %w", old.ID, ErrExists)
}

// jobID is the spec's name, a name derived from its idempotency key (so a
// retry finds the first job), or a fresh one.
func jobID(spec *Spec) string {
	switch {
	case spec.Name != "":
		return spec.Name
	case spec.IdempotencyKey != "":
		h := sha256.Sum256([]byte(spec.IdempotencyKey))
		return "job-" + hex.EncodeToString(h[:8])
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "job-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// joinOutput is the job's folder under out; a file:// URI is a local path.
func joinOutput(out, id string) string {
	if ingest.IsRemote(out) {
		return strings.TrimSuffix(out, "/") + "/" + id
	}
	if strings.Contains(out, "://") {
		if _, _, dir, err := storage.ParseURI(out); err == nil {
			out = dir
		}
	}
	return filepath.Join(out, id)
}

// Cancel stops a job: its state becomes CANCELLED, ingest processes stop
// its videos, and its queued frames and tasks are purged.
func (s *Service) Cancel(ctx context.Context, id string) (*Record, error) {
	now := time.Now().UTC()
	rec, err := s.store.Update(ctx, id, func(r *Record) error {
		if r.State.Final() {
			return fmt.Errorf("job %s is %s: %w", id, r.State, ErrFinished)
		}
		r.State, r.Finished = bus.JobCancelled, &now
		for i := range r.Videos {
			if v := &r.Videos[i]; v.State == VideoQueued || v.State == VideoRunning {
				v.State = VideoCancelled
			}
		}
		return nil
	})
	if err != nil {
		return rec, err
	}
	s.mu.Lock()
	if f := s.running[id]; f != nil {
		f.cancel()
	}
	s.mu.Unlock()
	s.announceCancel(ctx, rec)
	s.purge(ctx, id)
	s.opts.Logger.Info("job cancelled", "job", id)
	return rec, nil
}

// announceCancel tells ingest processes to stop the job's videos. Ingest
// may publish a few frames between the purge and the notice, so each
// process that was ingesting some answers once they have stopped, and
// every answer purges again: the last purge follows the last frame, with
// no timer guessing how long that takes. At most one answer per video can
// come (a process answers only with a video in hand), which bounds the
// subscription; it also ends with the service.
func (s *Service) announceCancel(ctx context.Context, rec *Record) {
	nc := s.js.Conn()
	n := 0
	for _, v := range rec.Videos {
		if v.State == VideoCancelled {
			n++ // stopped by this cancel: it may be in an ingest's hands
		}
	}
	var sub *nats.Subscription
	reply := ""
	if n > 0 {
		reply = nc.NewInbox()
		var err error
		sub, err = nc.Subscribe(reply, func(*nats.Msg) {
			s.opts.Logger.Info("ingest stopped the cancelled job's videos; purging again", "job", rec.ID)
			s.purge(context.WithoutCancel(ctx), rec.ID)
		})
		if err != nil {
			s.opts.Logger.Warn("follow cancellation", "job", rec.ID, "err", err)
			sub, reply = nil, ""
		} else {
			_ = sub.AutoUnsubscribe(n)
			s.mu.Lock()
			svcCtx := s.ctx
			s.mu.Unlock()
			if svcCtx != nil {
				context.AfterFunc(svcCtx, func() { _ = sub.Unsubscribe() })
			}
		}
	}
	if err := nc.PublishRequest(bus.CancelSubject(rec.ID), reply, nil); err != nil {
		s.opts.Logger.Warn("announce cancellation", "job", rec.ID, "err", err)
	}
}

// purge drops a job's queued frames and video tasks.
func (s *Service) purge(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for stream, prefix := range map[string]string{bus.FramesStream: bus.FramesSubject, bus.VideosStream: bus.VideosSubject} {
		st, err := s.js.Stream(ctx, stream)
		if err == nil {
			err = st.Purge(ctx, jetstream.WithPurgeSubject(bus.JobFilter(prefix, id)))
		}
		if err != nil {
			s.opts.Logger.Warn("purge cancelled job", "job", id, "stream", stream, "err", err)
		}
	}
}

// follower is one job this process follows.
type follower struct {
	cancel context.CancelFunc

	mu       sync.Mutex
	progress map[string]coordinator.Progress
	dirty    bool
}

// update records a video's progress and returns how many frames it gained.
func (f *follower) update(p coordinator.Progress) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	gained := p.Done - f.progress[p.Video].Done
	f.progress[p.Video] = p
	f.dirty = true
	return gained
}

// launch follows job id in the background unless this process already does.
func (s *Service) launch(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[id] != nil || s.ctx == nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	f := &follower{cancel: cancel, progress: map[string]coordinator.Progress{}}
	s.running[id] = f
	s.wg.Go(func() {
		defer func() {
			cancel()
			s.mu.Lock()
			delete(s.running, id)
			s.mu.Unlock()
		}()
		// A store that is unavailable fails no job: the job runs again
		// (its results are all on the stream) until its outputs are written.
		wait := time.Second
		for {
			err := s.follow(ctx, id, f)
			if err == nil || ctx.Err() != nil {
				return
			}
			if storage.IsTransient(err) {
				s.opts.Logger.Warn("job outputs not written, storage unavailable; running the job again", "job", id, "err", err, "wait", wait)
				bus.Sleep(ctx, wait)
				wait = min(2*wait, time.Minute)
				continue
			}
			s.opts.Logger.Error("job", "job", id, "err", err)
			s.fail(id, err)
			return
		}
	})
}

// follow runs one job to its end: it dispatches the videos (once), follows
// the results into the outputs, and records the outcome.
func (s *Service) follow(ctx context.Context, id string, f *follower) error {
	now := time.Now().UTC()
	rec, err := s.store.Update(ctx, id, func(r *Record) error {
		if r.State.Final() {
			return errUnchanged
		}
		if r.State == bus.JobQueued {
			r.State, r.Started = bus.JobRunning, &now
		}
		return nil
	})
	if err != nil || rec.State.Final() {
		return err
	}
	if rec.Dispatched {
		if err := s.redispatch(ctx, rec); err != nil {
			// The job goes on; the next coordinator looks again.
			s.opts.Logger.Warn("check dispatched tasks", "job", id, "err", err)
		}
	} else {
		// NATS may be failing over: retry before failing the job.
		wait := time.Second
		for attempt := 1; ; attempt++ {
			err := s.dispatch(ctx, rec)
			if err == nil {
				break
			}
			if attempt == dispatchAttempts || ctx.Err() != nil {
				return err
			}
			s.opts.Logger.Warn("dispatch job; retrying", "job", id, "err", err, "attempt", attempt)
			bus.Sleep(ctx, wait)
			wait *= 2
		}
	}
	out, prefix, closeOut, err := s.output(ctx, rec)
	if err != nil {
		return err
	}
	defer closeOut()
	var annotate coordinator.Annotator
	if rec.Spec.annotate() {
		annotate = s.opts.Annotate
	}
	coord := coordinator.New(s.js, coordinator.Options{
		Out: out, Prefix: prefix, Annotate: annotate,
		Logger: s.opts.Logger, StorageRetry: s.opts.StorageRetry,
		OnProgress: func(p coordinator.Progress) {
			if n := f.update(p); n > 0 && s.opts.OnFrames != nil {
				s.opts.OnFrames(n)
			}
		},
		OnVideo: func(vs coordinator.VideoSummary) { s.recordVideo(ctx, id, vs) },
	})
	job := coordinator.Job{ID: rec.ID}
	if rec.Started != nil {
		job.Started = *rec.Started // persisted: a resumed job keeps its wall time
	}
	for _, v := range rec.Videos {
		job.Videos = append(job.Videos, coordinator.VideoSpec{Name: v.Name, Source: v.Source})
	}
	flushDone := make(chan struct{})
	var flushWG sync.WaitGroup
	flushWG.Go(func() {
		t := time.NewTicker(s.opts.FlushEvery)
		defer t.Stop()
		for {
			select {
			case <-flushDone:
				return
			case <-t.C:
				s.flush(ctx, id, f)
			}
		}
	})
	sum, err := coord.RunJob(ctx, job)
	close(flushDone)
	flushWG.Wait()
	if s.opts.OnRate != nil {
		s.opts.OnRate(id, nil)
	}
	if err != nil {
		return err
	}
	return s.finish(ctx, id, sum, out, prefix)
}

// dispatchAttempts bounds tries at dispatching a job's tasks (1+2+4+8 s of
// waiting in all).
const dispatchAttempts = 5

// dispatch puts one task per video on the videos stream. Message ids make
// a repeat after a crash harmless inside the duplicate window; Dispatched
// makes it unnecessary after.
func (s *Service) dispatch(ctx context.Context, rec *Record) error {
	for _, v := range rec.Videos {
		if err := s.publishTask(ctx, rec, v, "task."+rec.ID+"."+v.Name); err != nil {
			return err
		}
	}
	_, err := s.store.Update(ctx, rec.ID, func(r *Record) error {
		r.Dispatched = true
		return nil
	})
	return err
}

// publishTask puts video v's task on the videos stream under msgID.
func (s *Service) publishTask(ctx context.Context, rec *Record, v Video, msgID string) error {
	t := bus.Task{
		Job: rec.ID, Video: v.Name, Source: v.Source,
		Every: rec.Spec.Every, FPS: rec.Spec.FPS, Size: rec.Model.Input, Preprocess: rec.Spec.Preprocess,
		Conf: rec.Spec.Conf, IoU: rec.Spec.IoU, MaxDet: rec.Spec.MaxDet,
	}
	if err := t.Validate(); err != nil {
		return err
	}
	b, err := bus.EncodeTask(&t)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: bus.VideoSubject(rec.ID, v.Name), Data: b}
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("dispatch %s of job %s: %w", v.Name, rec.ID, err)
	}
	return nil
}

// output opens the bucket that writes a job's files and the job folder's
// prefix in it; a local folder is a bucket too.
func (s *Service) output(ctx context.Context, rec *Record) (storage.Bucket, string, func(), error) {
	if !ingest.IsRemote(rec.Output) {
		b, prefix, err := storage.Open(ctx, rec.Output, storage.Options{})
		if err != nil {
			return nil, "", nil, fmt.Errorf("output %s: %w", rec.Output, err)
		}
		return b, prefix, func() { b.Close() }, nil
	}
	if s.opts.Open == nil {
		return nil, "", nil, fmt.Errorf("output %s: no storage configured", rec.Output)
	}
	b, prefix, err := s.opts.Open(ctx, rec.Output)
	if err != nil {
		return nil, "", nil, fmt.Errorf("output %s: %w", rec.Output, err)
	}
	if err := storage.ValidKey(prefix); err != nil {
		return nil, "", nil, fmt.Errorf("output %s: %w", rec.Output, err)
	}
	// Open's buckets belong to its owner, which closes them.
	return b, prefix, func() {}, nil
}

// flush writes a running job's progress to its record, if it moved.
func (s *Service) flush(ctx context.Context, id string, f *follower) {
	f.mu.Lock()
	if !f.dirty {
		f.mu.Unlock()
		return
	}
	snap := make(map[string]coordinator.Progress, len(f.progress))
	for k, v := range f.progress {
		snap[k] = v
	}
	f.dirty = false
	f.mu.Unlock()
	rec, err := s.store.Update(ctx, id, func(r *Record) error {
		if r.State != bus.JobRunning {
			return errUnchanged
		}
		applyProgress(r, snap, time.Now())
		return nil
	})
	if err == nil && s.opts.OnRate != nil && rec.State == bus.JobRunning {
		s.opts.OnRate(id, &rec.Progress.FPS)
	}
	if err != nil && ctx.Err() == nil {
		s.opts.Logger.Warn("record job progress", "job", id, "err", err)
	}
}

// applyProgress sets r's per-video and job progress from the coordinator's
// snapshots.
func applyProgress(r *Record, snap map[string]coordinator.Progress, now time.Time) {
	job := Progress{Exact: true}
	for i := range r.Videos {
		v := &r.Videos[i]
		p, ok := snap[v.Name]
		if videoFinished(v.State) {
			ok = false // its record is final: recordVideo wrote it
		}
		if ok && v.State == VideoQueued {
			v.State = VideoRunning
		}
		if ok {
			v.Done = p.Done
			v.Exact = p.Ended
			v.Total = p.Total
			if !p.Ended {
				v.Total = max(int(p.Estimate), p.Done)
			}
		}
		v.Percent = percent(v.Done, v.Total)
		job.Done += v.Done
		job.Total += v.Total
		job.Exact = job.Exact && v.Exact
	}
	job.Percent = percent(job.Done, job.Total)
	if r.Started != nil {
		if secs := now.Sub(*r.Started).Seconds(); secs > 0 {
			job.FPS = round2(float64(job.Done) / secs)
		}
	}
	if job.FPS > 0 && job.Total >= job.Done {
		eta := round2(float64(job.Total-job.Done) / job.FPS)
		job.ETASeconds = &eta
	}
	r.Progress = job
}

func percent(done, total int) float64 {
	if total <= 0 {
		return 0
	}
	return round2(100 * float64(min(done, total)) / float64(total))
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// resultKeys name a video's outputs in its record's results.
var resultKeys = map[string]string{
	coordinator.ParquetFile:    "detections",
	coordinator.DetectionsFile: "detections_json",
	coordinator.StatsFile:      "stats",
	coordinator.AnnotatedFile:  "annotated",
	coordinator.PreviewFile:    "preview",
}

// applyVideo records a finished video's outcome and outputs in r.
func applyVideo(r *Record, vs coordinator.VideoSummary) {
	v := r.video(vs.Video)
	if v == nil {
		return
	}
	v.State, v.Error = vs.Status, vs.Error
	v.Done, v.Total, v.Exact, v.Percent = vs.Stats.Frames+vs.Stats.FailedFrames, vs.Stats.Frames+vs.Stats.FailedFrames, true, 100
	v.FPS = vs.Stats.FPS
	st := vs.Stats
	v.Stats = &st
	v.Results = map[string]string{}
	v.AnnotateError = vs.AnnotateError
	for _, name := range vs.Outputs {
		if key, ok := resultKeys[name]; ok {
			v.Results[key] = r.Output + "/" + v.Name + "/" + name
		}
	}
}

// videoFinished reports whether a video state is one a video ends in.
func videoFinished(state string) bool {
	switch state {
	case coordinator.Succeeded, coordinator.Partial, coordinator.Failed, VideoCancelled:
		return true
	}
	return false
}

// recordVideo writes a video's outcome to the record as soon as its
// outputs are in place, so the API shows it finished, with its results,
// while the job's other videos run; a cancel later keeps it.
func (s *Service) recordVideo(ctx context.Context, id string, vs coordinator.VideoSummary) {
	_, err := s.store.Update(ctx, id, func(r *Record) error {
		if r.State.Final() {
			return errUnchanged
		}
		applyVideo(r, vs)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.opts.Logger.Warn("record finished video", "job", id, "video", vs.Video, "err", err)
	}
}

// finish records a job's outcome and writes job.json beside its outputs.
func (s *Service) finish(ctx context.Context, id string, sum *coordinator.Summary, out storage.Bucket, prefix string) error {
	now := time.Now().UTC()
	apply := func(r *Record) error {
		if r.State.Final() {
			return errUnchanged
		}
		r.State, r.Finished = bus.JobSucceeded, &now
		if !sum.OK() {
			r.State = bus.JobFailed
			r.Error = fmt.Sprintf("%d of %d videos did not succeed", sum.Unsuccessful(), len(sum.Videos))
		}
		stats := sum.Stats
		r.Stats = &stats
		r.Results = map[string]string{"summary": r.Output + "/" + coordinator.SummaryFile, "job": r.Output + "/" + coordinator.JobFile}
		if slices.Contains(sum.Outputs, coordinator.ThroughputFile) {
			r.Results["throughput"] = r.Output + "/" + coordinator.ThroughputFile
		}
		for _, vs := range sum.Videos {
			applyVideo(r, vs)
		}
		r.Progress = Progress{Done: sum.Frames, Total: sum.Frames, Exact: true, Percent: 100, FPS: sum.FPS}
		return nil
	}
	// job.json goes first: once the record says the job has finished, every
	// output is in place.
	final, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := apply(final); err != nil {
		if errors.Is(err, errUnchanged) {
			return nil // cancelled meanwhile
		}
		return err
	}
	if err := writeRecord(ctx, final, out, prefix); err != nil {
		return err
	}
	rec, err := s.store.Update(ctx, id, apply)
	if err != nil {
		return err
	}
	if rec.State != final.State {
		// Cancelled between the two: job.json follows the record.
		return writeRecord(ctx, rec, out, prefix)
	}
	s.opts.Logger.Info("job finished", "job", id, "state", rec.State, "frames", sum.Frames, "fps", sum.FPS)
	return nil
}

// writeRecord writes the job's final record as job.json in its folder.
func writeRecord(ctx context.Context, rec *Record, out storage.Bucket, prefix string) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return out.Put(ctx, storage.JoinKey(prefix, coordinator.JobFile), bytes.NewReader(append(b, '\n')))
}

// fail marks a job FAILED after an error that stopped it.
func (s *Service) fail(id string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	_, err := s.store.Update(ctx, id, func(r *Record) error {
		if r.State.Final() {
			return errUnchanged
		}
		r.State, r.Finished, r.Error = bus.JobFailed, &now, cause.Error()
		// Videos that had not finished end with the job, never "running".
		for i := range r.Videos {
			if v := &r.Videos[i]; !videoFinished(v.State) {
				v.State, v.Error = coordinator.Failed, "job failed before the video finished"
			}
		}
		return nil
	})
	if err != nil {
		s.opts.Logger.Error("record job failure", "job", id, "err", err)
	}
}
