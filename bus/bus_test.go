package bus

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "vtest_avi", "job-2026-11-26", "A_9"} {
		if err := ValidName("video", ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "a.b", "a/b", "a*", ">", "a b", "ü", string(make([]byte, MaxNameLen+1))} {
		if err := ValidName("video", bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, want ErrBadName", bad, err)
		}
	}
	for in, want := range map[string]string{"vtest.avi": "vtest_avi", "../x y": "___x_y", "": "video", "Ünï": "_n_"} {
		if got := NameFrom(in); got != want || ValidName("video", got) != nil {
			t.Errorf("NameFrom(%q) = %q, want %q", in, got, want)
		}
	}
}

func sampleFrame() *Frame {
	return &Frame{
		Job: "job1", Video: "vtest_avi", Seq: 41, Index: 82, PTS: 3.28, Estimated: true,
		Width: 768, Height: 576, Size: 4, Gain: 4.0 / 768, PadX: 0, PadY: 0.5,
		PublishedUnixNano: 1764200000123456789, DecodeMS: 2.5, Codec: Raw,
		Pixels: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	f := sampleFrame()
	var got Frame
	if err := DecodeFrame(AppendFrame(nil, f), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*f, got) {
		t.Fatalf("got %+v\nwant %+v", got, *f)
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendFrame(buf[:0], f) }); n != 0 {
		t.Errorf("AppendFrame allocates %v times into a buffer with room", n)
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	good := AppendFrame(nil, sampleFrame())
	mutate := func(fn func(*Frame)) []byte {
		f := sampleFrame()
		fn(f)
		return AppendFrame(nil, f)
	}
	tests := map[string][]byte{
		"empty":         nil,
		"not a frame":   []byte("hello world, this is text"),
		"truncated":     good[:len(good)-5],
		"extra bytes":   append(append([]byte{}, good...), 0),
		"bad job":       mutate(func(f *Frame) { f.Job = "a.b" }),
		"bad video":     mutate(func(f *Frame) { f.Video = "" }),
		"short pixels":  mutate(func(f *Frame) { f.Pixels = f.Pixels[:10] }),
		"zero gain":     mutate(func(f *Frame) { f.Gain = 0 }),
		"unknown codec": mutate(func(f *Frame) { f.Codec = 9 }),
		"zero size":     mutate(func(f *Frame) { f.Size = 0 }),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			var f Frame
			if err := DecodeFrame(b, &f); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("err = %v, want ErrBadMessage", err)
			}
		})
	}
}

func TestResultAndEventValidation(t *testing.T) {
	var r Result
	if err := DecodeResult([]byte(`{"job":"j","video":"v","seq":1,"frame":2,"detections":[{"class_id":0,"class":"person","conf":0.5,"box":[1,2,3,4]}]}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Detections[0].Box != [4]float32{1, 2, 3, 4} {
		t.Errorf("box = %v", r.Detections[0].Box)
	}
	for _, bad := range []string{`{`, `{"job":"../x","video":"v"}`, `{"job":"j","video":"v","seq":-1}`} {
		if err := DecodeResult([]byte(bad), &Result{}); !errors.Is(err, ErrBadMessage) {
			t.Errorf("DecodeResult(%s) = %v", bad, err)
		}
	}
	for _, bad := range []string{`[]`, `{"type":"start","job":"j","video":"a b"}`, `{"type":"boom","job":"j","video":"v"}`} {
		if err := DecodeEvent([]byte(bad), &Event{}); !errors.Is(err, ErrBadMessage) {
			t.Errorf("DecodeEvent(%s) = %v", bad, err)
		}
	}
}

// FuzzDecodeFrame: a frame header that decodes re-encodes to one that
// decodes, and a worker's result for it (its pts and timing) can always be
// encoded, so an accepted frame never fails later for what its header held.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(AppendFrame(nil, sampleFrame()))
	f.Add([]byte("VPF1"))
	inf := sampleFrame()
	inf.PTS = math.Inf(1)
	f.Add(AppendFrame(nil, inf))
	jpeg := sampleFrame()
	jpeg.Codec, jpeg.Pixels = JPEG, []byte{0xff, 0xd8, 0xff, 0xd9}
	f.Add(AppendFrame(nil, jpeg))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if err := DecodeFrame(b, &fr); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		var again Frame
		if err := DecodeFrame(AppendFrame(nil, &fr), &again); err != nil {
			t.Fatalf("re-decode of a valid frame: %v", err)
		}
		r := Result{Job: fr.Job, Video: fr.Video, Seq: fr.Seq, Index: fr.Index, PTS: fr.PTS, DecodeMS: fr.DecodeMS, PublishedUnixNano: fr.PublishedUnixNano}
		if _, err := EncodeResult(&r); err != nil {
			t.Fatalf("result of a valid frame: %v", err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"job":"j","video":"v","seq":1,"frame":2,"detections":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		_ = DecodeResult(b, &r)
		var e Event
		_ = DecodeEvent(b, &e)
	})
}

// TestStreamsBackpressure runs a real embedded JetStream: Setup is
// idempotent, a full frames stream refuses publishes (IsStreamFull), and a
// worker's ack frees room again.
func TestStreamsBackpressure(t *testing.T) {
	js := startJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := DefaultStreamOptions()
	o.MaxFramesWaiting = 3
	for i := 0; i < 2; i++ {
		if err := Setup(ctx, js, o); err != nil {
			t.Fatalf("Setup #%d: %v", i+1, err)
		}
	}
	publish := func(seq int) error {
		f := sampleFrame()
		f.Seq = seq
		msg := &nats.Msg{Subject: FrameSubject(f.Job, f.Video), Data: AppendFrame(nil, f)}
		_, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(MsgID(f.Job, f.Video, seq)))
		return err
	}
	for seq := 0; seq < 3; seq++ {
		if err := publish(seq); err != nil {
			t.Fatal(err)
		}
	}
	err := publish(3)
	if !IsStreamFull(err) {
		t.Fatalf("4th publish into a 3-frame stream: err = %v, want stream full", err)
	}
	// A republished frame (same msg id) is a duplicate, not a new frame.
	if err := publish(1); err != nil && !IsStreamFull(err) {
		t.Fatalf("republish: %v", err)
	}
	cons, err := js.Consumer(ctx, FramesStream, WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		var f Frame
		if err := DecodeFrame(m.Data(), &f); err != nil || f.Seq != 0 {
			t.Fatalf("first frame: seq %d, err %v", f.Seq, err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish(3); err != nil {
		t.Fatalf("publish after an ack freed room: %v", err)
	}
}

func TestTaskValidation(t *testing.T) {
	good := Task{Job: "j", Video: "v", Source: "s3://b/v.mp4", Every: 2, Size: 640, Conf: 0.3, IoU: 0.5, MaxDet: 100}
	b, err := EncodeTask(&good)
	if err != nil {
		t.Fatal(err)
	}
	var got Task
	if err := DecodeTask(b, &got); err != nil || got != good {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, mutate := range map[string]func(*Task){
		"bad job":        func(t *Task) { t.Job = "a.b" },
		"no source":      func(t *Task) { t.Source = "" },
		"size":           func(t *Task) { t.Size = 630 },
		"every negative": func(t *Task) { t.Every = -1 },
		"every and fps":  func(t *Task) { t.FPS = 5 },
		"conf":           func(t *Task) { t.Conf = 1.5 },
		"iou":            func(t *Task) { t.IoU = -0.1 },
		"max det":        func(t *Task) { t.MaxDet = MaxDet + 1 },
	} {
		t.Run(name, func(t *testing.T) {
			task := good
			mutate(&task)
			b, _ := EncodeTask(&task)
			if err := DecodeTask(b, &Task{}); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("err = %v, want ErrBadMessage", err)
			}
		})
	}
	if err := DecodeTask([]byte(`{"job":`), &Task{}); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("truncated JSON: %v", err)
	}
}

// TestNonFiniteRefused: a frame with a NaN or infinite float is refused at
// decode, naming the field, and a result with one cannot be encoded (JSON
// has no such numbers) but fails as ErrBadMessage, not as a retryable
// error.
func TestNonFiniteRefused(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, tc := range []struct {
		field string
		set   func(*Frame)
	}{
		{"pts", func(f *Frame) { f.PTS = inf }},
		{"pts", func(f *Frame) { f.PTS = -inf }},
		{"pts", func(f *Frame) { f.PTS = nan }},
		{"gain", func(f *Frame) { f.Gain = inf }},
		{"pad_x", func(f *Frame) { f.PadX = float32(inf) }},
		{"pad_y", func(f *Frame) { f.PadY = float32(nan) }},
		{"decode_ms", func(f *Frame) { f.DecodeMS = float32(-inf) }},
	} {
		f := sampleFrame()
		tc.set(f)
		err := DecodeFrame(AppendFrame(nil, f), &Frame{})
		if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.field+" is ") || !strings.Contains(err.Error(), "job1/vtest_avi#41") {
			t.Errorf("%s: %v, want ErrBadMessage naming the frame and the field", tc.field, err)
		}
	}
	for _, tc := range []struct {
		field string
		r     Result
	}{
		{"pts", Result{PTS: inf}},
		{"infer_ms", Result{InferMS: float32(nan)}},
		{"detection 0", Result{Detections: []Detection{{Conf: float32(nan)}}}},
		{"detection 1", Result{Detections: []Detection{{}, {Box: [4]float32{0, 0, float32(inf), 1}}}}},
	} {
		tc.r.Job, tc.r.Video = "j", "v"
		if _, err := EncodeResult(&tc.r); !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want ErrBadMessage naming it", tc.field, err)
		}
	}
	if _, err := EncodeResult(&Result{Job: "j", Video: "v", PTS: -0.04}); err != nil {
		t.Errorf("finite result: %v", err)
	}
	// Job specs and tasks carry their thresholds through CheckSettings.
	for _, c := range []struct {
		name           string
		fps, conf, iou float64
	}{{"fps", inf, 0, 0}, {"fps", nan, 0, 0}, {"conf", 0, inf, 0}, {"conf", 0, nan, 0}, {"conf", 0, -inf, 0}, {"iou", 0, 0, inf}, {"iou", 0, 0, nan}} {
		if err := CheckSettings(0, c.fps, c.conf, c.iou, 0); err == nil || !strings.HasPrefix(err.Error(), c.name+":") {
			t.Errorf("settings fps %v conf %v iou %v: %v, want an error naming %s", c.fps, c.conf, c.iou, err, c.name)
		}
	}
}

// TestFramesInMemory: the frames stream alone moves to memory storage; the
// results stream, which a job is rebuilt from, stays on file storage.
func TestFramesInMemory(t *testing.T) {
	js := startJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := DefaultStreamOptions()
	o.FramesInMemory = true
	if err := Setup(ctx, js, o); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]jetstream.StorageType{FramesStream: jetstream.MemoryStorage, ResultsStream: jetstream.FileStorage, VideosStream: jetstream.FileStorage} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Storage; got != want {
			t.Errorf("%s storage %v, want %v", name, got, want)
		}
	}
}

// startJS runs an embedded server with no streams for the test's lifetime;
// internal/bustest, which sets them up, imports this package.
func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := ConnectEmbedded(srv, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
