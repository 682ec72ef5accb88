package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// newService starts a Service on js whose jobs run until the returned stop.
func newService(t *testing.T, js jetstream.JetStream, out string) (*Service, context.CancelFunc) {
	t.Helper()
	store, err := OpenStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(js, store, Options{
		Out: out, Model: Model{Path: "/models/m.onnx", SHA256: "abc", Input: 64},
		LocalInputs: true, FlushEvery: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stop := func() { cancel(); svc.Wait() }
	t.Cleanup(stop)
	return svc, stop
}

// waitFor polls the job until ok or a generous deadline.
func waitFor(t *testing.T, svc *Service, id string, what string, ok func(*Record) bool) *Record {
	t.Helper()
	var r *Record
	poll.Until(t, 30*time.Second, "job "+id+": "+what, func() (bool, error) {
		var err error
		if r, err = svc.Get(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		return ok(r), fmt.Errorf("record %+v", r)
	})
	return r
}

func publishJSON(t *testing.T, js jetstream.JetStream, subject string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: b}); err != nil {
		t.Fatal(err)
	}
}

// takeTasks pulls the video tasks an ingest process would get.
func takeTasks(t *testing.T, js jetstream.JetStream, n int) []bus.Task {
	t.Helper()
	cons, err := js.Consumer(context.Background(), bus.VideosStream, bus.IngestConsumer)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []bus.Task
	deadline := time.Now().Add(30 * time.Second)
	for len(tasks) < n && time.Now().Before(deadline) {
		batch, err := cons.Fetch(n-len(tasks), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var task bus.Task
			if err := bus.DecodeTask(m.Data(), &task); err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, task)
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(tasks) != n {
		t.Fatalf("got %d video tasks, want %d", len(tasks), n)
	}
	return tasks
}

// playVideo publishes what ingest and the workers would for one task:
// start, n results, end.
func playVideo(t *testing.T, js jetstream.JetStream, task bus.Task, n int) {
	t.Helper()
	publishJSON(t, js, bus.EventSubject(task.Job, task.Video), bus.Event{Type: bus.VideoStarted, Job: task.Job, Video: task.Video, FramesEstimate: int64(n)})
	for seq := range n {
		now := time.Now().UnixNano()
		publishJSON(t, js, bus.ResultSubject(task.Job, task.Video), bus.Result{
			Job: task.Job, Video: task.Video, Seq: seq, Index: seq, Worker: "w1", Batch: 1,
			PublishedUnixNano: now - 1e6, DoneUnixNano: now, InferMS: 1,
			Detections: []bus.Detection{{Class: "person", Conf: 0.9, Box: [4]float32{1, 2, 3, 4}}},
		})
	}
	publishJSON(t, js, bus.EventSubject(task.Job, task.Video), bus.Event{Type: bus.VideoEnded, Job: task.Job, Video: task.Video, Frames: n, Decoded: n})
}

// TestResumeAfterRestart stops the service mid-job and starts another on
// the same bus: the second finishes the job from the streams and KV alone.
func TestResumeAfterRestart(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	out := t.TempDir()
	svc, stop := newService(t, js, out)
	rec, created, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/v/a.mp4", "/v/b.mp4"}, Conf: 0.4, Every: 2, Preprocess: "fast"})
	if err != nil || !created {
		t.Fatalf("submit: created %v, err %v", created, err)
	}
	tasks := takeTasks(t, js, 2)
	for _, task := range tasks {
		if task.Job != rec.ID || task.Size != 64 || task.Conf != 0.4 || task.Every != 2 || task.Preprocess != "fast" {
			t.Fatalf("task %+v does not carry the job's settings", task)
		}
	}
	playVideo(t, js, tasks[0], 5)
	waitFor(t, svc, rec.ID, "progress on the first video", func(r *Record) bool { return r.Progress.Done == 5 })
	stop() // the coordinator dies with one video left

	svc2, _ := newService(t, js, out)
	if r, _ := svc2.Get(context.Background(), rec.ID); r.State != bus.JobRunning {
		t.Fatalf("state after restart: %s", r.State)
	}
	playVideo(t, js, tasks[1], 3)
	done := waitFor(t, svc2, rec.ID, "the job to finish", func(r *Record) bool { return r.State.Final() })
	if done.State != bus.JobSucceeded || done.Progress.Done != 8 || done.Stats == nil || done.Stats.Frames != 8 {
		t.Fatalf("finished record: state %s, progress %+v, stats %+v", done.State, done.Progress, done.Stats)
	}
	for _, v := range done.Videos {
		if v.State != "succeeded" || v.Results["detections"] == "" {
			t.Errorf("video %+v", v)
		}
	}
	// A resumed job dispatches nothing twice.
	if info, err := js.Stream(context.Background(), bus.VideosStream); err == nil {
		if n := info.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("%d video tasks left on the stream", n)
		}
	}
	for _, f := range []string{"summary.json", "job.json", "a/detections.jsonl", "b/detections.parquet"} {
		if _, err := os.Stat(filepath.Join(out, rec.ID, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestSubmitRejects(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir())
	for name, spec := range map[string]Spec{
		"no inputs":         {},
		"every and fps":     {Inputs: []string{"/a.mp4"}, Every: 2, FPS: 1},
		"conf over 1":       {Inputs: []string{"/a.mp4"}, Conf: 1.5},
		"bad name":          {Inputs: []string{"/a.mp4"}, Name: "a.b"},
		"other model":       {Inputs: []string{"/a.mp4"}, Model: "s3://models/other.onnx"},
		"empty input":       {Inputs: []string{" "}},
		"missing manifest":  {Inputs: []string{"@/no/such/manifest.txt"}},
		"negative max_det":  {Inputs: []string{"/a.mp4"}, MaxDet: -1},
		"bad preprocess":    {Inputs: []string{"/a.mp4"}, Preprocess: "cv2"},
		"nested local path": {Inputs: []string{"@"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := svc.Submit(context.Background(), spec); !errors.Is(err, ErrBadSpec) {
				t.Fatalf("err = %v, want ErrBadSpec", err)
			}
		})
	}
	if _, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/a.mp4"}, Model: "sha256:abc"}); err != nil {
		t.Fatalf("the pool's own model by hash: %v", err)
	}
}

func TestSubmitLocations(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	store, err := OpenStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(manifest, []byte("s3://videos/a.mp4\nhttp://169.254.169.254/latest/meta-data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	strict := New(js, store, Options{Out: "s3://results/jobs", Model: Model{Input: 64}, Buckets: []string{"videos", "results"}})
	local := New(js, store, Options{Out: t.TempDir(), Model: Model{Input: 64}, LocalInputs: true, Buckets: []string{"videos"}})
	for name, tc := range map[string]struct {
		svc    *Service
		spec   Spec
		reason string
	}{
		"local path":         {strict, Spec{Inputs: []string{"/etc/passwd"}}, "local path"},
		"metadata endpoint":  {strict, Spec{Inputs: []string{"http://169.254.169.254/latest"}}, "only s3://"},
		"file scheme":        {local, Spec{Inputs: []string{"file:///etc/passwd"}}, "only s3://"},
		"bucket not allowed": {strict, Spec{Inputs: []string{"s3://private/x.mp4"}}, `bucket "private"`},
		"output not allowed": {strict, Spec{Inputs: []string{"s3://videos/x.mp4"}, Output: "s3://elsewhere/out"}, `bucket "elsewhere"`},
		"local manifest":     {local, Spec{Inputs: []string{"@" + manifest}}, "must be an s3:// object"},
		"manifest in bucket": {strict, Spec{Inputs: []string{"@s3://private/list.txt"}}, `bucket "private"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := tc.svc.Submit(context.Background(), tc.spec)
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want ErrBadSpec naming %q", err, tc.reason)
			}
		})
	}
}

// FuzzSpec feeds arbitrary JSON to the spec decoder and validator: no
// panic, and a spec that passes has sane fields.
func FuzzSpec(f *testing.F) {
	f.Add([]byte(`{"inputs":["s3://bucket/k.mp4"],"every":2,"conf":0.3}`))
	f.Add([]byte(`{"inputs":["@s3://bucket/list"],"fps":1.5,"output":"s3://out/p","idempotency_key":"k"}`))
	f.Add([]byte(`{"inputs":[""],"every":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Spec
		if json.Unmarshal(b, &s) != nil {
			return
		}
		if s.Validate(false) != nil {
			return
		}
		if len(s.Inputs) == 0 || s.Every < 0 || s.Conf < 0 || s.Conf > 1 || (s.Every > 1 && s.FPS > 0) {
			t.Fatalf("accepted %+v", s)
		}
		for _, in := range s.Inputs {
			if !strings.HasPrefix(strings.TrimPrefix(in, "@"), "s3://") {
				t.Fatalf("accepted input %q", in)
			}
		}
	})
}

func TestSubmitIdempotent(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir())
	spec := Spec{Inputs: []string{"/a.mp4"}, IdempotencyKey: "batch-42"}
	first, created, err := svc.Submit(context.Background(), spec)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	again, created, err := svc.Submit(context.Background(), spec)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("retry: id %s (first %s), created %v, err %v", again.ID, first.ID, created, err)
	}
	if _, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/a.mp4"}, Name: first.ID}); !errors.Is(err, ErrExists) {
		t.Fatalf("same id without the key: %v", err)
	}
	takeTasks(t, js, 1) // one job, one task
}

func TestCancel(t *testing.T) {
	nc, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir())
	notices, err := nc.SubscribeSync(bus.CancelSubject("*"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/a.mp4", "/b.mp4", "/c.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, svc, rec.ID, "dispatch", func(r *Record) bool { return r.Dispatched })
	// Frames queued for the job, as ingest would have published them.
	for seq := range 3 {
		f := bus.Frame{Job: rec.ID, Video: "a", Seq: seq, Size: 1, Gain: 1, Pixels: []byte{1, 2, 3}}
		if _, err := js.Publish(context.Background(), bus.FrameSubject(rec.ID, "a"), bus.AppendFrame(nil, &f)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := svc.Cancel(context.Background(), rec.ID)
	if err != nil || got.State != bus.JobCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if m, err := notices.NextMsg(10 * time.Second); err != nil || m.Subject != bus.CancelSubject(rec.ID) {
		t.Fatalf("cancel notice: %v %v", m, err)
	}
	for _, stream := range []string{bus.FramesStream, bus.VideosStream} {
		st, err := js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("%s holds %d messages of the cancelled job", stream, n)
		}
	}
	for _, v := range waitFor(t, svc, rec.ID, "cancelled", func(r *Record) bool { return r.State == bus.JobCancelled }).Videos {
		if v.State != VideoCancelled {
			t.Errorf("video %s: %s", v.Name, v.State)
		}
	}
	if _, err := svc.Cancel(context.Background(), rec.ID); !errors.Is(err, ErrFinished) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := svc.Cancel(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
}

// TestRedispatchAbandonedTask leaves a job's task stored but past the
// ingest consumer's MaxDeliver, with no end event for its video (its
// advisory was lost): a restarted coordinator puts the task back, so the
// job finishes instead of staying RUNNING.
func TestRedispatchAbandonedTask(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.IngestMaxDeliver = 1
	_, js := bustest.Start(t, o)
	ctx := context.Background()
	out := t.TempDir()
	svc, stop := newService(t, js, out)
	rec, _, err := svc.Submit(ctx, Spec{Inputs: []string{"/v/a.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, svc, rec.ID, "dispatch", func(r *Record) bool { return r.Dispatched })
	cons, err := js.Consumer(ctx, bus.VideosStream, bus.IngestConsumer)
	if err != nil {
		t.Fatal(err)
	}
	// The one delivery is handed back; the next pull finds it exhausted.
	poll.Until(t, 30*time.Second, "the task exhausted", func() (bool, error) {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return false, err
		}
		for m := range batch.Messages() {
			_ = m.Nak()
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err
		}
		return info.NumAckPending == 0 && info.Delivered.Stream >= 1, fmt.Errorf("consumer %+v", info)
	})
	stop()

	svc2, _ := newService(t, js, out)
	task := takeTasks(t, js, 1)[0]
	playVideo(t, js, task, 4)
	done := waitFor(t, svc2, rec.ID, "the job to finish", func(r *Record) bool { return r.State.Final() })
	if done.State != bus.JobSucceeded || done.Progress.Done != 4 {
		t.Fatalf("finished record: state %s, progress %+v", done.State, done.Progress)
	}
	st, err := js.Stream(ctx, bus.VideosStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("videos stream after the job: %+v %v", info, err)
	}
}

// TestWallTimeAcrossRestart: a job resumed by another coordinator reports
// its wall time and rate from when it started, as its record says, not
// from the restart.
func TestWallTimeAcrossRestart(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	out := t.TempDir()
	svc, stop := newService(t, js, out)
	rec, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/v/a.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	task := takeTasks(t, js, 1)[0]
	waitFor(t, svc, rec.ID, "running", func(r *Record) bool { return r.State == bus.JobRunning && r.Started != nil })
	stop()
	// The job has been running for an hour when its coordinator restarts.
	hourAgo := time.Now().UTC().Add(-time.Hour)
	store, err := OpenStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(context.Background(), rec.ID, func(r *Record) error { r.Started = &hourAgo; return nil }); err != nil {
		t.Fatal(err)
	}
	svc2, _ := newService(t, js, out)
	playVideo(t, js, task, 36)
	done := waitFor(t, svc2, rec.ID, "the job to finish", func(r *Record) bool { return r.State.Final() })
	if done.Progress.FPS <= 0 || done.Progress.FPS > 36.0/3600*1.01 {
		t.Errorf("record fps %v, want 36 frames over at least an hour (%.4f)", done.Progress.FPS, 36.0/3600)
	}
	b, err := os.ReadFile(filepath.Join(out, rec.ID, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		WallSeconds float64 `json:"wall_seconds"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.WallSeconds < 3600 {
		t.Errorf("summary.json wall_seconds %v, want the hour since the job started", sum.WallSeconds)
	}
}

// TestCancelPurgesAfterIngestStops: frames an ingest process publishes
// between the cancellation notice and stopping are purged when it says it
// has stopped, not by a timer. The ingest process is played here: on the
// notice it publishes late frames, then answers.
func TestCancelPurgesAfterIngestStops(t *testing.T) {
	nc, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir())
	rec, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"/a.mp4"}})
	if err != nil {
		t.Fatal(err)
	}
	takeTasks(t, js, 1)
	frame := func(seq int) {
		f := bus.Frame{Job: rec.ID, Video: "a", Seq: seq, Size: 1, Gain: 1, Pixels: []byte{1, 2, 3}}
		if _, err := js.Publish(context.Background(), bus.FrameSubject(rec.ID, "a"), bus.AppendFrame(nil, &f)); err != nil {
			t.Fatal(err)
		}
	}
	frame(0)
	waitFor(t, svc, rec.ID, "the video running", func(r *Record) bool { return r.Dispatched })
	answered := make(chan error, 1)
	sub, err := nc.Subscribe(bus.CancelSubject(rec.ID), func(m *nats.Msg) {
		if m.Reply == "" {
			answered <- errors.New("the cancellation notice asks for no answer")
			return
		}
		frame(1) // published before the notice stopped the video
		frame(2)
		answered <- m.Respond(nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := svc.Cancel(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	frames, err := js.Stream(context.Background(), bus.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the late frames purged", func() (bool, error) {
		info, err := frames.Info(context.Background())
		if err != nil {
			return false, err
		}
		return info.State.Msgs == 0, fmt.Errorf("%d frames left", info.State.Msgs)
	})
}
