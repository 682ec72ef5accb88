package coordinator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/results"
)

// Video states in summary.json.
const (
	Succeeded = "succeeded"
	// Partial: some frames were analysed, but the file is damaged or some
	// frames failed; the error says what.
	Partial = "partial"
	Failed  = "failed"
	Pending = "pending"
)

// line is one detections.jsonl line.
type line struct {
	Frame      int             `json:"frame"`
	PTS        float64         `json:"pts"`
	Detections []bus.Detection `json:"detections"`
}

// video gathers one video's results in frame order. Results arrive in any
// order and possibly more than once; each seq is written exactly once.
type video struct {
	name, source string
	dir          string

	file    *os.File
	w       *bufio.Writer
	pqFile  *os.File
	pq      *results.Writer
	job     string
	next    int
	pending map[int]*bus.Result

	started, ended bool
	// finished is set once every frame has its result and the outputs are
	// being written; later messages for the video are redeliveries.
	finished bool
	estimate int64
	total    int
	endErr   string
	decoded  int
	corrupt  int
	// truncated, expected and missing are ingest's word that the file ends
	// before its container declares, and how many declared frames are lost.
	truncated         bool
	expected, missing int

	// What ingest vouched for: frames [0, published) exist (progress
	// events), and keys are its attempts' frame token keys (start events).
	published int
	keys      []string
	// seenTo is one past the highest seq taken; conflict says how the end
	// event contradicts what was seen.
	seenTo   int
	conflict string
	// untokened are seqs not yet taken whose only results carried no token
	// of this video: their frame's id was taken by a message ingest did not
	// publish, so the real frame was dropped as a duplicate and no honest
	// result can come (see settle).
	untokened map[int]bool

	tally
	errs []string
}

func newVideo(job, name, source, outDir string) *video {
	return &video{
		job: job, name: name, source: source, dir: filepath.Join(outDir, name),
		pending: make(map[int]*bus.Result),
		tally:   tally{stats: Stats{Workers: map[string]int{}}},
	}
}

// done reports whether every published frame has its result.
func (v *video) done() bool { return v.ended && v.next >= v.total }

// maxKeys bounds the ingest attempts (start events) one video takes keys
// from; a video task is delivered IngestMaxDeliver times, far fewer.
const maxKeys = 16

// start records a start event: one per ingest attempt, each with its key.
func (v *video) start(e *bus.Event) error {
	v.started, v.estimate = true, e.FramesEstimate
	if e.Key == "" || slices.Contains(v.keys, e.Key) {
		return nil
	}
	if len(v.keys) == maxKeys {
		return fmt.Errorf("%w: video %s: more than %d start events; key dropped", ErrRefused, v.name, maxKeys)
	}
	v.keys = append(v.keys, e.Key)
	return nil
}

// progress records that ingest has published frames [0, frames).
func (v *video) progress(frames int) { v.published = max(v.published, frames) }

// limit is one past the highest seq a result may carry now: the end event's
// count, or up to a progress step past the last progress event, which
// ingest publishes before the frames it covers.
func (v *video) limit() int {
	if v.ended {
		return v.total
	}
	return v.published + bus.ProgressStep
}

// check refuses a result that answers no frame ingest published: such a
// result is dropped, never buffered, so a flood of forged seqs costs no
// memory and a forged answer never takes a frame's place.
func (v *video) check(r *bus.Result) error {
	switch {
	case !v.started:
		return fmt.Errorf("%w: result %s/%s#%d before the video's start event", ErrRefused, r.Job, r.Video, r.Seq)
	case r.Seq >= v.limit():
		return fmt.Errorf("%w: result %s/%s#%d is past the %d frames ingest has published", ErrRefused, r.Job, r.Video, r.Seq, v.limit())
	case len(v.keys) > 0 && !bus.ValidToken(r.Token, v.keys, v.job, v.name, r.Seq):
		if !v.seen(r.Seq) && len(v.untokened) < maxUntokened {
			if v.untokened == nil {
				v.untokened = map[int]bool{}
			}
			v.untokened[r.Seq] = true
		}
		return fmt.Errorf("%w: result %s/%s#%d does not carry its frame's token: it is not from a worker that received the frame", ErrRefused, r.Job, r.Video, r.Seq)
	}
	return nil
}

// maxUntokened bounds the seqs a video remembers as answered only without
// a token.
const maxUntokened = 1024

// settle ends the wait for frames no honest result can answer: once ingest
// has ended the video and every frame still missing had only untokened
// results, those frames are recorded as failed, naming why, instead of
// leaving the video running forever. A forged untokened result can thus at
// worst mark a frame failed, visibly, while its real result is still on
// its way; it never stands in for detections. It reports whether it did.
func (v *video) settle() (bool, error) {
	if !v.ended || v.next >= v.total || len(v.untokened) == 0 {
		return false, nil
	}
	var lost []int
	for s := v.next; s < v.total; s++ {
		if _, ok := v.pending[s]; ok {
			continue
		}
		if !v.untokened[s] {
			return false, nil // a frame an honest result may still answer
		}
		lost = append(lost, s)
	}
	for _, s := range lost {
		delete(v.untokened, s)
		err := v.add(&bus.Result{Job: v.job, Video: v.name, Seq: s,
			Error: fmt.Sprintf("published frame #%d: its id was taken by a message ingest did not publish (its only results carry no token), so the frame itself was dropped as a duplicate", s)})
		if err != nil {
			return true, err
		}
	}
	return true, nil
}

// end records the end event, checked against what was seen: a count below
// the frames published, or past what ingest announced, ends the video with
// the contradiction as its error instead of a success.
func (v *video) end(e *bus.Event) error {
	if v.ended {
		if e.Frames != v.total {
			return fmt.Errorf("%w: video %s: a second end event with %d frames; keeping %d", ErrRefused, v.name, e.Frames, v.total)
		}
		return nil
	}
	v.ended, v.total, v.endErr = true, e.Frames, e.Error
	v.decoded, v.corrupt = e.Decoded, e.CorruptFrames
	v.truncated, v.expected, v.missing = e.Truncated, e.Expected, e.Missing
	seen := max(v.published, v.seenTo)
	switch {
	case e.Frames < seen:
		v.conflict = fmt.Sprintf("ingest's end event says %d frames, but %d were published", e.Frames, seen)
	case v.started && e.Frames > v.published+bus.ProgressStep:
		// Waiting for frames nobody announced would never end.
		v.conflict = fmt.Sprintf("ingest's end event says %d frames, but at most %d were announced", e.Frames, v.published+bus.ProgressStep)
		v.total = seen
	}
	return nil
}

// seen reports whether seq was already taken.
func (v *video) seen(seq int) bool {
	if seq < v.next {
		return true
	}
	_, ok := v.pending[seq]
	return ok
}

// add takes one result and writes every result that is now in order.
func (v *video) add(r *bus.Result) error {
	if v.seen(r.Seq) {
		v.stats.DuplicatesDropped++
		return nil
	}
	v.seenTo = max(v.seenTo, r.Seq+1)
	v.pending[r.Seq] = r
	for {
		r, ok := v.pending[v.next]
		if !ok {
			return nil
		}
		delete(v.pending, v.next)
		v.next++
		if err := v.write(r); err != nil {
			return err
		}
	}
}

func (v *video) write(r *bus.Result) error {
	if r.Error != "" {
		v.stats.FailedFrames++
		if len(v.errs) < 5 {
			if r.Index == 0 && r.Seq > 0 {
				// Seqs and frame indexes rise together, so only an
				// unreadable frame gives index 0 past seq 0: name its seq.
				v.errs = append(v.errs, r.Error)
			} else {
				v.errs = append(v.errs, fmt.Sprintf("frame %d: %s", r.Index, r.Error))
			}
		}
		return nil
	}
	if v.file == nil {
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			return fmt.Errorf("create output dir: %w", err)
		}
		f, err := os.CreateTemp(v.dir, ".detections-*.jsonl")
		if err == nil {
			err = f.Chmod(0o644)
		}
		if err != nil {
			return fmt.Errorf("create detections of %s: %w", v.name, err)
		}
		v.file, v.w = f, bufio.NewWriterSize(f, 64<<10)
		pf, err := os.CreateTemp(v.dir, ".detections-*.parquet")
		if err == nil {
			err = pf.Chmod(0o644)
		}
		if err != nil {
			return fmt.Errorf("create detections of %s: %w", v.name, err)
		}
		v.pqFile, v.pq = pf, results.NewWriter(pf, results.WriterOptions{})
	}
	dets := r.Detections
	if dets == nil {
		dets = []bus.Detection{}
	}
	b, err := json.Marshal(line{Frame: r.Index, PTS: r.PTS, Detections: dets})
	if err != nil {
		return err
	}
	if _, err := v.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write detections of %s: %w", v.name, err)
	}
	for _, d := range dets {
		row := results.Row{
			Job: v.job, Video: v.name, Frame: int64(r.Index), PTS: r.PTS,
			ClassID: int32(d.ClassID), Class: d.Class, Conf: d.Conf,
			X1: d.Box[0], Y1: d.Box[1], X2: d.Box[2], Y2: d.Box[3],
		}
		if err := v.pq.Add(row); err != nil {
			return fmt.Errorf("write detections of %s: %w", v.name, err)
		}
	}
	v.stats.Frames++
	v.stats.Workers[r.Worker]++
	if v.resultTimes == nil {
		v.resultTimes = map[string][]int64{}
	}
	v.resultTimes[r.Worker] = append(v.resultTimes[r.Worker], r.DoneUnixNano)
	v.stages.add(r.DecodeMS, r.QueueMS, r.ReadMS, r.InferMS, r.PostMS)
	v.batchSum += r.Batch
	if v.firstPublish == 0 || r.PublishedUnixNano < v.firstPublish {
		v.firstPublish = r.PublishedUnixNano
	}
	v.lastDone = max(v.lastDone, r.DoneUnixNano)
	return nil
}

// closeDetections flushes detections.jsonl and detections.parquet and moves
// them into place, so a reader never sees half a file. A video with no
// analysed frame gets an empty JSONL file and a Parquet file with no rows.
func (v *video) closeDetections() error {
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	jsonl := filepath.Join(v.dir, DetectionsFile)
	parquet := filepath.Join(v.dir, ParquetFile)
	if v.file == nil {
		if err := os.WriteFile(jsonl, nil, 0o644); err != nil {
			return fmt.Errorf("write detections of %s: %w", v.name, err)
		}
		f, err := os.Create(parquet)
		if err != nil {
			return fmt.Errorf("write detections of %s: %w", v.name, err)
		}
		err = results.NewWriter(f, results.WriterOptions{}).Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	err := v.w.Flush()
	if cerr := v.file.Close(); err == nil {
		err = cerr
	}
	if perr := v.pq.Close(); err == nil {
		err = perr
	}
	if cerr := v.pqFile.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(v.file.Name(), jsonl)
	}
	if err == nil {
		err = os.Rename(v.pqFile.Name(), parquet)
	}
	v.file, v.pqFile = nil, nil
	if err != nil {
		return fmt.Errorf("write detections of %s: %w", v.name, err)
	}
	return nil
}

// finish computes the video's statistics and status.
func (v *video) finish() (status, errMsg string) {
	v.stats.Decoded, v.stats.CorruptFrames = v.decoded, v.corrupt
	v.stats.Expected, v.stats.Missing = v.expected, v.missing
	v.stats = v.summarise()
	s := &v.stats

	var problems []string
	if v.endErr != "" {
		problems = append(problems, v.endErr)
	}
	if v.conflict != "" {
		problems = append(problems, v.conflict)
	}
	if v.total == 0 && v.endErr == "" && v.conflict == "" {
		problems = append(problems, "ingest published no frames")
	}
	switch {
	case v.truncated && v.expected > 0:
		problems = append(problems, fmt.Sprintf("truncated: %d of %d frames", v.expected-v.missing, v.expected))
	case v.truncated:
		problems = append(problems, fmt.Sprintf("truncated: %d frames before the file ends early (its container declares no frame count)", v.decoded))
	}
	if v.corrupt > 0 {
		problems = append(problems, fmt.Sprintf("%d damaged frames skipped by the decoder", v.corrupt))
	}
	if s.FailedFrames > 0 {
		problems = append(problems, fmt.Sprintf("%d frames could not be analysed (%v)", s.FailedFrames, v.errs))
	}
	if len(problems) == 0 {
		return Succeeded, ""
	}
	// Named once: ingest's errors usually name the source already.
	msg := joinProblems(problems)
	if !strings.Contains(msg, v.source) {
		msg = v.source + ": " + msg
	}
	if s.Frames > 0 {
		return Partial, msg
	}
	return Failed, msg
}

func joinProblems(p []string) string {
	out := p[0]
	for _, s := range p[1:] {
		out += "; " + s
	}
	return out
}
