package bus

import (
	"strconv"
	"strings"
)

// ParseFrameID recovers (job, video, seq) from a frame message's subject
// (FrameSubject) and its Nats-Msg-Id (MsgID). Both survive when the payload
// does not, so a poison or undeliverable frame can still be reported against
// the right video. ok is false unless subject and id agree and every part is
// valid.
func ParseFrameID(subject, msgID string) (job, video string, seq int, ok bool) {
	rest, found := strings.CutPrefix(subject, FramesSubject+".")
	if !found {
		return "", "", 0, false
	}
	job, video, found = strings.Cut(rest, ".")
	if !found || ValidName("job", job) != nil || ValidName("video", video) != nil {
		return "", "", 0, false
	}
	digits, found := strings.CutPrefix(msgID, job+"."+video+".")
	if !found {
		return "", "", 0, false
	}
	// Only the form MsgID writes: Atoi alone would also take "+7" or "007".
	seq, err := strconv.Atoi(digits)
	if err != nil || seq < 0 || strconv.Itoa(seq) != digits {
		return "", "", 0, false
	}
	return job, video, seq, true
}
