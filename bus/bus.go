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

	// VideosStream holds one task per video of a submitted job, waiting for
	// an ingest process. Work-queue retention: a task is gone once an ingest
	// process has published the video's frames and its end event.
	VideosStream  = "VIDPIPE_VIDEOS"
	VideosSubject = "vidpipe.videos"
	// IngestConsumer is the durable pull consumer every ingest process shares.
	IngestConsumer = "ingest"

	// JobsBucket is the KV bucket of job records, keyed by job id; writes are
	// compare-and-set on the revision, so two writers never lose an update.
	JobsBucket = "VIDPIPE_JOBS"
	// WorkersBucket is the KV bucket of worker heartbeats, keyed by worker
	// name; an entry older than its TTL is a worker that is gone.
	WorkersBucket = "VIDPIPE_WORKERS"

	// ControlSubject carries core NATS notices (not stored): a job's
	// cancellation reaches ingest processes on ControlSubject.cancel.<job>.
	ControlSubject = "vidpipe.control"

	// MaxDeliveriesAdvisory is where JetStream reports a frame that reached
	// the workers consumer's MaxDeliver without an ack. AdvisoriesStream
	// keeps those reports until a coordinator has handled them through
	// AdvisoriesConsumer, so none is lost while no coordinator runs.
	MaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + FramesStream + "." + WorkersConsumer
	// TaskMaxDeliveriesAdvisory is the same report about a video task that
	// reached the ingest consumer's MaxDeliver: its ingest processes kept
	// dying or failing, so the video gets no end event from them.
	TaskMaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + VideosStream + "." + IngestConsumer
	AdvisoriesStream          = "VIDPIPE_ADVISORIES"
	AdvisoriesConsumer        = "coordinator"
)

// Frame headers that carry a job's detection thresholds to the workers, so
// one worker pool serves jobs with different thresholds.
const (
	HeaderConf   = "Vidpipe-Conf"
	HeaderIoU    = "Vidpipe-Iou"
	HeaderMaxDet = "Vidpipe-Max-Det"
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

// VideoSubject is where a video's ingest task waits.
func VideoSubject(job, video string) string { return VideosSubject + "." + job + "." + video }

// CancelSubject is where a job's cancellation is announced.
func CancelSubject(job string) string { return ControlSubject + ".cancel." + job }

// JobFilter matches every subject of a job under prefix.
func JobFilter(prefix, job string) string { return prefix + "." + job + ".>" }

// EventMsgID is the de-duplication id of a video's event: one start and
// one end per video, whoever publishes it.
func EventMsgID(job, video string, t EventType) string { return job + "." + video + "." + string(t) }

// MsgID is the de-duplication id of a frame or its result: the same
// (job, video, seq) is published at most once within the duplicate window.
func MsgID(job, video string, seq int) string {
	return fmt.Sprintf("%s.%s.%d", job, video, seq)
}
