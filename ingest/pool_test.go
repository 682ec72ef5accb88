package ingest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// testClip makes a synthetic clip of the given length with the ffmpeg CLI.
func testClip(t *testing.T, name string, seconds, fps int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		"testsrc=size=96x64:rate="+strconv.Itoa(fps), "-t", strconv.Itoa(seconds), "-pix_fmt", "yuv420p", "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s (run scripts/setup.sh)", err, out)
	}
	return path
}

func putTask(t *testing.T, js jetstream.JetStream, task bus.Task) {
	t.Helper()
	b, err := bus.EncodeTask(&task)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), bus.VideoSubject(task.Job, task.Video), b); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond with a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 60*time.Second, what, poll.True(cond))
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream, subject string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// TestPool runs the ingest pool on real tasks: a video is published with
// the job's thresholds in every frame header, a cancellation stops a video
// held back by backpressure, and bad tasks or tasks of finished jobs are
// settled without frames.
func TestPool(t *testing.T) {
	nc, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for job, state := range map[string]bus.JobState{"job1": bus.JobRunning, "gone": bus.JobCancelled} {
		if _, err := kv.Put(ctx, job, []byte(`{"state":"`+string(state)+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := NewPool(ctx, js, New(js, Options{}), PoolOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()

	short := testClip(t, "short.mp4", 3, 10)
	putTask(t, js, bus.Task{Job: "job1", Video: "short", Source: short, Size: 64, Conf: 0.3, MaxDet: 7})
	eventually(t, "the short video's end event", func() bool {
		return streamMsgs(t, js, bus.ResultsStream, bus.EventSubject("job1", "short")) == 2
	})
	if n := streamMsgs(t, js, bus.FramesStream, bus.FrameSubject("job1", "short")); n != 30 {
		t.Fatalf("%d frames published, want 30", n)
	}
	frames, err := js.Stream(ctx, bus.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := frames.GetLastMsgForSubject(ctx, bus.FrameSubject("job1", "short"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(bus.HeaderConf) != "0.3" || m.Header.Get(bus.HeaderMaxDet) != "7" || m.Header.Get(bus.HeaderIoU) != "" {
		t.Fatalf("frame headers %v do not carry the job's thresholds", m.Header)
	}

	// 34 slots are left in the frames stream and nobody consumes: the long
	// video blocks on backpressure until it is cancelled.
	long := testClip(t, "long.mp4", 60, 10)
	putTask(t, js, bus.Task{Job: "job1", Video: "long", Source: long, Size: 64})
	eventually(t, "the frames stream to fill", func() bool {
		return streamMsgs(t, js, bus.FramesStream, bus.FrameSubject("job1", "long")) == 34
	})
	// The notice is answered once the video has stopped publishing, so
	// the coordinator purges after the last frame, not after a timer.
	if _, err := nc.Request(bus.CancelSubject("job1"), nil, 30*time.Second); err != nil {
		t.Fatalf("no answer to the cancellation once the video stopped: %v", err)
	}
	eventually(t, "the cancelled video's task to be settled", func() bool {
		return streamMsgs(t, js, bus.VideosStream, bus.VideosSubject+".>") == 0
	})
	if n := streamMsgs(t, js, bus.ResultsStream, bus.EventSubject("job1", "long")); n != 1 {
		t.Errorf("cancelled video has %d events, want only its start", n)
	}

	// A task of a cancelled job, and one that is not a task.
	putTask(t, js, bus.Task{Job: "gone", Video: "v", Source: short, Size: 64})
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: bus.VideoSubject("job1", "junk"), Data: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both tasks settled", func() bool {
		return streamMsgs(t, js, bus.VideosStream, bus.VideosSubject+".>") == 0
	})
	if n := streamMsgs(t, js, bus.ResultsStream, bus.EventSubject("gone", "v")); n != 0 {
		t.Errorf("a video of a cancelled job was ingested (%d events)", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}
