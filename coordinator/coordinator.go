// Package coordinator collects workers' results per video, in frame order
// and exactly once, and writes a job's outputs through one storage.Bucket:
// detections, annotated.mp4 and stats.json per video, and summary.json for
// the job, so a local folder and an S3 prefix get the same files the same way.
package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/storage"
)

// VideoSpec is one video of a job: its validated name and its source.
type VideoSpec struct {
	Name   string
	Source string
}

// Job is what the coordinator waits for.
type Job struct {
	ID     string
	Videos []VideoSpec
	// Started is when the job started, for its wall time: a coordinator
	// resuming it counts from there, not from its own start (zero: now).
	Started time.Time
}

// Annotator writes dst, the annotated copy of source, drawing for each
// decoded frame index the detections that boxes returns; analysed is false
// for frames that were not sampled.
type Annotator func(ctx context.Context, source, dst string, boxes func(frame int) (dets []bus.Detection, analysed bool)) error

// Progress is a snapshot of one video for progress displays.
type Progress struct {
	Video string
	// Done counts frames with a result; Total is known once ingest has
	// finished the video, Estimate before that.
	Done, Total int
	Estimate    int64
	Ended       bool
	// Buffered counts results held until the frames before them arrive.
	Buffered int
}

// Options configure a Coordinator.
type Options struct {
	// Out is the one writer of the job's outputs, under Prefix: a folder per
	// video with its Outputs, summary.json and throughput.png. A local folder
	// is a storage.FSBucket.
	Out    storage.Bucket
	Prefix string
	// Scratch is where files are built before Out takes them (detections as
	// results arrive, annotated.mp4 while it is encoded); empty: the system's
	// temporary directory.
	Scratch string
	// Annotate, when set, writes annotated.mp4 for each video. It bounds
	// itself process-wide (annotate.Stage): the coordinator starts every
	// finished video's annotation at once and they wait there.
	Annotate Annotator
	Logger   *slog.Logger
	// OnProgress is called after every result and event.
	OnProgress func(Progress)
	// OnVideo is called once a video's outputs are written, with its
	// entry of summary.json, so its state need not wait for the job's end.
	OnVideo func(VideoSummary)
	// StorageRetry bounds the retries of outputs that could not be written
	// because the store was unavailable (zero: storage.DefaultRetry).
	StorageRetry storage.RetryPolicy
	// FollowIdle is how long the results follower waits for a message
	// before checking its consumer (0: DefaultFollowIdle).
	FollowIdle time.Duration
}

// Coordinator writes jobs' outputs from the results stream.
type Coordinator struct {
	js   jetstream.JetStream
	opts Options
}

// New returns a Coordinator reading through js.
func New(js jetstream.JetStream, opts Options) *Coordinator {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{js: js, opts: opts}
}

// VideoSummary is one entry of summary.json.
type VideoSummary struct {
	Video  string `json:"video"`
	Source string `json:"source"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// AnnotateError is why annotated.mp4 is missing; the analysis stands.
	AnnotateError string `json:"annotate_error,omitempty"`
	Stats         Stats  `json:"stats"`
	// Outputs are the files written in the video's folder.
	Outputs []string `json:"outputs"`

	// retry is the store's outage that kept the outputs from being
	// written: the job is to be run again once the store is back.
	retry error
}

// Summary is summary.json.
type Summary struct {
	Job         string  `json:"job"`
	Status      string  `json:"status"`
	Frames      int     `json:"frames"`
	WallSeconds float64 `json:"wall_seconds"`
	FPS         float64 `json:"fps"`
	// Stats are the job's statistics over all its videos.
	Stats  Stats          `json:"stats"`
	Videos []VideoSummary `json:"videos"`
	// Outputs are the job's own files beside the videos' folders, besides
	// summary.json.
	Outputs []string `json:"outputs,omitempty"`
}

// OK reports whether every video succeeded.
func (s *Summary) OK() bool { return s.Status == Succeeded }

// Unsuccessful counts the videos that did not succeed.
func (s *Summary) Unsuccessful() int {
	n := 0
	for _, v := range s.Videos {
		if v.Status != Succeeded {
			n++
		}
	}
	return n
}

// RunJob follows the job's results and events from the start of the
// results stream, so a restarted coordinator rebuilds the same outputs,
// until every video is finished; then it writes summary.json.
func (c *Coordinator) RunJob(ctx context.Context, job Job) (*Summary, error) {
	log := c.opts.Logger.With("job", job.ID)
	if err := bus.ValidName("job", job.ID); err != nil {
		return nil, err
	}
	if c.opts.Out == nil {
		return nil, fmt.Errorf("job %s: %w", job.ID, ErrNoOutput)
	}
	videos := make(map[string]*video, len(job.Videos))
	for _, v := range job.Videos {
		if err := bus.ValidName("video", v.Name); err != nil {
			return nil, err
		}
		if _, dup := videos[v.Name]; dup {
			return nil, fmt.Errorf("job %s: video name %q appears twice", job.ID, v.Name)
		}
		videos[v.Name] = newVideo(job.ID, v.Name, v.Source, "")
	}
	scratch, err := os.MkdirTemp(c.opts.Scratch, "vidpipe-"+job.ID+"-")
	if err != nil {
		return nil, fmt.Errorf("job %s: scratch space: %w", job.ID, err)
	}
	defer os.RemoveAll(scratch)
	for _, v := range videos {
		v.dir = filepath.Join(scratch, v.name)
	}
	follower := newResultsFollower(c.js, job.ID, c.opts.FollowIdle, log)
	defer follower.stop()

	started := job.Started
	if started.IsZero() {
		started = time.Now()
	}
	summaries := make(map[string]VideoSummary, len(videos))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	remaining := len(videos)
	ignored := 0
	finish := func(v *video) {
		remaining--
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := c.finishVideo(ctx, log, v)
			mu.Lock()
			summaries[v.name] = s
			mu.Unlock()
			if c.opts.OnVideo != nil && s.retry == nil {
				c.opts.OnVideo(s) // a video to be written again is not done
			}
		}()
	}
	for remaining > 0 {
		msg, err := follower.next(ctx)
		if err != nil {
			wg.Wait()
			return nil, err
		}
		v, err := c.apply(msg, job.ID, videos)
		if err != nil {
			// 1st, 2nd, 4th...: a flood of forged messages is not a flood of logs.
			if ignored++; ignored&(ignored-1) == 0 {
				log.Warn("ignoring message", "subject", msg.Subject(), "err", err, "ignored_so_far", ignored)
			}
			if v == nil {
				continue
			}
		}
		if v == nil {
			continue
		}
		if c.opts.OnProgress != nil {
			c.opts.OnProgress(Progress{Video: v.name, Done: v.next, Total: v.total, Estimate: v.estimate, Ended: v.ended, Buffered: len(v.pending)})
		}
		if v.done() && !v.finished {
			v.finished = true
			finish(v)
		}
	}
	wg.Wait()
	for _, spec := range job.Videos {
		if err := summaries[spec.Name].retry; err != nil {
			return nil, fmt.Errorf("job %s: outputs of %s not written: %w", job.ID, spec.Name, err)
		}
	}

	sum := &Summary{Job: job.ID, Status: Succeeded}
	all := tally{stats: Stats{Workers: map[string]int{}}}
	for _, v := range videos {
		all.merge(&v.tally)
	}
	sum.Stats = all.summarise()
	for _, spec := range job.Videos {
		s := summaries[spec.Name]
		sum.Videos = append(sum.Videos, s)
		sum.Frames += s.Stats.Frames
		if s.Status != Succeeded {
			sum.Status = Failed
		}
	}
	sum.WallSeconds = round3(time.Since(started).Seconds())
	if sum.WallSeconds > 0 {
		sum.FPS = round3(float64(sum.Frames) / sum.WallSeconds)
	}
	if png, err := drawThroughput(job.ID, all.resultTimes); err != nil {
		log.Warn("throughput chart", "err", err)
	} else if png != nil {
		if err := c.put(ctx, ThroughputFile, bytes.NewReader(png)); err != nil {
			return sum, err
		}
		sum.Outputs = append(sum.Outputs, ThroughputFile)
	}
	if err := c.putJSON(ctx, SummaryFile, sum); err != nil {
		return sum, err
	}
	log.Info("job finished", "status", sum.Status, "frames", sum.Frames, "seconds", sum.WallSeconds)
	return sum, nil
}

// apply routes one message to its video. It returns the video it changed.
func (c *Coordinator) apply(msg jetstream.Msg, jobID string, videos map[string]*video) (*video, error) {
	switch {
	case strings.HasPrefix(msg.Subject(), bus.ResultsSubject+"."):
		var r bus.Result
		if err := bus.DecodeResult(msg.Data(), &r); err != nil {
			return nil, err
		}
		v := videos[r.Video]
		if v == nil || r.Job != jobID || msg.Subject() != bus.ResultSubject(r.Job, r.Video) {
			return nil, fmt.Errorf("result for unknown video %s/%s on %s", r.Job, r.Video, msg.Subject())
		}
		if v.finished {
			// A redelivery after the outputs were written: nothing to do.
			return nil, nil
		}
		if err := v.check(&r); err != nil {
			v.stats.RefusedResults++
			if settled, serr := v.settle(); settled {
				return v, serr
			}
			return nil, err
		}
		if err := v.add(&r); err != nil {
			return v, err
		}
		// The honest results may come after the untokened one.
		_, err := v.settle()
		return v, err
	case strings.HasPrefix(msg.Subject(), bus.EventsSubject+"."):
		var e bus.Event
		if err := bus.DecodeEvent(msg.Data(), &e); err != nil {
			return nil, err
		}
		v := videos[e.Video]
		if v == nil || e.Job != jobID || msg.Subject() != bus.EventSubject(e.Job, e.Video) {
			return nil, fmt.Errorf("event for unknown video %s/%s on %s", e.Job, e.Video, msg.Subject())
		}
		if v.finished {
			return nil, nil // the outputs are being written from what came before
		}
		var err error
		switch e.Type {
		case bus.VideoStarted:
			err = v.start(&e)
		case bus.VideoProgress:
			v.progress(e.Frames)
		case bus.VideoEnded:
			if err = v.end(&e); err == nil {
				_, err = v.settle()
			}
		}
		return v, err
	}
	return nil, fmt.Errorf("unexpected subject")
}

// finishVideo writes a finished video's outputs and returns its summary.
// An annotation that fails leaves the analysis as it is: the detections and
// stats.json are still written, with the annotation's error beside them.
func (c *Coordinator) finishVideo(ctx context.Context, log *slog.Logger, v *video) VideoSummary {
	defer os.RemoveAll(v.dir)
	status, msg := v.finish()
	s := VideoSummary{Video: v.name, Source: v.source, Status: status, Error: msg, Stats: v.stats, Outputs: []string{}}
	fail := func(err error) VideoSummary {
		if storage.IsTransient(err) {
			s.retry = err // the job is run again, not this video failed
		}
		s.Status = Failed
		if s.Error != "" {
			s.Error += "; "
		}
		s.Error += err.Error()
		log.Error("video outputs", "video", v.name, "err", err)
		return s
	}
	if err := v.closeDetections(); err != nil {
		return fail(err)
	}
	if c.opts.Annotate != nil && v.stats.Frames > 0 {
		if err := c.annotate(ctx, v); err != nil {
			s.AnnotateError = err.Error()
			log.Warn("annotation failed; the analysis stands", "video", v.name, "err", err)
			os.Remove(filepath.Join(v.dir, AnnotatedFile))
			os.Remove(filepath.Join(v.dir, PreviewFile))
		}
	}
	// stats.json goes last: once it is there, the video's other files are.
	for _, name := range []string{DetectionsFile, ParquetFile, AnnotatedFile, PreviewFile} {
		ok, err := c.putFile(ctx, filepath.Join(v.dir, name), v.name+"/"+name)
		if err != nil {
			return fail(err)
		}
		if ok {
			s.Outputs = append(s.Outputs, name)
		}
	}
	s.Outputs = append(s.Outputs, StatsFile)
	if err := c.putJSON(ctx, v.name+"/"+StatsFile, s.Stats); err != nil {
		s.Outputs = s.Outputs[:len(s.Outputs)-1]
		return fail(err)
	}
	log.Info("video finished", "video", v.name, "status", s.Status, "frames", s.Stats.Frames, "fps", s.Stats.FPS, "error", s.Error)
	return s
}

// annotate writes annotated.mp4 (and the annotator's preview.png) in the
// video's scratch folder.
func (c *Coordinator) annotate(ctx context.Context, v *video) error {
	t0 := time.Now()
	cur, err := openCursor(filepath.Join(v.dir, DetectionsFile))
	if err != nil {
		return err
	}
	err = c.opts.Annotate(ctx, v.source, filepath.Join(v.dir, AnnotatedFile), cur.boxes)
	if cerr := cur.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	c.opts.Logger.Info("annotated", "video", v.name, "seconds", round3(time.Since(t0).Seconds()))
	return nil
}

// errEndOfDetections marks a cursor that has read every line.
var errEndOfDetections = errors.New("end of detections")

// putFile gives the scratch file at path to Out as rel, if it exists. Put
// replaces objects atomically, so a re-run never leaves a mix.
func (c *Coordinator) putFile(ctx context.Context, path, rel string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", rel, err)
	}
	defer f.Close()
	return true, c.put(ctx, rel, f)
}

// put writes rel under Prefix; the bucket's error names the object. A
// store that is briefly unavailable is tried again (StorageRetry) when r
// can be rewound, as the scratch files and JSON documents can.
func (c *Coordinator) put(ctx context.Context, rel string, r io.Reader) error {
	key := storage.JoinKey(c.opts.Prefix, rel)
	seeker, ok := r.(io.Seeker)
	if !ok {
		return c.opts.Out.Put(ctx, key, r)
	}
	p := c.opts.StorageRetry
	if p.For <= 0 {
		p = storage.DefaultRetry()
	}
	p.Logger = c.opts.Logger
	first := true
	return storage.Retry(ctx, p, "put "+storage.URI(c.opts.Out, key), func() error {
		if !first {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
		first = false
		return c.opts.Out.Put(ctx, key, r)
	})
}

func (c *Coordinator) putJSON(ctx context.Context, rel string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return c.put(ctx, rel, bytes.NewReader(append(b, '\n')))
}

// cursor reads detections.jsonl forward for the annotator, which asks for
// frames in increasing order.
type cursor struct {
	f    *os.File
	sc   *bufio.Scanner
	cur  line
	have bool
	err  error
}

func openCursor(path string) (*cursor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read detections: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &cursor{f: f, sc: sc}, nil
}

func (c *cursor) boxes(frame int) ([]bus.Detection, bool) {
	for c.err == nil && (!c.have || c.cur.Frame < frame) {
		if !c.sc.Scan() {
			c.err = c.sc.Err()
			if c.err == nil {
				c.err = errEndOfDetections
			}
			c.have = false
			return nil, false
		}
		c.cur = line{}
		if err := json.Unmarshal(c.sc.Bytes(), &c.cur); err != nil {
			c.err = err
			return nil, false
		}
		c.have = true
	}
	if c.have && c.cur.Frame == frame {
		return c.cur.Detections, true
	}
	return nil, false
}

func (c *cursor) close() error {
	err := c.f.Close()
	if c.err != nil && !errors.Is(c.err, errEndOfDetections) {
		return fmt.Errorf("read detections: %w", c.err)
	}
	return err
}
