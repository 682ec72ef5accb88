package workers

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/fuse"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/u8input"
	"github.com/vidpipe/vidpipe/model/yolo"
)

const size = 64

func smallModel(t testing.TB) []byte {
	t.Helper()
	m, err := yolo.Build(yolo.Config{Arch: "repyolov5s", Rep: "all", Width: 0.125, Depth: 0.33, ImgSize: size, Classes: 80, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fuse.Model(m); err != nil {
		t.Fatal(err)
	}
	return onnx.Encode(m)
}

// layoutOf is the layout of model, as decided when a model loads.
func layoutOf(t testing.TB, model []byte) *layout.Layout {
	t.Helper()
	l, err := layout.Check(context.Background(), model, "small.onnx", infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openSession(t testing.TB, model []byte, batch int) *infer.Session {
	t.Helper()
	s, err := infer.Open(context.Background(), model, "small.onnx", infer.Options{Threads: 1, MaxBatch: batch})
	if err != nil {
		t.Fatalf("%v (run scripts/setup.sh)", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func frame(seq int, rng *rand.Rand) *bus.Frame {
	px := make([]byte, size*size*3)
	for i := range px {
		px[i] = byte(rng.IntN(256))
	}
	return &bus.Frame{
		Job: "j", Video: "v", Seq: seq, Index: 3 * seq, PTS: float64(seq) / 25,
		Width: 128, Height: 96, Size: size, Gain: 0.5, PadX: 0, PadY: 8,
		PublishedUnixNano: time.Now().UnixNano(), Codec: bus.Raw, Pixels: px,
	}
}

// TestWorkerAnalysesEveryFrameOnce publishes good frames, a frame whose
// payload is broken and a frame of the wrong size through real JetStream,
// and checks each gets exactly one result, equal to running the model
// directly, and that every frame is acked. The worker runs the model as
// is (float input from detect.Planar) and converted to take the frames'
// bytes (u8input): the same results either way.
func TestWorkerAnalysesEveryFrameOnce(t *testing.T) {
	for _, form := range []string{"float", "u8"} {
		t.Run(form, func(t *testing.T) { testEveryFrameOnce(t, form == "u8") })
	}
}

func testEveryFrameOnce(t *testing.T, u8 bool) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	model := smallModel(t)
	rng := rand.New(rand.NewPCG(5, 5))
	nms := detect.DefaultNMSOptions()
	nms.Conf = 0.01

	const good = 7
	key := bus.NewKey()
	frames := make([]*bus.Frame, good)
	msgs := map[int][]byte{}
	for seq := range good {
		frames[seq] = frame(seq, rng)
		msgs[seq] = bus.AppendFrame(nil, frames[seq])
	}
	broken := bus.AppendFrame(nil, frame(good, rng))
	msgs[good] = broken[:len(broken)-100]
	wrong := frame(good+1, rng)
	wrong.Size, wrong.Pixels = 32, wrong.Pixels[:32*32*3]
	msgs[good+1] = bus.AppendFrame(nil, wrong)
	// Poison frames inside batches of 4, so the good ones after them move
	// up in the batch's input.
	for _, seq := range []int{0, 1, good, 2, 3, good + 1, 4, 5, 6} {
		msg := &nats.Msg{Subject: bus.FrameSubject("j", "v"), Data: msgs[seq], Header: nats.Header{}}
		msg.Header.Set(bus.HeaderFrameToken, bus.FrameToken(key, "j", "v", seq))
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.MsgID("j", "v", seq))); err != nil {
			t.Fatal(err)
		}
	}

	wm := model
	if u8 {
		m, err := onnx.Decode(model)
		if err != nil {
			t.Fatal(err)
		}
		if err := u8input.Convert(m); err != nil {
			t.Fatal(err)
		}
		wm = onnx.Encode(m)
	}
	w, err := New(ctx, js, openSession(t, wm, 4), Options{Name: "w1", Batch: 4, NMS: nms, Names: []string{"person"}, Layout: layoutOf(t, wm)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(wctx) }()

	results := map[int]bus.Result{}
	cons, err := js.OrderedConsumer(ctx, bus.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.ResultSubject("j", "v")}})
	if err != nil {
		t.Fatal(err)
	}
	for len(results) < good+2 {
		msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
		if err != nil {
			t.Fatalf("waiting for results (%d so far): %v", len(results), err)
		}
		var r bus.Result
		if err := bus.DecodeResult(msg.Data(), &r); err != nil {
			t.Fatal(err)
		}
		if _, dup := results[r.Seq]; dup {
			t.Fatalf("second result for seq %d", r.Seq)
		}
		// Poison frames too: the coordinator takes no result without it.
		if r.Token != bus.FrameToken(key, "j", "v", r.Seq) {
			t.Fatalf("result for seq %d carries token %q, not its frame's", r.Seq, r.Token)
		}
		results[r.Seq] = r
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The oracle: the same model run directly on each frame.
	ref := openSession(t, model, 1)
	post, err := detect.NewPostprocessor(nms)
	if err != nil {
		t.Fatal(err)
	}
	for seq, f := range frames {
		in, _ := ref.Input(1)
		detect.Planar(in, f.Pixels)
		outs, err := ref.Run(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		o := outs[0]
		want, err := post.NMS(nil, o.Data, int(o.Shape[1]), int(o.Shape[2]))
		if err != nil {
			t.Fatal(err)
		}
		detect.Letterbox{Gain: f.Gain, PadX: float64(f.PadX), PadY: float64(f.PadY)}.ScaleBack(want, f.Width, f.Height)
		got := results[seq]
		if got.Error != "" || got.Index != f.Index || got.Worker != "w1" || len(got.Detections) != len(want) {
			t.Fatalf("seq %d: got %d detections (err %q), want %d", seq, len(got.Detections), got.Error, len(want))
		}
		for i, d := range want {
			g := got.Detections[i]
			if g.ClassID != d.ClassID || diff(g.Conf, d.Conf) > 1e-5 || diff(g.Box[0], d.Box.X1) > 1e-3 || diff(g.Box[3], d.Box.Y2) > 1e-3 {
				t.Fatalf("seq %d detection %d: got %+v want %+v", seq, i, g, d)
			}
			if g.Box[2] > float32(f.Width) || g.Box[3] > float32(f.Height) || g.Box[0] < 0 {
				t.Fatalf("box %v outside the %dx%d picture", g.Box, f.Width, f.Height)
			}
		}
	}
	if len(results[0].Detections) == 0 {
		t.Error("no detections at conf 0.01: the oracle comparison proves little")
	}
	for _, seq := range []int{good, good + 1} {
		if results[seq].Error == "" {
			t.Errorf("seq %d: no error result for a poison frame", seq)
		}
	}
	info, err := js.Stream(ctx, bus.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 0 {
		t.Errorf("%d frames left unacked in the work queue", si.State.Msgs)
	}
}

func diff(a, b float32) float32 {
	if a > b {
		return a - b
	}
	return b - a
}
