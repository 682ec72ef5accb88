package bus

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Detection is one box in original-picture pixels, display orientation.
type Detection struct {
	ClassID int        `json:"class_id"`
	Class   string     `json:"class"`
	Conf    float32    `json:"conf"`
	Box     [4]float32 `json:"box"` // x1, y1, x2, y2
}

// Result is a worker's answer for one frame.
type Result struct {
	Job        string      `json:"job"`
	Video      string      `json:"video"`
	Seq        int         `json:"seq"`
	Index      int         `json:"frame"`
	PTS        float64     `json:"pts"`
	Detections []Detection `json:"detections"`
	// Error is set when the frame could not be analysed (a poison frame); the
	// coordinator counts it as failed instead of waiting for it.
	Error string `json:"error,omitempty"`
	// Token is the frame's HeaderFrameToken, copied from the frame the
	// worker received: the coordinator takes a result only with the token
	// of the frame it answers (see FrameToken).
	Token string `json:"token,omitempty"`

	Worker            string  `json:"worker"`
	Batch             int     `json:"batch"`
	PublishedUnixNano int64   `json:"published_unix_nano"`
	DoneUnixNano      int64   `json:"done_unix_nano"`
	DecodeMS          float32 `json:"decode_ms"`
	QueueMS           float32 `json:"queue_ms"`
	ReadMS            float32 `json:"read_ms"`
	InferMS           float32 `json:"infer_ms"`
	PostMS            float32 `json:"post_ms"`
}

// EncodeResult marshals r. A NaN or infinite number (JSON has none) is an
// ErrBadMessage naming the field, so the caller can tell a result that can
// never be sent from a failure worth retrying.
func EncodeResult(r *Result) ([]byte, error) {
	if err := r.checkFinite(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

func (r *Result) checkFinite() error {
	for _, x := range [...]struct {
		name string
		v    float64
	}{{"pts", r.PTS}, {"decode_ms", float64(r.DecodeMS)}, {"queue_ms", float64(r.QueueMS)}, {"read_ms", float64(r.ReadMS)}, {"infer_ms", float64(r.InferMS)}, {"post_ms", float64(r.PostMS)}} {
		if !finite(x.v) {
			return fmt.Errorf("%w: result %s/%s#%d: %s is %v, want a finite number", ErrBadMessage, r.Job, r.Video, r.Seq, x.name, x.v)
		}
	}
	for i, d := range r.Detections {
		if !finite(float64(d.Conf)) || !finite(float64(d.Box[0])) || !finite(float64(d.Box[1])) || !finite(float64(d.Box[2])) || !finite(float64(d.Box[3])) {
			return fmt.Errorf("%w: result %s/%s#%d: detection %d has conf %v, box %v: want finite numbers", ErrBadMessage, r.Job, r.Video, r.Seq, i, d.Conf, d.Box)
		}
	}
	return nil
}

// DecodeResult parses and validates a result message.
func DecodeResult(b []byte, r *Result) error {
	if err := json.Unmarshal(b, r); err != nil {
		return fmt.Errorf("%w: result: %v", ErrBadMessage, err)
	}
	if err := ValidName("job", r.Job); err != nil {
		return fmt.Errorf("%w: result: %v", ErrBadMessage, err)
	}
	if err := ValidName("video", r.Video); err != nil {
		return fmt.Errorf("%w: result: %v", ErrBadMessage, err)
	}
	if r.Seq < 0 || r.Index < 0 {
		return fmt.Errorf("%w: result %s/%s: negative frame number", ErrBadMessage, r.Job, r.Video)
	}
	return nil
}

// EventType names a video lifecycle event.
type EventType string

// Video lifecycle events published by ingest.
const (
	// VideoStarted: the video opened and its stream is known.
	VideoStarted EventType = "start"
	// VideoEnded: every frame was published; Frames says how many. Error is
	// set when decoding stopped early (a damaged file) or could not start.
	VideoEnded EventType = "end"
	// VideoProgress: published before frame Frames, every ProgressStep
	// frames: frames [0, Frames) are published, and none past
	// Frames+ProgressStep will be before the next progress event. The
	// coordinator takes no result beyond that, so a forged far-future seq
	// is refused instead of held in memory.
	VideoProgress EventType = "progress"
)

// ProgressStep is how many frames ingest publishes between progress events;
// the start event counts as progress at frame 0.
const ProgressStep = 256

// Event tells the coordinator where ingest stands with one video.
type Event struct {
	Type   EventType `json:"type"`
	Job    string    `json:"job"`
	Video  string    `json:"video"`
	Source string    `json:"source"`

	// On start.
	Width          int     `json:"width,omitempty"`
	Height         int     `json:"height,omitempty"`
	FPS            float64 `json:"fps,omitempty"`
	Duration       float64 `json:"duration,omitempty"`
	FramesEstimate int64   `json:"frames_estimate,omitempty"`
	Codec          string  `json:"codec,omitempty"`
	// Key (hex) signs this ingest attempt's frame tokens (FrameToken); one
	// video may get several start events, one per attempt, each with its key.
	Key string `json:"key,omitempty"`

	// On end.
	Frames        int     `json:"frames"`
	Decoded       int     `json:"decoded"`
	CorruptFrames int     `json:"corrupt_frames"`
	DecodeSeconds float64 `json:"decode_seconds"`
	Error         string  `json:"error,omitempty"`

	// Truncated says the file ends before its container declares (a cut
	// download or copy); Expected is the frame count the container
	// declares (0: it declares none, as MPEG-TS) and Missing how many of
	// them never arrived.
	Truncated bool `json:"truncated,omitempty"`
	Expected  int  `json:"expected,omitempty"`
	Missing   int  `json:"missing,omitempty"`
}

// EncodeEvent marshals e.
func EncodeEvent(e *Event) ([]byte, error) { return json.Marshal(e) }

// DecodeEvent parses and validates an event message.
func DecodeEvent(b []byte, e *Event) error {
	if err := json.Unmarshal(b, e); err != nil {
		return fmt.Errorf("%w: event: %v", ErrBadMessage, err)
	}
	if err := ValidName("job", e.Job); err != nil {
		return fmt.Errorf("%w: event: %v", ErrBadMessage, err)
	}
	if err := ValidName("video", e.Video); err != nil {
		return fmt.Errorf("%w: event: %v", ErrBadMessage, err)
	}
	if e.Type != VideoStarted && e.Type != VideoEnded && e.Type != VideoProgress {
		return fmt.Errorf("%w: event %s/%s: unknown type %q", ErrBadMessage, e.Job, e.Video, e.Type)
	}
	if e.Frames < 0 {
		return fmt.Errorf("%w: event %s/%s: negative frame count", ErrBadMessage, e.Job, e.Video)
	}
	if e.Expected < 0 || e.Missing < 0 || e.Missing > e.Expected || (e.Missing > 0 && !e.Truncated) {
		return fmt.Errorf("%w: event %s/%s: %d of %d expected frames missing (truncated %v)", ErrBadMessage, e.Job, e.Video, e.Missing, e.Expected, e.Truncated)
	}
	if e.Key != "" {
		if k, err := hex.DecodeString(e.Key); err != nil || len(k) != KeyBytes {
			return fmt.Errorf("%w: event %s/%s: key must be %d hex bytes", ErrBadMessage, e.Job, e.Video, KeyBytes)
		}
	}
	return nil
}
