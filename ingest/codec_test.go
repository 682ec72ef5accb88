package ingest

import (
	"context"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/media/jpeg"
)

// TestJPEGFrames ingests a clip as raw frames and again as JPEG frames:
// each JPEG frame decodes (media/jpeg, as a worker does) to its raw
// twin's picture within quality 90's error (2.3 levels on average on
// this test pattern, sharp edges upscaled). A quality out of range fails
// the video with an end event that says why, and publishes no frame.
func TestJPEGFrames(t *testing.T) {
	o := bus.DefaultStreamOptions()
	o.MaxFramesWaiting = 1000 // nobody consumes: keep every frame
	_, js := bustest.Start(t, o)
	ctx := context.Background()
	const size, n = 320, 20
	src := testClip(t, "clip.mp4", 2, 10)
	for _, c := range []struct {
		job   string
		codec bus.Codec
	}{{"raw", bus.Raw}, {"jpeg", bus.JPEG}} {
		in := New(js, Options{Decode: decode.Options{Size: size}, Codec: c.codec})
		if err := in.Ingest(ctx, c.job, Video{Name: "clip", Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	in := New(js, Options{Decode: decode.Options{Size: size}, Codec: bus.JPEG, JPEGQuality: 101})
	if err := in.Ingest(ctx, "badq", Video{Name: "clip", Source: src}); err != nil {
		t.Fatal(err)
	}

	frames, err := js.Stream(ctx, bus.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	raw := map[int][]byte{}
	var dec jpeg.Decoder
	defer dec.Close()
	var sum, count float64
	for seq := uint64(1); ; seq++ {
		m, err := frames.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		var f bus.Frame
		if err := bus.DecodeFrame(m.Data, &f); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Job == "raw":
			raw[f.Seq] = append([]byte(nil), f.Pixels...)
		case f.Job == "jpeg" && f.Codec == bus.JPEG:
			rgb, err := dec.Decode(nil, f.Pixels, size, size)
			if err != nil {
				t.Fatalf("frame %d: %v", f.Seq, err)
			}
			want := raw[f.Seq]
			if want == nil {
				t.Fatalf("frame %d: no raw twin", f.Seq)
			}
			var d float64
			for i := range rgb {
				v := int(rgb[i]) - int(want[i])
				d += float64(max(v, -v))
			}
			sum += d / float64(len(rgb))
			count++
		default:
			t.Fatalf("frame %s#%d with codec %s", f.Job, f.Seq, f.Codec)
		}
	}
	if count != n || len(raw) != n {
		t.Fatalf("%v JPEG and %d raw frames, want %d of each", count, len(raw), n)
	}
	t.Logf("JPEG frames: mean error %.2f levels", sum/count)
	if mean := sum / count; mean > 3 {
		t.Errorf("JPEG frames are %.2f levels from the raw ones on average, want at most 3", mean)
	}

	results, err := js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	var badq []bus.Event
	for seq := uint64(1); ; seq++ {
		m, err := results.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		var e bus.Event
		if err := bus.DecodeEvent(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Job == "badq" {
			badq = append(badq, e)
		}
	}
	if len(badq) != 1 || badq[0].Type != bus.VideoEnded || !strings.Contains(badq[0].Error, "quality 101") {
		t.Errorf("quality 101: events %+v, want one end event naming the quality", badq)
	}
}
