package runbench

import (
	"context"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
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
	post, err := detect.NewPostprocessor(detect.NMSOptions{Conf: ReferenceConf, IoU: 0.45, MaxDet: bus.MaxDet})
	if err != nil {
		return nil, err
	}
	r := &Reference{Conf: ReferenceConf}
	var agree detect.Agreement
	refRows, rows := ref.Layout.NewDecoder(), set.Layout.NewDecoder()
	every := max(1, len(frames)/max(1, c.CompareFrames))
	for i := 0; i < len(frames) && r.Frames < max(1, c.CompareFrames); i += every {
		a, err := detectOne(ctx, ref.List[0], refRows, ref.Layout.Cols(), post, frames[i])
		if err != nil {
			return nil, err
		}
		b, err := detectOne(ctx, sess, rows, set.Layout.Cols(), post, frames[i])
		if err != nil {
			return nil, err
		}
		r.CPU += len(a)
		agree.Agree(a, b, 0.9)
		r.Frames++
	}
	r.Matched, r.OnlyCPU, r.OnlyBench = agree.Matched, agree.OnlyA, agree.OnlyB
	r.MaxBoxDiff, r.MaxConfDiff = round3(agree.MaxBoxDiff), round3(agree.MaxConfDiff*1e6)/1e6
	return r, nil
}
