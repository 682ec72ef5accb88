package workers

import (
	"context"
	"fmt"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
)

// Session is what a worker needs of a model session; *infer.Session has it.
type Session interface {
	Input(batch int) ([]float32, error)
	Run(ctx context.Context, batch int) ([]infer.Output, error)
	InputSize() (h, w int)
	MaxBatch() int
}

// BytesSession is a session whose model takes letterboxed uint8 RGB
// [N,H,W,3] (layout.Layout.Bytes): the worker copies each frame's bytes
// into InputBytes instead of converting them to floats. *infer.Session
// has it. The worker follows the model it is given; OpenSessions converts
// the model to take bytes where SessionOptions.Input asks (by default on
// CUDA, where the bytes save three quarters of the copy to the device).
type BytesSession interface {
	Session
	InputBytes(batch int) ([]byte, error)
}

// maxTuned bounds the postprocessors kept for per-job thresholds. A worker
// pool serves few distinct settings at a time; past the bound the oldest is
// replaced, so a stream of odd settings costs allocations, never memory.
const maxTuned = 8

// detector turns a batch of model outputs into per-image detections, in the
// layout the model was found to have when it loaded (layout.Decide): YOLOv5
// output0, YOLOv5 raw heads, or YOLOv8/YOLO11.
type detector struct {
	post   *detect.Postprocessor
	base   thresholds // post's
	tuned  []tunedPost
	evict  int // next tuned slot to replace when full
	layout *layout.Layout
	dec    *layout.Decoder
	dets   []detect.Detection
}

// tunedPost is a postprocessor for thresholds other than the worker's,
// kept so that its scratch buffers are reused frame after frame.
type tunedPost struct {
	t    thresholds
	post *detect.Postprocessor
}

func newDetector(nms detect.NMSOptions, l *layout.Layout) (*detector, error) {
	if l == nil {
		return nil, fmt.Errorf("no model layout: open the model with layout.Open")
	}
	post, err := detect.NewPostprocessor(nms)
	if err != nil {
		return nil, err
	}
	return &detector{post: post, base: thresholdsOf(post.Options()), layout: l, dec: l.NewDecoder()}, nil
}

// postFor returns the postprocessor for t, making one the first time.
func (d *detector) postFor(t thresholds) (*detect.Postprocessor, error) {
	if t == d.base {
		return d.post, nil
	}
	for _, tp := range d.tuned {
		if tp.t == t {
			return tp.post, nil
		}
	}
	o := d.post.Options()
	o.Conf, o.IoU, o.MaxDet = t.conf, t.iou, t.maxDet
	p, err := detect.NewPostprocessor(o)
	if err != nil {
		return nil, err
	}
	if len(d.tuned) < maxTuned {
		d.tuned = append(d.tuned, tunedPost{t, p})
	} else {
		d.tuned[d.evict] = tunedPost{t, p}
		d.evict = (d.evict + 1) % maxTuned
	}
	return p, nil
}

// saturated reports whether image i of a k-candidate output has every row
// above the confidence threshold of t: rows beyond k may have passed too.
func (d *detector) saturated(outs []infer.Output, i, k int, t thresholds) bool {
	if d.layout.Kind != layout.YOLOv5 || len(outs) != 1 || len(outs[0].Shape) != 3 || int(outs[0].Shape[1]) != k {
		return false
	}
	conf := t.conf
	if conf == 0 {
		conf = d.base.conf
	}
	cols := int(outs[0].Shape[2])
	rows := outs[0].Data[i*k*cols : (i+1)*k*cols]
	for r := 4; r < len(rows); r += cols {
		if !(rows[r] > conf) {
			return false
		}
	}
	return true
}

// image returns image i's detections in letterboxed input pixels under
// thresholds t, as a view valid until the next call.
func (d *detector) image(outs []infer.Output, i int, t thresholds) ([]detect.Detection, error) {
	post, err := d.postFor(t)
	if err != nil {
		return nil, err
	}
	rows, n, err := d.dec.Rows(outs, i, post.Options().Conf)
	if err != nil {
		return nil, err
	}
	d.dets, err = post.NMS(d.dets[:0], rows, n, d.layout.Cols())
	return d.dets, err
}
