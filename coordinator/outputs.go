package coordinator

import (
	"errors"

	"github.com/vidpipe/vidpipe/results"
)

// Sentinel errors.
var (
	// ErrNoOutput: RunJob was given no bucket to write the job's outputs to.
	ErrNoOutput = errors.New("no output bucket")
	// ErrRefused: a result that answers no frame ingest published for the
	// video (before its start, past the published range, without the
	// frame's token) or an event that contradicts what was seen.
	ErrRefused = errors.New("refused")
)

// The files of a job's output folder, named here only (the detections
// files by package results, which readers share): a video's folder holds
// the first five, the job's folder summary.json, job.json and
// ThroughputFile.
const (
	DetectionsFile = results.JSONLFile
	ParquetFile    = results.ParquetFile
	AnnotatedFile  = "annotated.mp4"
	PreviewFile    = "preview.png"
	StatsFile      = "stats.json"
	SummaryFile    = "summary.json"
	JobFile        = "job.json"
)
