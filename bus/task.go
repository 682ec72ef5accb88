package bus

import (
	"encoding/json"
	"fmt"
	"math"
)

// Task asks an ingest process to decode one video of a job and publish its
// frames. It carries everything ingest and the workers need, so an ingest
// process holds no job state of its own.
type Task struct {
	Job    string `json:"job"`
	Video  string `json:"video"`
	Source string `json:"source"`

	// Sampling: every Nth frame, or about FPS frames per second.
	Every int     `json:"every,omitempty"`
	FPS   float64 `json:"fps,omitempty"`
	// Size is the model's square input size.
	Size int `json:"size"`

	// Detection thresholds, passed to the workers in frame headers; zero
	// leaves a worker's own setting.
	Conf   float64 `json:"conf,omitempty"`
	IoU    float64 `json:"iou,omitempty"`
	MaxDet int     `json:"max_det,omitempty"`
}

// EncodeTask marshals t.
func EncodeTask(t *Task) ([]byte, error) { return json.Marshal(t) }

// DecodeTask parses and validates a task message.
func DecodeTask(b []byte, t *Task) error {
	if err := json.Unmarshal(b, t); err != nil {
		return fmt.Errorf("%w: task: %v", ErrBadMessage, err)
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return nil
}

// Validate checks a task's fields.
func (t *Task) Validate() error {
	if err := ValidName("job", t.Job); err != nil {
		return fmt.Errorf("task: %w", err)
	}
	if err := ValidName("video", t.Video); err != nil {
		return fmt.Errorf("task: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("task %s/%s: %s", t.Job, t.Video, fmt.Sprintf(format, args...))
	}
	switch {
	case t.Source == "":
		return bad("no source")
	case t.Every < 0:
		return bad("every %d is negative", t.Every)
	case t.FPS < 0 || math.IsNaN(t.FPS) || math.IsInf(t.FPS, 0):
		return bad("fps %v is not a non-negative number", t.FPS)
	case t.Every > 1 && t.FPS > 0:
		return bad("every and fps exclude each other")
	case t.Size < 32 || t.Size > 4096 || t.Size%32 != 0:
		return bad("input size %d is not a multiple of 32 in [32, 4096]", t.Size)
	case t.Conf < 0 || t.Conf > 1 || math.IsNaN(t.Conf):
		return bad("conf %v is outside [0, 1]", t.Conf)
	case t.IoU < 0 || t.IoU > 1 || math.IsNaN(t.IoU):
		return bad("iou %v is outside [0, 1]", t.IoU)
	case t.MaxDet < 0:
		return bad("max_det %d is negative", t.MaxDet)
	}
	return nil
}
