package ingest

import (
	"context"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/media/decode"
)

// TestFramesCarryTokens ingests a 600-frame clip: the start event carries
// a key, every frame carries its token under that key (and no other
// frame's), and a progress event announces each ProgressStep before the
// frames it covers, so the coordinator can bind results to frames.
func TestFramesCarryTokens(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.MaxFramesWaiting = 1000 // nobody consumes: keep every frame
	_, js := bustest.Start(t, o)
	ctx := context.Background()
	const job, video, n = "job1", "clip", 600
	in := New(js, Options{Decode: decode.Options{Size: 64}})
	if err := in.Ingest(ctx, job, Video{Name: video, Source: testClip(t, "clip.mp4", 60, 10)}); err != nil {
		t.Fatal(err)
	}

	results, err := js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	var events []bus.Event
	for seq := uint64(1); ; seq++ {
		m, err := results.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		var e bus.Event
		if err := bus.DecodeEvent(m.Data, &e); err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		events = append(events, e)
	}
	var types []bus.EventType
	var progress []int
	for _, e := range events {
		types = append(types, e.Type)
		if e.Type == bus.VideoProgress {
			progress = append(progress, e.Frames)
		}
	}
	if len(events) != 4 || events[0].Type != bus.VideoStarted || events[3].Type != bus.VideoEnded || events[3].Frames != n {
		t.Fatalf("events %v (end %+v), want start, progress 256 and 512, end with %d frames", types, events[len(events)-1], n)
	}
	if len(progress) != 2 || progress[0] != bus.ProgressStep || progress[1] != 2*bus.ProgressStep {
		t.Fatalf("progress events at %v, want [256 512]", progress)
	}
	key := events[0].Key
	if key == "" {
		t.Fatal("start event has no key")
	}

	frames, err := js.Stream(ctx, bus.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := frames.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("frame message %d: %v", seq, err)
		}
		var f bus.Frame
		if err := bus.DecodeFrame(m.Data, &f); err != nil {
			t.Fatal(err)
		}
		tok := m.Header.Get(bus.HeaderFrameToken)
		if !bus.ValidToken(tok, []string{key}, job, video, f.Seq) {
			t.Fatalf("frame %d: token %q is not its token under the start event's key", f.Seq, tok)
		}
		if bus.ValidToken(tok, []string{key}, job, video, f.Seq+1) {
			t.Fatalf("frame %d: its token is also frame %d's", f.Seq, f.Seq+1)
		}
	}
}
