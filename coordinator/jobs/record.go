package jobs

import (
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
)

// Video states in a job record: the coordinator's per-video statuses plus
// the two a video has before it has one.
const (
	VideoQueued    = "queued"
	VideoRunning   = "running"
	VideoCancelled = "cancelled"
)

// Model is the model a job runs: what the worker pool serves.
type Model struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Input  int    `json:"input"`
}

// Progress is where a job or video stands in frames.
type Progress struct {
	// Done frames have a result. Total is exact once ingest has finished
	// every video (Exact), an estimate from the containers before.
	Done    int     `json:"done"`
	Total   int     `json:"total"`
	Exact   bool    `json:"exact"`
	Percent float64 `json:"percent"`
	// FPS is frames per second since the job started; ETASeconds is the
	// time left at that rate (absent while unknown).
	FPS        float64  `json:"fps"`
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
}

// Video is one video's entry in a job record.
type Video struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	State  string `json:"state"`
	Error  string `json:"error,omitempty"`
	// AnnotateError is why the video has no annotated.mp4; its analysis
	// stands.
	AnnotateError string `json:"annotate_error,omitempty"`
	Progress
	// Results are the URIs of the video's outputs, once it has them.
	Results map[string]string `json:"results,omitempty"`
	// Stats are the video's statistics once it has finished (its
	// stats.json).
	Stats *coordinator.Stats `json:"stats,omitempty"`
}

// Record is a job as the API shows it and the jobs bucket stores it.
type Record struct {
	ID    string       `json:"id"`
	State bus.JobState `json:"state"`
	Error string       `json:"error,omitempty"`
	Spec  Spec         `json:"spec"`
	Model Model        `json:"model"`
	// Versions are the versions of vidpipe and what it is built on.
	Versions map[string]string `json:"versions,omitempty"`
	Output   string            `json:"output"`
	Created  time.Time         `json:"created"`
	Started  *time.Time        `json:"started,omitempty"`
	Finished *time.Time        `json:"finished,omitempty"`
	// Dispatched is set once every video's task is on the videos stream,
	// so a resumed job does not dispatch them again.
	Dispatched bool     `json:"dispatched"`
	Progress   Progress `json:"progress"`
	Videos     []Video  `json:"videos"`
	// Stats are the job's statistics (throughput, stage latencies, worker
	// shares), once it has finished; stats.json per video has the detail.
	Stats *coordinator.Stats `json:"stats,omitempty"`
	// Results are the job-level outputs: summary.json, job.json and the
	// throughput chart.
	Results map[string]string `json:"results,omitempty"`
}

// Brief is a job's line in GET /v1/jobs.
type Brief struct {
	ID       string       `json:"id"`
	State    bus.JobState `json:"state"`
	Videos   int          `json:"videos"`
	Progress Progress     `json:"progress"`
	Created  time.Time    `json:"created"`
	Finished *time.Time   `json:"finished,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// Brief summarises r.
func (r *Record) Brief() Brief {
	return Brief{ID: r.ID, State: r.State, Videos: len(r.Videos), Progress: r.Progress, Created: r.Created, Finished: r.Finished, Error: r.Error}
}

// video returns r's entry for name.
func (r *Record) video(name string) *Video {
	for i := range r.Videos {
		if r.Videos[i].Name == name {
			return &r.Videos[i]
		}
	}
	return nil
}
