package coordinator

import "errors"

// ErrNoOutput: RunJob was given no bucket to write the job's outputs to.
var ErrNoOutput = errors.New("no output bucket")

// The files of a job's output folder, named here only: a video's folder
// holds the first five, the job's folder summary.json, job.json and
// ThroughputFile.
const (
	DetectionsFile = "detections.jsonl"
	ParquetFile    = "detections.parquet"
	AnnotatedFile  = "annotated.mp4"
	PreviewFile    = "preview.png"
	StatsFile      = "stats.json"
	SummaryFile    = "summary.json"
	JobFile        = "job.json"
)
