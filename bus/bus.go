// Package bus defines how vidpipe's components talk over NATS JetStream: the
// streams and subjects, the names that may appear in them, and the wire
// formats of frames, results and video events. Ingest, workers and the
// coordinator share nothing else.
package bus

import (
	"errors"
	"fmt"
	"strings"
)

// Stream and subject layout. Tokens after the prefix are <job>.<video>.
const (
	// FramesStream holds decoded frames waiting for a worker. Work-queue
	// retention: a frame is gone once a worker acks it.
	FramesStream  = "VIDPIPE_FRAMES"
	FramesSubject = "vidpipe.frames"
	// ResultsStream holds worker results and ingest's per-video events (start,
	// end with the number of frames published, decode errors). It keeps them
	// after delivery, so a restarted coordinator rebuilds a job by replaying
	// the job's subjects from the start.
	ResultsStream  = "VIDPIPE_RESULTS"
	ResultsSubject = "vidpipe.results"
	EventsSubject  = "vidpipe.events"
	// WorkersConsumer is the durable pull consumer every worker shares.
	WorkersConsumer = "workers"
)

// Sentinel errors.
var (
	// ErrBadName means a job or video name is not safe for subjects and keys.
	ErrBadName = errors.New("invalid name")
	// ErrBadMessage means a message on the bus could not be decoded.
	ErrBadMessage = errors.New("invalid message")
)

// MaxNameLen bounds job and video names.
const MaxNameLen = 128

// ValidName checks that s can be used as a subject token and a storage key
// segment: 1 to MaxNameLen characters of [A-Za-z0-9_-], so it never holds a
// '.', '/', '*', '>' or whitespace, and never means "..".
func ValidName(kind, s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s %q must be 1 to %d characters", ErrBadName, kind, s, MaxNameLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %s %q may hold only letters, digits, '_' and '-'", ErrBadName, kind, s)
		}
	}
	return nil
}

// NameFrom turns an arbitrary string (a file name, say) into a valid name:
// other characters become '_', and it is cut to MaxNameLen.
func NameFrom(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= MaxNameLen {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "video"
	}
	return b.String()
}

// FrameSubject is where frames of one video are published.
func FrameSubject(job, video string) string { return FramesSubject + "." + job + "." + video }

// ResultSubject is where results of one video are published.
func ResultSubject(job, video string) string { return ResultsSubject + "." + job + "." + video }

// EventSubject is where events of one video are published.
func EventSubject(job, video string) string { return EventsSubject + "." + job + "." + video }

// JobFilter matches every subject of a job under prefix.
func JobFilter(prefix, job string) string { return prefix + "." + job + ".>" }

// MsgID is the de-duplication id of a frame or its result: the same
// (job, video, seq) is published at most once within the duplicate window.
func MsgID(job, video string, seq int) string {
	return fmt.Sprintf("%s.%s.%d", job, video, seq)
}
