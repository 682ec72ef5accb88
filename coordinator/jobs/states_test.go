package jobs

import (
	"context"
	"errors"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/internal/bustest"
)

// TestVideoStatesAsTheyFinish: a video's state and result URIs reach the
// record when its outputs are written, not when the job ends; cancelling
// the job then keeps them and cancels only the video still running.
func TestVideoStatesAsTheyFinish(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir())
	rec, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/v/a.mp4", "/v/b.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	tasks := takeTasks(t, js, 2)
	a, b := tasks[0], tasks[1]
	if a.Video != "a" {
		a, b = b, a
	}
	playVideo(t, js, a, 3)
	publishJSON(t, js, bus.EventSubject(b.Job, b.Video), bus.Event{Type: bus.VideoStarted, Job: b.Job, Video: b.Video, FramesEstimate: 9})
	r := waitFor(t, svc, rec.ID, "video a recorded as finished", func(r *Record) bool { return r.video("a").State == coordinator.Succeeded })
	if r.State != bus.JobRunning {
		t.Fatalf("job %s, want still running", r.State)
	}
	if va := r.video("a"); va.Results["detections"] == "" || va.Stats == nil || va.Stats.Frames != 3 || va.Done != 3 {
		t.Fatalf("finished video a: %+v", va)
	}
	got, err := svc.Cancel(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	va, vb := got.video("a"), got.video("b")
	if va.State != coordinator.Succeeded || va.Results["detections"] == "" || va.Results["stats"] == "" {
		t.Errorf("cancel changed the finished video: %+v", va)
	}
	if vb.State != VideoCancelled {
		t.Errorf("video b after cancel: %s, want %s", vb.State, VideoCancelled)
	}
}

// TestFailedJobEndsItsVideos: a job that fails ends its unfinished videos
// as failed; none is left running or queued.
func TestFailedJobEndsItsVideos(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir())
	rec, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/v/a.mp4", "/v/b.mp4", "/v/c.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	tasks := takeTasks(t, js, 3)
	var a, b bus.Task
	for _, task := range tasks {
		switch task.Video {
		case "a":
			a = task
		case "b":
			b = task
		}
	}
	playVideo(t, js, a, 2)
	publishJSON(t, js, bus.EventSubject(b.Job, b.Video), bus.Event{Type: bus.VideoStarted, Job: b.Job, Video: b.Video, FramesEstimate: 9})
	waitFor(t, svc, rec.ID, "a finished, b running", func(r *Record) bool {
		return r.video("a").State == coordinator.Succeeded && r.video("b").State == VideoRunning
	})
	svc.fail(rec.ID, errors.New("write summary.json: storage down"))
	r, err := svc.Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bus.JobFailed {
		t.Fatalf("job %s", r.State)
	}
	want := map[string]string{"a": coordinator.Succeeded, "b": coordinator.Failed, "c": coordinator.Failed}
	for _, v := range r.Videos {
		if v.State != want[v.Name] {
			t.Errorf("video %s: %s, want %s", v.Name, v.State, want[v.Name])
		}
	}
}
