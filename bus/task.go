package bus

import (
	"encoding/json"
	"errors"
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
	// Preprocess is how ingest makes the model's input: PreprocessExact
	// (YOLOv5's own pixels) or PreprocessFast; empty leaves ingest's own
	// setting.
	Preprocess string `json:"preprocess,omitempty"`

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
	case t.Size < 32 || t.Size > 4096 || t.Size%32 != 0:
		return bad("input size %d is not a multiple of 32 in [32, 4096]", t.Size)
	}
	if err := CheckSettings(t.Every, t.FPS, t.Conf, t.IoU, t.MaxDet); err != nil {
		return bad("%v", err)
	}
	if err := CheckPreprocess(t.Preprocess); err != nil {
		return bad("%v", err)
	}
	return nil
}

// The preprocessings a job may ask ingest for; media/decode implements
// them under the same names.
const (
	// PreprocessExact gives the model the very pixels YOLOv5's own
	// cv2 pipeline gives it (the default).
	PreprocessExact = "exact"
	// PreprocessFast resizes before converting to RGB: cheaper, about 1
	// level away on average, and so different detections.
	PreprocessFast = "fast"
)

// CheckPreprocess accepts "" (ingest's own setting) and the names above.
func CheckPreprocess(p string) error {
	switch p {
	case "", PreprocessExact, PreprocessFast:
		return nil
	}
	return fmt.Errorf("preprocess: %q is not %s or %s", p, PreprocessExact, PreprocessFast)
}

// MaxDet bounds the detections per frame a job may ask for.
const MaxDet = 30000

// CheckSettings checks a job's sampling and thresholds, as a spec carries
// them and as tasks pass them on; zero thresholds mean the workers' own.
func CheckSettings(every int, fps, conf, iou float64, maxDet int) error {
	switch {
	case every < 0:
		return fmt.Errorf("every: %d is negative", every)
	case fps < 0 || math.IsNaN(fps) || math.IsInf(fps, 0):
		return fmt.Errorf("fps: %v is not a non-negative number", fps)
	case every > 1 && fps > 0:
		return errors.New("every and fps exclude each other")
	case conf < 0 || conf > 1 || math.IsNaN(conf):
		return fmt.Errorf("conf: %v is outside [0, 1]", conf)
	case iou < 0 || iou > 1 || math.IsNaN(iou):
		return fmt.Errorf("iou: %v is outside [0, 1]", iou)
	case maxDet < 0 || maxDet > MaxDet:
		return fmt.Errorf("max_det: %d is outside [0, %d]", maxDet, MaxDet)
	}
	return nil
}
