package coordinator

import (
	"math"
	"slices"
)

// Percentiles summarises one stage's latency samples in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
}

// summarise computes nearest-rank percentiles; it sorts samples in place.
func summarise(samples []float32) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	slices.Sort(samples)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(samples)))) - 1
		return round3(float64(samples[max(i, 0)]))
	}
	var sum float64
	for _, v := range samples {
		sum += float64(v)
	}
	return Percentiles{P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Mean: round3(sum / float64(len(samples)))}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// stages collects per-frame latencies of the four pipeline stages.
type stages struct {
	decode, queue, read, infer, post []float32
}

func (s *stages) add(decode, queue, read, infer, post float32) {
	s.decode = append(s.decode, decode)
	s.queue = append(s.queue, queue)
	s.read = append(s.read, read)
	s.infer = append(s.infer, infer)
	s.post = append(s.post, post)
}

// StageStats are the per-frame stage latencies of a video or job.
type StageStats struct {
	Decode Percentiles `json:"decode"`
	Queue  Percentiles `json:"queue"`
	Read   Percentiles `json:"read"`
	Infer  Percentiles `json:"infer"`
	Post   Percentiles `json:"post"`
}

// merge appends o's samples to s.
func (s *stages) merge(o *stages) {
	s.decode = append(s.decode, o.decode...)
	s.queue = append(s.queue, o.queue...)
	s.read = append(s.read, o.read...)
	s.infer = append(s.infer, o.infer...)
	s.post = append(s.post, o.post...)
}

func (s *stages) summary() StageStats {
	return StageStats{
		Decode: summarise(s.decode), Queue: summarise(s.queue), Read: summarise(s.read),
		Infer: summarise(s.infer), Post: summarise(s.post),
	}
}

// Stats is stats.json: what a video (or, summed, a job) cost.
type Stats struct {
	// Frames analysed, and frames that could not be (poison frames).
	Frames       int `json:"frames"`
	FailedFrames int `json:"failed_frames"`
	// Decoded and CorruptFrames come from ingest: every decoded frame, and
	// damaged frames the decoder skipped.
	Decoded       int `json:"decoded"`
	CorruptFrames int `json:"corrupt_frames"`
	// Expected and Missing are set for a truncated file: the frames its
	// container declares, and how many of them the file lost.
	Expected int `json:"expected_frames,omitempty"`
	Missing  int `json:"missing_frames"`
	// DuplicatesDropped counts redelivered results that were ignored.
	DuplicatesDropped int `json:"duplicates_dropped"`
	// RefusedResults counts results that answer no published frame: before
	// the video's start, past the frames ingest published, or without the
	// frame's token. They were dropped, never buffered.
	RefusedResults int `json:"refused_results,omitempty"`
	// WallSeconds runs from the first frame's publication to the last result.
	WallSeconds float64 `json:"wall_seconds"`
	FPS         float64 `json:"fps"`
	// StagesMS are per-frame latencies: decode+letterbox, time queued, the
	// worker's read into model input (batch time divided by batch size, as
	// for inference), model inference and post-processing.
	StagesMS  StageStats `json:"stages_ms"`
	BatchMean float64    `json:"batch_mean"`
	// Workers counts the frames each worker analysed; WorkerShare is the
	// same as fractions of Frames.
	Workers     map[string]int     `json:"workers"`
	WorkerShare map[string]float64 `json:"worker_share"`
}

// shares divides each worker's frames by the total.
func shares(workers map[string]int, total int) map[string]float64 {
	out := make(map[string]float64, len(workers))
	for w, n := range workers {
		if total > 0 {
			out[w] = round3(float64(n) / float64(total))
		}
	}
	return out
}

// tally is what a video, or a whole job, accumulates from its results.
type tally struct {
	stats        Stats
	stages       stages
	batchSum     int
	firstPublish int64
	lastDone     int64
	// resultTimes holds each worker's result times (Unix ns), for the
	// throughput chart.
	resultTimes map[string][]int64
}

// merge adds o, another video's tally, to t.
func (t *tally) merge(o *tally) {
	t.stats.Frames += o.stats.Frames
	t.stats.FailedFrames += o.stats.FailedFrames
	t.stats.Decoded += o.stats.Decoded
	t.stats.CorruptFrames += o.stats.CorruptFrames
	t.stats.Expected += o.stats.Expected
	t.stats.Missing += o.stats.Missing
	t.stats.DuplicatesDropped += o.stats.DuplicatesDropped
	t.stats.RefusedResults += o.stats.RefusedResults
	for w, n := range o.stats.Workers {
		t.stats.Workers[w] += n
	}
	for w, ts := range o.resultTimes {
		if t.resultTimes == nil {
			t.resultTimes = map[string][]int64{}
		}
		t.resultTimes[w] = append(t.resultTimes[w], ts...)
	}
	t.stages.merge(&o.stages)
	t.batchSum += o.batchSum
	if t.firstPublish == 0 || (o.firstPublish > 0 && o.firstPublish < t.firstPublish) {
		t.firstPublish = o.firstPublish
	}
	t.lastDone = max(t.lastDone, o.lastDone)
}

// summarise fills the derived statistics: throughput, mean batch, stage
// percentiles and worker shares.
func (t *tally) summarise() Stats {
	s := t.stats
	if t.lastDone > t.firstPublish && t.firstPublish > 0 {
		s.WallSeconds = round3(float64(t.lastDone-t.firstPublish) / 1e9)
		s.FPS = round3(float64(s.Frames) / s.WallSeconds)
	}
	if s.Frames > 0 {
		s.BatchMean = round3(float64(t.batchSum) / float64(s.Frames))
	}
	s.StagesMS = t.stages.summary()
	s.WorkerShare = shares(s.Workers, s.Frames)
	return s
}
