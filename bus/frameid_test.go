package bus

import (
	"strings"
	"testing"
)

func TestParseFrameID(t *testing.T) {
	long := strings.Repeat("v", MaxNameLen)
	good := []struct {
		name, subject, id string
		job, video        string
		seq               int
	}{
		{"first frame", FrameSubject("job1", "vtest_avi"), MsgID("job1", "vtest_avi", 0), "job1", "vtest_avi", 0},
		{"later frame", FrameSubject("j-2", "a_b"), MsgID("j-2", "a_b", 12345), "j-2", "a_b", 12345},
		{"longest names", FrameSubject(long, long), MsgID(long, long, 7), long, long, 7},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			job, video, seq, ok := ParseFrameID(tc.subject, tc.id)
			if !ok || job != tc.job || video != tc.video || seq != tc.seq {
				t.Fatalf("ParseFrameID(%q, %q) = %q, %q, %d, %v", tc.subject, tc.id, job, video, seq, ok)
			}
		})
	}
	bad := []struct{ name, subject, id string }{
		{"empty", "", ""},
		{"no id", FrameSubject("j", "v"), ""},
		{"results subject", ResultSubject("j", "v"), MsgID("j", "v", 1)},
		{"other prefix", "x.y.j.v", MsgID("j", "v", 1)},
		{"extra token", FrameSubject("j", "v") + ".x", MsgID("j", "v.x", 1)},
		{"missing video", FramesSubject + ".j", "j.1"},
		{"empty video", FramesSubject + ".j.", "j..1"},
		{"bad job name", FrameSubject("j*", "v"), MsgID("j*", "v", 1)},
		{"id of another video", FrameSubject("j", "v"), MsgID("j", "w", 1)},
		{"id of another job", FrameSubject("j", "v"), MsgID("k", "v", 1)},
		{"no seq", FrameSubject("j", "v"), "j.v."},
		{"seq not a number", FrameSubject("j", "v"), "j.v.x"},
		{"negative seq", FrameSubject("j", "v"), "j.v.-1"},
		{"signed seq", FrameSubject("j", "v"), "j.v.+1"},
		{"padded seq", FrameSubject("j", "v"), "j.v.01"},
		{"seq overflow", FrameSubject("j", "v"), "j.v.99999999999999999999"},
		{"seq with dots", FrameSubject("j", "v"), "j.v.1.2"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if job, video, seq, ok := ParseFrameID(tc.subject, tc.id); ok {
				t.Fatalf("ParseFrameID(%q, %q) = %q, %q, %d, true", tc.subject, tc.id, job, video, seq)
			}
		})
	}
}

func FuzzParseFrameID(f *testing.F) {
	f.Add(FrameSubject("job1", "v"), MsgID("job1", "v", 3))
	f.Add("vidpipe.frames.a.b", "a.b.-0")
	f.Fuzz(func(t *testing.T, subject, id string) {
		job, video, seq, ok := ParseFrameID(subject, id)
		if !ok {
			return
		}
		// Whatever is accepted is exactly what a publisher writes.
		if FrameSubject(job, video) != subject || MsgID(job, video, seq) != id {
			t.Fatalf("ParseFrameID(%q, %q) = %q, %q, %d: does not round-trip", subject, id, job, video, seq)
		}
	})
}
