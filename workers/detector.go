package workers

import (
	"context"
	"fmt"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
)

// Session is what a worker needs of a model session; *infer.Session has it.
type Session interface {
	Input(batch int) ([]float32, error)
	Run(ctx context.Context, batch int) ([]infer.Output, error)
	InputSize() (h, w int)
	MaxBatch() int
}

// maxTuned bounds the postprocessors kept for per-job thresholds. A worker
// pool serves few distinct settings at a time; past the bound the oldest is
// replaced, so a stream of odd settings costs allocations, never memory.
const maxTuned = 8

// detector turns a batch of model outputs into per-image detections. It
// accepts the standard YOLOv5 export (one output [N, A, 5+nc], already
// decoded) and models that output the raw heads (three [N, 3*(5+nc), ny, nx]
// or [N, 3, ny, nx, 5+nc] tensors), which it decodes itself.
type detector struct {
	post   *detect.Postprocessor
	base   thresholds // post's
	tuned  []tunedPost
	evict  int // next tuned slot to replace when full
	levels []detect.HeadLevel
	rows   []float32   // decoded rows of one image, for raw-head models
	heads  [][]float32 // per-level views of one image
	dets   []detect.Detection
}

// tunedPost is a postprocessor for thresholds other than the worker's,
// kept so that its scratch buffers are reused frame after frame.
type tunedPost struct {
	t    thresholds
	post *detect.Postprocessor
}

func newDetector(nms detect.NMSOptions, inW, inH int) (*detector, error) {
	post, err := detect.NewPostprocessor(nms)
	if err != nil {
		return nil, err
	}
	levels, err := detect.YOLOv5Levels(inW, inH)
	if err != nil {
		return nil, err
	}
	return &detector{post: post, base: thresholdsOf(post.Options()), levels: levels}, nil
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
	if len(outs) != 1 || len(outs[0].Shape) != 3 || int(outs[0].Shape[1]) != k {
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
	switch {
	case len(outs) == 1 && len(outs[0].Shape) == 3:
		o := outs[0]
		rows, cols := int(o.Shape[1]), int(o.Shape[2])
		d.dets, err = post.NMS(d.dets[:0], o.Data[i*rows*cols:(i+1)*rows*cols], rows, cols)
	case len(outs) == len(d.levels):
		layout := detect.LayoutConv
		if len(outs[0].Shape) == 5 {
			layout = detect.LayoutPermuted
		}
		per := func(o infer.Output) int {
			n := 1
			for _, s := range o.Shape[1:] {
				n *= int(s)
			}
			return n
		}
		d.heads = d.heads[:0]
		for _, o := range outs {
			p := per(o)
			d.heads = append(d.heads, o.Data[i*p:(i+1)*p])
		}
		na := len(d.levels[0].Anchors) / 2
		nc := per(outs[0])/(na*d.levels[0].NY*d.levels[0].NX) - 5
		if d.rows, err = detect.DecodeHeads(d.rows, d.heads, d.levels, nc, layout); err != nil {
			return nil, err
		}
		d.dets, err = post.NMS(d.dets[:0], d.rows, detect.DecodedRows(d.levels), 5+nc)
	default:
		return nil, fmt.Errorf("model outputs %d tensors: want output0 [N,A,5+nc] or %d raw heads", len(outs), len(d.levels))
	}
	return d.dets, err
}
