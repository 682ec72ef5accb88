package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	stdjpeg "image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/peakrss"
	"github.com/vidpipe/vidpipe/media/jpeg"
	"github.com/vidpipe/vidpipe/model/detect"
)

// encodeJPEG JPEG-encodes a random side x side picture as ingest does.
func encodeJPEG(t testing.TB, side int, rng *rand.Rand) []byte {
	px := make([]byte, 3*side*side)
	for i := range px {
		px[i] = byte(rng.IntN(256))
	}
	enc, err := jpeg.NewEncoder(90)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	b, err := enc.Encode(nil, px, side, side)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jpegBomb is a baseline grayscale JPEG whose SOF0 header claims
// 65500x65500, followed by data bytes of valid entropy-coded blocks (DC
// difference 0, end of block: 6 bits each with the standard tables): a
// decoder that trusts the header allocates a 4 GB picture and decodes and
// writes block after block until the data runs out.
func jpegBomb(t testing.TB, data int) []byte {
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	sof := bytes.Index(b, []byte{0xff, 0xc0})
	sos := bytes.Index(b, []byte{0xff, 0xda})
	if sof < 0 || sos < 0 {
		t.Fatal("no SOF0 or SOS marker in the encoded JPEG")
	}
	// SOF0: marker, length (2), precision (1), then height and width, big-endian.
	for _, off := range []int{sof + 5, sof + 7} {
		b[off], b[off+1] = 0xff, 0xdc // 65500
	}
	head := b[:sos+2+int(b[sos+2])<<8+int(b[sos+3])]
	// Four blocks "00 1010" in three bytes.
	body := bytes.Repeat([]byte{0x28, 0xa2, 0x8a}, data/3)
	return append(append(append([]byte{}, head...), body...), 0xff, 0xd9)
}

// bombData is the entropy data of the bomb the child decodes: 5.6M blocks,
// whose pixels alone (683 rows of blocks, 358 MB) exceed the RSS bound.
const bombData = 4 << 20

type jpegReport struct {
	Err     string `json:"err"`
	PeakRSS int64  `json:"peak_rss"`
}

// TestJPEGBombHelper is the child process of TestJPEGBombBounded.
func TestJPEGBombHelper(t *testing.T) {
	if os.Getenv("VIDPIPE_JPEG_BOMB") == "" {
		t.Skip("child of TestJPEGBombBounded")
	}
	w := &Worker{size: 640}
	var dec jpeg.Decoder
	defer dec.Close()
	var scratch []byte
	_, err := w.decodeJPEG(&dec, jpegBomb(t, bombData), &scratch)
	rss, rerr := peakrss.Self()
	if rerr != nil {
		t.Fatal(rerr)
	}
	rep := jpegReport{PeakRSS: rss}
	if err != nil {
		rep.Err = err.Error()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("REPORT %s\n", b)
}

// TestJPEGBombBounded decodes the JPEG bomb as a worker's frame of 640x640
// in a child process: it must fail naming the declared size, with the
// child's peak RSS under 256 MB.
func TestJPEGBombBounded(t *testing.T) {
	const maxRSS = 256 << 20
	cmd := exec.Command(os.Args[0], "-test.run=^TestJPEGBombHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VIDPIPE_JPEG_BOMB=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("decode process died (%v):\n%s", err, out[max(0, len(out)-2000):])
	}
	var rep jpegReport
	for line := range strings.SplitSeq(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "REPORT "); ok {
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep.PeakRSS == 0 {
		t.Fatalf("decode process reported nothing:\n%s", out)
	}
	t.Logf("jpeg bomb (%d bytes, SOF 65500x65500): peak RSS %.1f MB, error %q", len(jpegBomb(t, bombData)), float64(rep.PeakRSS)/(1<<20), rep.Err)
	if !strings.Contains(rep.Err, "declares 65500x65500") {
		t.Errorf("error %q does not name the declared size", rep.Err)
	}
	if rep.PeakRSS > maxRSS {
		t.Errorf("peak RSS %d MB, bound %d MB", rep.PeakRSS>>20, maxRSS>>20)
	}
}

// TestWorkerPoisonsHostileFrames runs a worker on real JetStream with a
// JPEG bomb, a frame whose pts is +Inf, and good raw and JPEG frames: the
// hostile ones come back at once as error results that say why, with no
// redelivery, and the good ones are analysed.
func TestWorkerPoisonsHostileFrames(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	model := smallModel(t)
	rng := rand.New(rand.NewPCG(7, 7))

	goodRaw := frame(0, rng)
	bomb := frame(1, rng)
	bomb.Codec, bomb.Pixels = bus.JPEG, jpegBomb(t, 64<<10)
	infPTS := frame(2, rng)
	infPTS.PTS = math.Inf(1)
	goodJPEG := frame(3, rng)
	goodJPEG.Codec, goodJPEG.Pixels = bus.JPEG, encodeJPEG(t, size, rng)
	for _, f := range []*bus.Frame{goodRaw, bomb, infPTS, goodJPEG} {
		msg := &nats.Msg{Subject: bus.FrameSubject(f.Job, f.Video), Data: bus.AppendFrame(nil, f)}
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(bus.MsgID(f.Job, f.Video, f.Seq))); err != nil {
			t.Fatal(err)
		}
	}
	nms := detect.DefaultNMSOptions()
	w, err := New(ctx, js, openSession(t, model, 4), Options{Name: "w1", Batch: 4, NMS: nms, Names: []string{"person"}, Layout: layoutOf(t, model)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runWorker(t, ctx, w)
	results := collectResults(t, ctx, js, 4)
	stop()
	if len(w.decoders) == 0 {
		t.Error("no reader made a JPEG decoder")
	}
	for i, d := range w.decoders {
		if d != nil {
			t.Errorf("reader %d's JPEG decoder is still open after Run", i)
		}
	}

	for seq, want := range map[int]string{1: "jpeg: header declares 65500x65500, the frame is 64x64", 2: "pts is +Inf, want a finite number"} {
		r := results[seq]
		if !strings.Contains(r.Error, want) || strings.Contains(r.Error, "deliveries") {
			t.Errorf("seq %d: error %q, want one saying %q at the first delivery", seq, r.Error, want)
		}
		t.Logf("seq %d: %s", seq, r.Error)
	}
	for _, seq := range []int{0, 3} {
		if r := results[seq]; r.Error != "" || r.Worker != "w1" {
			t.Errorf("seq %d: good frame got error %q", seq, r.Error)
		}
	}
	cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumRedelivered != 0 || ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Errorf("frames consumer: %d redelivered, %d pending ack, %d pending: want all 0", ci.NumRedelivered, ci.NumAckPending, ci.NumPending)
	}
}
