package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/storage"
)

// folder is a local output folder as RunJob writes to it.
func folder(t *testing.T, dir string) storage.Bucket {
	t.Helper()
	b, err := storage.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func publish(t *testing.T, js jetstream.JetStream, subject string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	// No msg id: the test wants duplicates to reach the coordinator.
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: b}); err != nil {
		t.Fatal(err)
	}
}

// TestResultsInOrderExactlyOnce feeds results shuffled and duplicated, a
// poison frame and a video that could not be opened, and checks the outputs.
func TestResultsInOrderExactlyOnce(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	const job, n = "job1", 50
	out := t.TempDir()

	publish(t, js, bus.EventSubject(job, "good"), bus.Event{Type: bus.VideoStarted, Job: job, Video: "good", FramesEstimate: n})
	perm := rand.New(rand.NewPCG(1, 1)).Perm(n)
	// Redeliveries of four frames already seen, before the video completes.
	seqs := append(append(append([]int{}, perm[:30]...), perm[0], perm[5], perm[29], perm[0]), perm[30:]...)
	for i, seq := range seqs {
		r := bus.Result{
			Job: job, Video: "good", Seq: seq, Index: 2 * seq, PTS: float64(seq) * 0.08,
			Detections: []bus.Detection{{ClassID: 0, Class: "person", Conf: 0.5, Box: [4]float32{1, 2, 3, 4}}},
			Worker:     []string{"w1", "w2"}[i%2], Batch: 2,
			PublishedUnixNano: int64(seq) * 1e6, DoneUnixNano: int64(seq)*1e6 + 5e8,
			DecodeMS: 1, QueueMS: 2, InferMS: 3, PostMS: 0.5,
		}
		if seq == 10 {
			r.Error, r.Detections = "frame job1/good#10: bad pixels", nil
		}
		publish(t, js, bus.ResultSubject(job, "good"), r)
		if i == n/2 {
			publish(t, js, bus.EventSubject(job, "good"), bus.Event{Type: bus.VideoEnded, Job: job, Video: "good", Frames: n, Decoded: 2 * n})
		}
	}
	publish(t, js, bus.EventSubject(job, "missing"), bus.Event{Type: bus.VideoEnded, Job: job, Video: "missing", Source: "/nope.mp4", Error: "open /nope.mp4: no such file"})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := New(js, Options{Out: folder(t, out)})
	sum, err := c.RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{"good", "good.mp4"}, {"missing", "/nope.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(out, "good", "detections.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	want := 0
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if want == 10 {
			want++ // the poison frame has no line
		}
		if l.Frame != 2*want {
			t.Fatalf("line %d is frame %d, want %d", want, l.Frame, 2*want)
		}
		want++
	}
	if want != n {
		t.Fatalf("detections.jsonl ends at seq %d, want %d", want, n)
	}

	good, missing := sum.Videos[0], sum.Videos[1]
	if good.Status != Partial || good.Stats.Frames != n-1 || good.Stats.FailedFrames != 1 || good.Stats.DuplicatesDropped != 4 {
		t.Errorf("good: %+v", good)
	}
	if good.Stats.Workers["w1"]+good.Stats.Workers["w2"] != n-1 || good.Stats.StagesMS.Infer.P50 != 3 {
		t.Errorf("good stats: %+v", good.Stats)
	}
	if missing.Status != Failed || missing.Error == "" {
		t.Errorf("missing: %+v", missing)
	}
	if n := strings.Count(missing.Error, "/nope.mp4"); n != 1 {
		t.Errorf("missing: error %q names the input %d times, want once", missing.Error, n)
	}
	if want := []string{DetectionsFile, ParquetFile, StatsFile}; !slices.Equal(good.Outputs, want) {
		t.Errorf("good: outputs %v, want %v", good.Outputs, want)
	}
	if sum.OK() {
		t.Error("summary OK with a failed video")
	}
	var onDisk Summary
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil || len(onDisk.Videos) != 2 {
		t.Fatalf("summary.json: %v %+v", err, onDisk)
	}
	if _, err := os.Stat(filepath.Join(out, "good", "stats.json")); err != nil {
		t.Error(err)
	}

	// A second coordinator replaying the same job rebuilds identical outputs.
	before, _ := os.ReadFile(filepath.Join(out, "good", "detections.jsonl"))
	if _, err := New(js, Options{Out: folder(t, out)}).RunJob(ctx, Job{ID: job, Videos: []VideoSpec{{"good", "good.mp4"}, {"missing", "/nope.mp4"}}}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(out, "good", "detections.jsonl"))
	if string(before) != string(after) {
		t.Error("replaying the job changed detections.jsonl")
	}
}

func TestSummarise(t *testing.T) {
	v := make([]float32, 100)
	for i := range v {
		v[i] = float32(100 - i)
	}
	p := summarise(v)
	if p.P50 != 50 || p.P95 != 95 || p.P99 != 99 || p.Mean != 50.5 {
		t.Errorf("summarise = %+v", p)
	}
	if (summarise(nil) != Percentiles{}) {
		t.Error("empty samples")
	}
}

func TestRunJobRejectsBadNames(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	c := New(js, Options{Out: folder(t, t.TempDir())})
	for _, job := range []Job{
		{ID: "a.b"},
		{ID: "ok", Videos: []VideoSpec{{Name: "../x"}}},
		{ID: "ok", Videos: []VideoSpec{{Name: "v"}, {Name: "v"}}},
	} {
		if _, err := c.RunJob(context.Background(), job); err == nil {
			t.Errorf("RunJob(%+v) accepted", job)
		}
	}
}
