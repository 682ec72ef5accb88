// Package coordinator collects workers' results per video, in frame order
// and exactly once, and writes a job's outputs: detections.jsonl,
// annotated.mp4 and stats.json per video, and summary.json for the job.
package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/files"
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
}

// Options configure a Coordinator.
type Options struct {
	// OutDir receives <video>/ folders and summary.json.
	OutDir string
	// Annotate, when set, writes annotated.mp4 for each video.
	Annotate Annotator
	// AnnotateWorkers bounds concurrent annotations.
	AnnotateWorkers int
	Logger          *slog.Logger
	// OnProgress is called after every result and event.
	OnProgress func(Progress)
	// Sink, when set, receives the outputs under SinkPrefix once they are
	// complete; OutDir is then only a local staging area.
	Sink       storage.Bucket
	SinkPrefix string
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
	if opts.AnnotateWorkers <= 0 {
		opts.AnnotateWorkers = 1
	}
	return &Coordinator{js: js, opts: opts}
}

// VideoSummary is one entry of summary.json.
type VideoSummary struct {
	Video  string `json:"video"`
	Source string `json:"source"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Stats  Stats  `json:"stats"`
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
	videos := make(map[string]*video, len(job.Videos))
	for _, v := range job.Videos {
		if err := bus.ValidName("video", v.Name); err != nil {
			return nil, err
		}
		if _, dup := videos[v.Name]; dup {
			return nil, fmt.Errorf("job %s: video name %q appears twice", job.ID, v.Name)
		}
		videos[v.Name] = newVideo(job.ID, v.Name, v.Source, c.opts.OutDir)
	}
	cons, err := c.js.OrderedConsumer(ctx, bus.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{
			bus.JobFilter(bus.ResultsSubject, job.ID),
			bus.JobFilter(bus.EventsSubject, job.ID),
		},
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("follow results of job %s: %w", job.ID, err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("follow results of job %s: %w", job.ID, err)
	}
	defer iter.Stop()
	stopOnCancel := context.AfterFunc(ctx, iter.Stop)
	defer stopOnCancel()

	started := time.Now()
	summaries := make(map[string]VideoSummary, len(videos))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, c.opts.AnnotateWorkers)
	)
	remaining := len(videos)
	finish := func(v *video) {
		remaining--
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s := c.finishVideo(ctx, log, v)
			mu.Lock()
			summaries[v.name] = s
			mu.Unlock()
		}()
	}
	for remaining > 0 {
		msg, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil, ctx.Err()
			}
			wg.Wait()
			return nil, fmt.Errorf("follow results of job %s: %w", job.ID, err)
		}
		v, err := c.apply(msg, job.ID, videos)
		if err != nil {
			log.Warn("ignoring message", "subject", msg.Subject(), "err", err)
			continue
		}
		if v == nil {
			continue
		}
		if c.opts.OnProgress != nil {
			c.opts.OnProgress(Progress{Video: v.name, Done: v.next, Total: v.total, Estimate: v.estimate, Ended: v.ended})
		}
		if v.done() && !v.finished {
			v.finished = true
			finish(v)
		}
	}
	wg.Wait()

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
	if err := os.MkdirAll(c.opts.OutDir, 0o755); err != nil {
		return sum, fmt.Errorf("create output dir: %w", err)
	}
	if drawn, err := writeThroughput(c.opts.OutDir, job.ID, all.resultTimes); err != nil {
		log.Warn("throughput chart", "err", err)
	} else if drawn {
		if err := c.uploadFile(ctx, filepath.Join(c.opts.OutDir, ThroughputFile), ThroughputFile); err != nil {
			return sum, err
		}
	}
	if err := writeJSON(filepath.Join(c.opts.OutDir, "summary.json"), sum); err != nil {
		return sum, err
	}
	if err := c.uploadFile(ctx, filepath.Join(c.opts.OutDir, "summary.json"), "summary.json"); err != nil {
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
		if v == nil || r.Job != jobID {
			return nil, fmt.Errorf("result for unknown video %s/%s", r.Job, r.Video)
		}
		if v.finished {
			// A redelivery after the outputs were written: nothing to do.
			return nil, nil
		}
		return v, v.add(&r)
	case strings.HasPrefix(msg.Subject(), bus.EventsSubject+"."):
		var e bus.Event
		if err := bus.DecodeEvent(msg.Data(), &e); err != nil {
			return nil, err
		}
		v := videos[e.Video]
		if v == nil || e.Job != jobID {
			return nil, fmt.Errorf("event for unknown video %s/%s", e.Job, e.Video)
		}
		if v.finished {
			return nil, nil // the outputs are being written from what came before
		}
		switch e.Type {
		case bus.VideoStarted:
			v.started, v.estimate = true, e.FramesEstimate
		case bus.VideoEnded:
			v.ended, v.total, v.endErr = true, e.Frames, e.Error
			v.decoded, v.corrupt = e.Decoded, e.CorruptFrames
		}
		return v, nil
	}
	return nil, fmt.Errorf("unexpected subject")
}

// finishVideo writes a finished video's outputs and returns its summary.
func (c *Coordinator) finishVideo(ctx context.Context, log *slog.Logger, v *video) VideoSummary {
	status, msg := v.finish()
	s := VideoSummary{Video: v.name, Source: v.source, Status: status, Error: msg, Stats: v.stats}
	fail := func(err error) VideoSummary {
		s.Status = Failed
		s.Error = errors.Join(errors.New(s.Error), err).Error()
		log.Error("video outputs", "video", v.name, "err", err)
		return s
	}
	if err := v.closeDetections(); err != nil {
		return fail(err)
	}
	det := filepath.Join(v.dir, "detections.jsonl")
	if c.opts.Annotate != nil && v.stats.Frames > 0 {
		t0 := time.Now()
		dst := filepath.Join(v.dir, "annotated.mp4")
		cur, err := openCursor(det)
		if err != nil {
			return fail(err)
		}
		err = c.opts.Annotate(ctx, v.source, dst, cur.boxes)
		if cerr := cur.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(fmt.Errorf("annotate %s: %w", v.name, err))
		}
		log.Info("annotated", "video", v.name, "seconds", round3(time.Since(t0).Seconds()))
	}
	if err := writeJSON(filepath.Join(v.dir, "stats.json"), s.Stats); err != nil {
		return fail(err)
	}
	if err := c.upload(ctx, v.dir, v.name); err != nil {
		return fail(err)
	}
	log.Info("video finished", "video", v.name, "status", s.Status, "frames", s.Stats.Frames, "fps", s.Stats.FPS, "error", s.Error)
	return s
}

// errEndOfDetections marks a cursor that has read every line.
var errEndOfDetections = errors.New("end of detections")

// upload copies a finished video's files to the sink, if there is one.
// Put replaces objects atomically, so a re-run never leaves a mix.
func (c *Coordinator) upload(ctx context.Context, dir, video string) error {
	if c.opts.Sink == nil {
		return nil
	}
	for _, name := range []string{"detections.jsonl", "detections.parquet", "annotated.mp4", "preview.png", "stats.json"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := c.uploadFile(ctx, p, video+"/"+name); err != nil {
			return err
		}
	}
	return nil
}

// uploadFile puts one local file at SinkPrefix/rel.
func (c *Coordinator) uploadFile(ctx context.Context, path, rel string) error {
	if c.opts.Sink == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", rel, err)
	}
	defer f.Close()
	key := rel
	if c.opts.SinkPrefix != "" {
		key = strings.TrimSuffix(c.opts.SinkPrefix, "/") + "/" + rel
	}
	if err := c.opts.Sink.Put(ctx, key, f); err != nil {
		return fmt.Errorf("upload %s: %w", rel, err)
	}
	return nil
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

// writeJSON writes v to path atomically, so a re-run or a crash never
// leaves half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return files.WriteAtomic(path, append(b, '\n'), 0o644)
}
