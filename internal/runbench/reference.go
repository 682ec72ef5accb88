package runbench

import (
	"context"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/workers"
)

// ReferenceConf is the confidence threshold of the reference comparison:
// vidpipe's default, where users read detections.
const ReferenceConf = 0.25

// Reference compares the detections of the sessions the bench ran (its
// device, precision, input form and candidates) with those of the model in
// float32 with float input on the CPU, the reference every other form must
// match, on evenly spaced frames.
type Reference struct {
	Frames      int     `json:"frames"`
	Conf        float64 `json:"conf"`
	CPU         int     `json:"cpu_detections"`
	Matched     int     `json:"matched"` // same class, IoU > 0.9
	OnlyCPU     int     `json:"only_cpu"`
	OnlyBench   int     `json:"only_bench"`
	MaxBoxDiff  float64 `json:"max_box_diff_px"` // of matched pairs, model input pixels
	MaxConfDiff float64 `json:"max_conf_diff"`
}

// reference runs the comparison on c.CompareFrames of frames with sess,
// the bench's first session.
func (c *Options) reference(ctx context.Context, sess *infer.Session, set *workers.Sessions, frames [][]byte) (*Reference, error) {
	ref, err := c.sessions(ctx, workers.SessionOptions{Sessions: 1, Threads: c.Threads, Batch: 1, Device: "cpu", Input: workers.InputFloat})
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	cpu, err := newDetector(ref.List[0], ref.Layout, ReferenceConf)
	if err != nil {
		return nil, err
	}
	here, err := newDetector(sess, set.Layout, ReferenceConf)
	if err != nil {
		return nil, err
	}
	var picked [][]byte
	every := max(1, len(frames)/max(1, c.CompareFrames))
	for i := 0; i < len(frames) && len(picked) < max(1, c.CompareFrames); i += every {
		picked = append(picked, frames[i])
	}
	agree, n, err := compare(ctx, cpu, here, picked, picked)
	if err != nil {
		return nil, err
	}
	r := &Reference{Conf: ReferenceConf, Frames: len(picked), CPU: n}
	r.Matched, r.OnlyCPU, r.OnlyBench = agree.Matched, agree.OnlyA, agree.OnlyB
	r.MaxBoxDiff, r.MaxConfDiff = round3(agree.MaxBoxDiff), round3(agree.MaxConfDiff*1e6)/1e6
	return r, nil
}

// detector runs one session on single letterboxes and applies NMS at one
// threshold: what the bench's comparisons of detections see.
type detector struct {
	sess *infer.Session
	rows *layout.Decoder
	cols int
	post *detect.Postprocessor
}

func newDetector(sess *infer.Session, lay *layout.Layout, conf float64) (*detector, error) {
	post, err := detect.NewPostprocessor(detect.NMSOptions{Conf: float32(conf), IoU: 0.45, MaxDet: bus.MaxDet})
	if err != nil {
		return nil, err
	}
	return &detector{sess: sess, rows: lay.NewDecoder(), cols: lay.Cols(), post: post}, nil
}

// detect runs the model on one packed RGB letterbox and decodes its
// outputs as the layout decided at load says.
func (d *detector) detect(ctx context.Context, rgb []byte) ([]detect.Detection, error) {
	if err := load(d.sess, [][]byte{rgb}); err != nil {
		return nil, err
	}
	outs, err := d.sess.Run(ctx, 1)
	if err != nil {
		return nil, err
	}
	rows, n, err := d.rows.Rows(outs, 0, d.post.Options().Conf)
	if err != nil {
		return nil, err
	}
	return d.post.NMS(nil, rows, n, d.cols)
}

// compare matches a's detections on as[i] with b's on bs[i] (same class,
// IoU > 0.9) and returns the agreement and how many detections a found.
func compare(ctx context.Context, a, b *detector, as, bs [][]byte) (detect.Agreement, int, error) {
	var agree detect.Agreement
	n := 0
	for i := range as {
		x, err := a.detect(ctx, as[i])
		if err != nil {
			return agree, 0, err
		}
		y, err := b.detect(ctx, bs[i])
		if err != nil {
			return agree, 0, err
		}
		n += len(x)
		agree.Agree(x, y, 0.9)
	}
	return agree, n, nil
}
