package workers

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/model/detect"
)

func TestFrameThresholds(t *testing.T) {
	base := thresholds{conf: 0.25, iou: 0.45, maxDet: 300}
	for _, tc := range []struct {
		name string
		hdr  nats.Header
		want thresholds
		err  string // a substring of the error; empty means none
	}{
		{name: "no headers", want: base},
		{name: "other headers", hdr: nats.Header{"Nats-Msg-Id": {"j.v.1"}}, want: base},
		{name: "conf", hdr: nats.Header{bus.HeaderConf: {"0.5"}}, want: thresholds{0.5, 0.45, 300}},
		{name: "all", hdr: nats.Header{bus.HeaderConf: {"0"}, bus.HeaderIoU: {"1"}, bus.HeaderMaxDet: {"7"}}, want: thresholds{0, 1, 7}},
		{name: "conf not a number", hdr: nats.Header{bus.HeaderConf: {"high"}}, err: `Vidpipe-Conf "high"`},
		{name: "conf empty", hdr: nats.Header{bus.HeaderConf: {""}}, err: `Vidpipe-Conf ""`},
		{name: "conf NaN", hdr: nats.Header{bus.HeaderConf: {"NaN"}}, err: `Vidpipe-Conf "NaN"`},
		{name: "conf +Inf", hdr: nats.Header{bus.HeaderConf: {"+Inf"}}, err: `Vidpipe-Conf "+Inf"`},
		{name: "iou -Inf", hdr: nats.Header{bus.HeaderIoU: {"-Inf"}}, err: `Vidpipe-Iou "-Inf"`},
		{name: "iou NaN", hdr: nats.Header{bus.HeaderIoU: {"nan"}}, err: `Vidpipe-Iou "nan"`},
		{name: "conf above 1", hdr: nats.Header{bus.HeaderConf: {"1.5"}}, err: `Vidpipe-Conf "1.5"`},
		{name: "iou negative", hdr: nats.Header{bus.HeaderIoU: {"-0.1"}}, err: `Vidpipe-Iou "-0.1"`},
		{name: "iou twice", hdr: nats.Header{bus.HeaderIoU: {"0.5", "0.6"}}, err: `Vidpipe-Iou ["0.5" "0.6"]: given 2 times`},
		{name: "max det zero", hdr: nats.Header{bus.HeaderMaxDet: {"0"}}, err: `Vidpipe-Max-Det "0"`},
		{name: "max det fraction", hdr: nats.Header{bus.HeaderMaxDet: {"2.5"}}, err: `Vidpipe-Max-Det "2.5"`},
		{name: "max det huge", hdr: nats.Header{bus.HeaderMaxDet: {"99999999999"}}, err: `Vidpipe-Max-Det "99999999999"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := frameThresholds(tc.hdr, base)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %s", err, tc.err)
			case tc.err == "" && got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPerFrameThresholds sends the same picture several times in one batch,
// each copy with other threshold headers (as ingest sets them from each
// job's spec): each result must equal NMS alone run with that copy's
// thresholds, and a copy with a header that does not parse must come back
// as an error naming the header and the value.
func TestPerFrameThresholds(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	model := smallModel(t)
	pic := frame(0, rand.New(rand.NewPCG(7, 7)))

	// The oracle: the model run alone on the picture, then NMS alone.
	ref := openSession(t, model, 1)
	in, _ := ref.Input(1)
	detect.Planar(in, pic.Pixels)
	outs, err := ref.Run(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	nmsAlone := func(o detect.NMSOptions) []detect.Detection {
		t.Helper()
		out := outs[0]
		d, err := detect.NMS(nil, out.Data, int(out.Shape[1]), int(out.Shape[2]), o)
		if err != nil {
			t.Fatal(err)
		}
		detect.Letterbox{Gain: pic.Gain, PadX: float64(pic.PadX), PadY: float64(pic.PadY)}.ScaleBack(d, pic.Width, pic.Height)
		return d
	}
	worker := detect.DefaultNMSOptions()
	worker.Conf = 0.005
	low := worker
	low.Conf = 0.001
	all := nmsAlone(low)
	if len(all) < 4 {
		t.Fatalf("%d detections at conf %v: too few to tell thresholds apart", len(all), low.Conf)
	}
	// A conf between two scores far enough apart that batch and single runs
	// cannot disagree on either side of it.
	scores := make([]float32, len(all))
	for i, d := range all {
		scores[i] = d.Conf
	}
	slices.Sort(scores)
	mid := worker
	for k := len(scores) / 2; k < len(scores); k++ {
		if scores[k]-scores[k-1] > 1e-3 {
			mid.Conf = (scores[k] + scores[k-1]) / 2
			break
		}
	}
	if mid.Conf == worker.Conf {
		t.Fatalf("no gap between detection scores %v", scores)
	}
	tight := low
	tight.IoU, tight.MaxDet = 0.1, 2

	f32 := func(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }
	cases := []struct {
		hdr  map[string]string
		want detect.NMSOptions
		err  string
	}{
		{hdr: map[string]string{bus.HeaderConf: f32(low.Conf)}, want: low},
		{hdr: map[string]string{bus.HeaderConf: f32(mid.Conf)}, want: mid},
		{hdr: nil, want: worker},
		{hdr: map[string]string{bus.HeaderConf: f32(low.Conf), bus.HeaderIoU: "0.1", bus.HeaderMaxDet: "2"}, want: tight},
		{hdr: map[string]string{bus.HeaderConf: "abc"}, err: `Vidpipe-Conf "abc"`},
		{hdr: map[string]string{bus.HeaderMaxDet: "-3"}, err: `Vidpipe-Max-Det "-3"`},
	}
	for seq, c := range cases {
		f := *pic
		f.Seq, f.Index = seq, seq
		publishFrame(t, ctx, js, &f, c.hdr)
	}
	// MaxWait lets the worker gather every frame into one batch.
	w, err := New(ctx, js, openSession(t, model, len(cases)), Options{Name: "w1", Batch: len(cases), MaxWait: time.Second, NMS: worker, Layout: layoutOf(t, model)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runWorker(t, ctx, w)
	results := collectResults(t, ctx, js, len(cases))
	stop()

	const good = 4
	for seq, c := range cases {
		r := results[seq]
		if c.err != "" {
			if !strings.Contains(r.Error, c.err) {
				t.Errorf("seq %d: error %q, want one naming %s", seq, r.Error, c.err)
			}
			continue
		}
		if r.Error != "" || r.Batch != good {
			t.Fatalf("seq %d: error %q, batch %d: want a result from one batch of %d", seq, r.Error, r.Batch, good)
		}
		want := nmsAlone(c.want)
		if len(r.Detections) != len(want) {
			t.Errorf("seq %d (%v): %d detections, want %d as NMS alone gives", seq, c.hdr, len(r.Detections), len(want))
			continue
		}
		for i, d := range want {
			g := r.Detections[i]
			if g.ClassID != d.ClassID || diff(g.Conf, d.Conf) > 1e-5 || diff(g.Box[0], d.Box.X1) > 1e-3 || diff(g.Box[3], d.Box.Y2) > 1e-3 {
				t.Errorf("seq %d detection %d: got %+v want %+v", seq, i, g, d)
			}
		}
	}
	if n0, n1 := len(results[0].Detections), len(results[1].Detections); n0 == n1 {
		t.Errorf("conf %v and %v gave %d detections each: the headers changed nothing", low.Conf, mid.Conf, n0)
	}
	t.Logf("detections: conf %v: %d, conf %v: %d, worker's conf %v: %d, max det 2: %d",
		low.Conf, len(results[0].Detections), mid.Conf, len(results[1].Detections), worker.Conf, len(results[2].Detections), len(results[3].Detections))
	if n := len(results[3].Detections); n != 2 {
		t.Errorf("max det 2 gave %d detections", n)
	}
}
