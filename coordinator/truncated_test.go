package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
)

// TestTruncatedVideoIsPartial checks that a video whose every published
// frame was analysed is still partial when ingest says its file was cut,
// with the declared count in the error and the lost frames in its stats.
func TestTruncatedVideoIsPartial(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	const job = "job1"
	videos := []struct {
		name   string
		frames int
		end    bus.Event
		status string
		msg    string
	}{
		// An MP4 cut after 45 of the 90 packets its sample table lists.
		{"mp4", 45, bus.Event{Truncated: true, Expected: 90, Missing: 45}, Partial, "cut.mp4: truncated: 45 of 90 frames"},
		// A TS ending inside a packet: the format declares no count.
		{"ts", 28, bus.Event{Truncated: true}, Partial, "cut.ts: truncated: 28 frames before the file ends early"},
		{"whole", 30, bus.Event{}, Succeeded, ""},
	}
	var specs []VideoSpec
	for _, v := range videos {
		specs = append(specs, VideoSpec{v.name, "cut." + v.name})
		publish(t, js, bus.EventSubject(job, v.name), bus.Event{Type: bus.VideoStarted, Job: job, Video: v.name})
		for seq := range v.frames {
			publish(t, js, bus.ResultSubject(job, v.name), bus.Result{
				Job: job, Video: v.name, Seq: seq, Index: seq, PTS: float64(seq) / 10,
				Worker: "w1", Batch: 1, PublishedUnixNano: int64(seq) * 1e6, DoneUnixNano: int64(seq)*1e6 + 1e6,
			})
		}
		end := v.end
		end.Type, end.Job, end.Video, end.Source = bus.VideoEnded, job, v.name, "cut."+v.name
		end.Frames, end.Decoded = v.frames, v.frames
		publish(t, js, bus.EventSubject(job, v.name), end)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum, err := New(js, Options{Out: folder(t, t.TempDir())}).RunJob(ctx, Job{ID: job, Videos: specs})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range videos {
		got := sum.Videos[i]
		if got.Status != v.status || !strings.HasPrefix(got.Error, v.msg) {
			t.Errorf("%s: status %q error %q, want %q %q", v.name, got.Status, got.Error, v.status, v.msg)
		}
		if got.Stats.Frames != v.frames || got.Stats.Missing != v.end.Missing || got.Stats.Expected != v.end.Expected {
			t.Errorf("%s: stats %+v, want %d frames, %d of %d missing", v.name, got.Stats, v.frames, v.end.Missing, v.end.Expected)
		}
	}
	if sum.Stats.Missing != 45 {
		t.Errorf("job stats count %d missing frames, want 45", sum.Stats.Missing)
	}
}
