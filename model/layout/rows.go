package layout

import (
	"fmt"

	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/infer"
)

// Decoder turns one image of a batch's outputs into the rows NMS reads,
// [cx, cy, w, h, obj, cls...] in input pixels, with scratch buffers reused
// from call to call. It is not safe for concurrent use.
type Decoder struct {
	l     *Layout
	rows  []float32
	best  []float32 // per YOLOv8 anchor, its best class score
	heads [][]float32
}

// NewDecoder returns a decoder for models of layout l.
func (l *Layout) NewDecoder() *Decoder { return &Decoder{l: l} }

// Cols is the number of values per row that Rows returns: 5+nc.
func (l *Layout) Cols() int { return 5 + l.Classes }

// Rows returns image i's rows and their number, as a view valid until the
// next call (for YOLOv5 output0, a view of outs itself). conf is the score
// threshold NMS applies next: YOLOv8 anchors whose best class cannot pass
// it are left out, as ultralytics' v8 NMS leaves them out.
func (d *Decoder) Rows(outs []infer.Output, i int, conf float32) ([]float32, int, error) {
	l := d.l
	switch l.Kind {
	case YOLOv5:
		o, err := outputOf(outs, l.Output, 3)
		if err != nil {
			return nil, 0, err
		}
		// The rows of this output, not l.Rows: a model rewritten to return
		// its best rows has fewer.
		rows, cols := int(o.Shape[1]), int(o.Shape[2])
		if cols != l.Cols() {
			return nil, 0, fmt.Errorf("output %s has %d columns, the layout %d", o.Name, cols, l.Cols())
		}
		img, err := image(o, i, rows*cols)
		return img, rows, err
	case YOLOv8:
		o, err := outputOf(outs, l.Output, 3)
		if err != nil {
			return nil, 0, err
		}
		if int(o.Shape[1]) != 4+l.Classes {
			return nil, 0, fmt.Errorf("output %s has %d rows, the layout %d", o.Name, o.Shape[1], 4+l.Classes)
		}
		anchors := int(o.Shape[2])
		img, err := image(o, i, (4+l.Classes)*anchors)
		if err != nil {
			return nil, 0, err
		}
		if cap(d.best) < anchors {
			d.best = make([]float32, anchors)
		}
		var n int
		d.rows, n, err = detect.YOLOv8Rows(d.rows, d.best[:anchors], img, l.Classes, anchors, conf)
		return d.rows, n, err
	case RawHeads:
		d.heads = d.heads[:0]
		for _, h := range l.Heads {
			if h >= len(outs) {
				return nil, 0, fmt.Errorf("%d outputs, raw head %d missing", len(outs), h)
			}
			o := outs[h]
			per := 1
			for _, s := range o.Shape[1:] {
				per *= int(s)
			}
			img, err := image(o, i, per)
			if err != nil {
				return nil, 0, err
			}
			d.heads = append(d.heads, img)
		}
		var err error
		if d.rows, err = detect.DecodeHeads(d.rows, d.heads, l.Levels, l.Classes, l.HeadLayout); err != nil {
			return nil, 0, err
		}
		return d.rows, detect.DecodedRows(l.Levels), nil
	}
	return nil, 0, fmt.Errorf("decode %s: %w", l.Kind, ErrLayout)
}

// outputOf returns outs[i], which must have the given rank.
func outputOf(outs []infer.Output, i, rank int) (infer.Output, error) {
	if i >= len(outs) {
		return infer.Output{}, fmt.Errorf("%d outputs, want output %d", len(outs), i)
	}
	if o := outs[i]; len(o.Shape) != rank {
		return infer.Output{}, fmt.Errorf("output %s has shape %v, want rank %d", o.Name, o.Shape, rank)
	}
	return outs[i], nil
}

// image is item i of o, per floats long.
func image(o infer.Output, i, per int) ([]float32, error) {
	if i < 0 || per < 0 || (i+1)*per > len(o.Data) {
		return nil, fmt.Errorf("output %s of %d floats has no image %d of %d", o.Name, len(o.Data), i, per)
	}
	return o.Data[i*per : (i+1)*per], nil
}
