package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
)

// answer is a worker's result for frame seq, with the frame's token under
// key ("" for none) and one detection of class.
func answer(job, video string, seq int, key, class string) bus.Result {
	r := bus.Result{
		Job: job, Video: video, Seq: seq, Index: seq, PTS: float64(seq) / 25,
		Detections: []bus.Detection{{Class: class, Conf: 0.5, Box: [4]float32{1, 2, 3, 4}}},
		Worker:     "w1", Batch: 1, PublishedUnixNano: int64(seq+1) * 1e6, DoneUnixNano: int64(seq+1)*1e6 + 1e8,
	}
	if key != "" {
		r.Token = bus.FrameToken(key, job, video, seq)
	}
	return r
}

func start(job, video, key string) bus.Event {
	return bus.Event{Type: bus.VideoStarted, Job: job, Video: video, Source: video + ".mp4", Key: key}
}

func end(job, video string, frames int) bus.Event {
	return bus.Event{Type: bus.VideoEnded, Job: job, Video: video, Source: video + ".mp4", Frames: frames, Decoded: frames}
}

// runOne runs a one-video job over what the test published and returns
// its summary and the most results the coordinator held at once.
func runOne(t *testing.T, js jetstream.JetStream, job, video string) (VideoSummary, int, string) {
	t.Helper()
	out := t.TempDir()
	buffered := 0
	c := New(js, Options{Out: folder(t, out), OnProgress: func(p Progress) { buffered = max(buffered, p.Buffered) }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := c.RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{video, video + ".mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Videos[0], buffered, filepath.Join(out, video, DetectionsFile)
}

// classes reads detections.jsonl: the class of each frame's detection.
func classes(t *testing.T, path string) map[int]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[int]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Detections) == 1 {
			got[l.Frame] = l.Detections[0].Class
		}
	}
	return got
}

// noForgery checks that no frame in detections.jsonl has a forged answer.
func noForgery(t *testing.T, path string) {
	t.Helper()
	var forged []int
	for frame, class := range classes(t, path) {
		if class != "person" {
			forged = append(forged, frame)
		}
	}
	if len(forged) > 0 {
		t.Errorf("%d frames have a forged detection, among them frame %d", len(forged), forged[0])
	}
}

// TestForgedResultRefused: a worker that never received frame 3 publishes
// an answer for it first, without the frame's token or with a token under
// another key. Before results were bound to their frames, the first answer
// was kept and the forgery was the video's detections.
func TestForgedResultRefused(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	const job, video, n = "victim", "v", 20
	key := bus.NewKey()
	publish(t, js, bus.EventSubject(job, video), start(job, video, key))
	publish(t, js, bus.ResultSubject(job, video), answer(job, video, 3, "", "forged"))
	publish(t, js, bus.ResultSubject(job, video), answer(job, video, 3, bus.NewKey(), "forged"))
	other := answer(job, video, 4, key, "forged")
	other.Token = bus.FrameToken(key, job, video, 5) // a real token, of another frame
	publish(t, js, bus.ResultSubject(job, video), other)
	for seq := range n {
		publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
	}
	publish(t, js, bus.EventSubject(job, video), end(job, video, n))

	s, _, det := runOne(t, js, job, video)
	if s.Status != Succeeded || s.Stats.Frames != n || s.Stats.RefusedResults != 3 {
		t.Errorf("status %s, %d frames, %d refused; want succeeded, %d, 3: %s", s.Status, s.Stats.Frames, s.Stats.RefusedResults, n, s.Error)
	}
	noForgery(t, det)
}

// TestEndEventMustAgree: an end event whose count contradicts the frames
// seen (results, progress events) or that reports no frame at all never
// makes the video succeeded. Before, "frames: 0" from ingest credentials
// finished a video with published frames as succeeded with 0 frames.
func TestEndEventMustAgree(t *testing.T) {
	cases := []struct {
		name    string
		publish func(t *testing.T, js jetstream.JetStream, job, video, key string)
		status  string
		err     string
	}{{
		name: "frames 0 after results",
		publish: func(t *testing.T, js jetstream.JetStream, job, video, key string) {
			for seq := range 10 {
				publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
			}
			publish(t, js, bus.EventSubject(job, video), end(job, video, 0))
		},
		// The ten results came first and stand; the video is not whole.
		status: Partial, err: "end event says 0 frames, but 10 were published",
	}, {
		name: "frames 0 after a progress event",
		publish: func(t *testing.T, js jetstream.JetStream, job, video, key string) {
			publish(t, js, bus.EventSubject(job, video), bus.Event{Type: bus.VideoProgress, Job: job, Video: video, Frames: bus.ProgressStep})
			publish(t, js, bus.EventSubject(job, video), end(job, video, 0))
		},
		status: Failed, err: "end event says 0 frames, but 256 were published",
	}, {
		name: "frames 0 before anything",
		publish: func(t *testing.T, js jetstream.JetStream, job, video, key string) {
			publish(t, js, bus.EventSubject(job, video), end(job, video, 0))
		},
		status: Failed, err: "ingest published no frames",
	}, {
		name: "fewer frames than results",
		publish: func(t *testing.T, js jetstream.JetStream, job, video, key string) {
			for seq := range 10 {
				publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
			}
			publish(t, js, bus.EventSubject(job, video), end(job, video, 4))
		},
		status: Partial, err: "end event says 4 frames, but 10 were published",
	}, {
		name: "more frames than announced",
		publish: func(t *testing.T, js jetstream.JetStream, job, video, key string) {
			for seq := range 10 {
				publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
			}
			publish(t, js, bus.EventSubject(job, video), end(job, video, 1_000_000))
		},
		status: Partial, err: "end event says 1000000 frames, but at most 256 were announced",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, js := bustest.Start(t, bus.DefaultStreamOptions())
			const job, video = "job", "v"
			key := bus.NewKey()
			publish(t, js, bus.EventSubject(job, video), start(job, video, key))
			tc.publish(t, js, job, video, key)
			s, _, _ := runOne(t, js, job, video)
			if s.Status != tc.status || !strings.Contains(s.Error, tc.err) {
				t.Errorf("status %s, error %q; want %s with %q", s.Status, s.Error, tc.status, tc.err)
			}
		})
	}
}

// TestFarFutureResultsNotBuffered: results past the range ingest announced
// are refused on arrival, never held, so a flood of them costs no memory.
// Before, each waited in memory for the frames before it (+258 MB per 100
// large results); here the count held at once is the bound.
func TestFarFutureResultsNotBuffered(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	const job, video, n, flood = "job", "v", 300, 2000
	key := bus.NewKey()
	publish(t, js, bus.EventSubject(job, video), start(job, video, key))
	// With valid tokens even: only the range refuses them.
	for i := range flood / 2 {
		publish(t, js, bus.ResultSubject(job, video), answer(job, video, bus.ProgressStep+i, key, "forged"))
		publish(t, js, bus.ResultSubject(job, video), answer(job, video, 1_000_000_000+i, key, "forged"))
	}
	// The honest video: frames past the first step are announced by a
	// progress event before any of them is published.
	perm := rand.New(rand.NewPCG(2, 2)).Perm(bus.ProgressStep)
	for _, seq := range perm {
		publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
	}
	publish(t, js, bus.EventSubject(job, video), bus.Event{Type: bus.VideoProgress, Job: job, Video: video, Frames: bus.ProgressStep})
	for seq := n - 1; seq >= bus.ProgressStep; seq-- {
		publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
	}
	publish(t, js, bus.EventSubject(job, video), end(job, video, n))

	s, buffered, det := runOne(t, js, job, video)
	t.Logf("%d far-future results: %d refused, at most %d results held at once", flood, s.Stats.RefusedResults, buffered)
	if s.Status != Succeeded || s.Stats.Frames != n {
		t.Errorf("status %s with %d frames, want succeeded with %d: %s", s.Status, s.Stats.Frames, n, s.Error)
	}
	if s.Stats.RefusedResults != flood {
		t.Errorf("%d results refused, want the %d far-future ones", s.Stats.RefusedResults, flood)
	}
	if buffered >= bus.ProgressStep {
		t.Errorf("%d results held at once, want fewer than one progress step (%d)", buffered, bus.ProgressStep)
	}
	noForgery(t, det)
}

// TestTakenFrameIDSettles: a message ingest did not publish took frame 5's
// id, so the stream dropped the real frame as a duplicate and the only
// result for 5 (the worker's poison result) carries no token. Once ingest
// has ended the video, frame 5 is a failed frame naming why, and the video
// ends partial; before, it waited for frame 5 forever.
func TestTakenFrameIDSettles(t *testing.T) {
	const job, video, n = "taken", "v", 10
	key := bus.NewKey()
	poison := bus.Result{Job: job, Video: video, Seq: 5, Worker: "w1", Error: "published frame #5: invalid message: not a vidpipe frame"}
	// In both orders: the untokened result among the others, and (as the
	// fault matrix saw it) first, after ingest's end, before the rest.
	for _, order := range []string{"inline", "first"} {
		t.Run(order, func(t *testing.T) {
			_, js := bustest.Start(t, bus.DefaultStreamOptions())
			publish(t, js, bus.EventSubject(job, video), start(job, video, key))
			if order == "first" {
				publish(t, js, bus.EventSubject(job, video), end(job, video, n))
				publish(t, js, bus.ResultSubject(job, video), poison)
			}
			for seq := range n {
				if seq != 5 {
					publish(t, js, bus.ResultSubject(job, video), answer(job, video, seq, key, "person"))
				} else if order == "inline" {
					publish(t, js, bus.ResultSubject(job, video), poison)
				}
			}
			if order == "inline" {
				publish(t, js, bus.EventSubject(job, video), end(job, video, n))
			}
			s, _, det := runOne(t, js, job, video)
			if s.Status != Partial || s.Stats.Frames != n-1 || s.Stats.FailedFrames != 1 || !strings.Contains(s.Error, "published frame #5: its id was taken") {
				t.Errorf("status %s, %d frames, %d failed: %s; want partial, %d, 1, naming frame #5", s.Status, s.Stats.Frames, s.Stats.FailedFrames, s.Error, n-1)
			}
			noForgery(t, det)
		})
	}
}
