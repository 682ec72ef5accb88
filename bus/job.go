package bus

import (
	"encoding/json"
	"fmt"
)

// JobState is where a submitted job stands. Job records live in JobsBucket;
// the coordinator owns them, and ingest reads only their state.
type JobState string

// Job states. SUCCEEDED, FAILED and CANCELLED are final.
const (
	JobQueued    JobState = "QUEUED"
	JobRunning   JobState = "RUNNING"
	JobSucceeded JobState = "SUCCEEDED"
	JobFailed    JobState = "FAILED"
	JobCancelled JobState = "CANCELLED"
)

// Final reports whether s never changes again.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// JobStateOf reads the state of a job record without the rest of it.
func JobStateOf(b []byte) (JobState, error) {
	var r struct {
		State JobState `json:"state"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("%w: job record: %v", ErrBadMessage, err)
	}
	switch r.State {
	case JobQueued, JobRunning, JobSucceeded, JobFailed, JobCancelled:
		return r.State, nil
	}
	return "", fmt.Errorf("%w: job record: unknown state %q", ErrBadMessage, r.State)
}
