package eval

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// MaxDets is the most detections of one image and category that count: the
// largest of COCOeval's maxDets, which cuts them by score before matching.
const MaxDets = 100

// MaxResultsBytes bounds a COCO results file. val.py's at conf 0.001 on
// val2017 is about 150 MB.
const MaxResultsBytes = 4 << 30

// Detection is one detected box in COCO's terms.
type Detection struct {
	ImageID    int64
	CategoryID int64
	Box        [4]float64 // x, y, width, height
	Score      float64
}

// det is a kept detection; seq is its place in the input, which breaks
// score ties as pycocotools' stable sorts do.
type det struct {
	box   [4]float64
	score float64
	seq   uint64
}

// Detections gathers the detections of one ground truth's images and
// categories, keeping per image and category only the MaxDets best.
type Detections struct {
	gt    *GroundTruth
	byKey map[imgCat][]det
	seq   uint64
	// Counts says what became of the detections read.
	Counts Counts
}

// Counts says what became of the detections read.
type Counts struct {
	Read     int64 // detections read
	Kept     int64 // on a ground-truth image, of a ground-truth category
	OffImage int64 // on an image (or frame) the ground truth does not have
	OffClass int64 // of a class the ground truth does not have
	// Videos are the videos vidpipe results came from; Files the files read.
	Videos, Files []string
	// Classes lists the class names mapped to no ground-truth category.
	Classes []string
}

// NewDetections starts an empty set of detections for gt.
func NewDetections(gt *GroundTruth) *Detections {
	return &Detections{gt: gt, byKey: map[imgCat][]det{}}
}

// Add takes one detection; one on an image or of a category that gt does
// not have is counted and dropped. The box must have been checked.
func (d *Detections) Add(x Detection) {
	d.Counts.Read++
	if _, ok := d.gt.images[x.ImageID]; !ok {
		d.Counts.OffImage++
		return
	}
	if _, ok := d.gt.cats[x.CategoryID]; !ok {
		d.Counts.OffClass++
		return
	}
	d.Counts.Kept++
	k := imgCat{x.ImageID, x.CategoryID}
	l := append(d.byKey[k], det{box: x.Box, score: x.Score, seq: d.seq})
	d.seq++
	if len(l) >= 2*MaxDets {
		l = best(l)
	}
	d.byKey[k] = l
}

// best sorts l by score, highest first, ties in input order, and cuts it
// to MaxDets.
func best(l []det) []det {
	slices.SortFunc(l, func(a, b det) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	return l[:min(len(l), MaxDets)]
}

// sorted returns the image and category's detections as COCOeval takes them.
func (d *Detections) sorted(k imgCat) []det {
	l := d.byKey[k]
	if len(l) == 0 {
		return nil
	}
	l = best(l)
	d.byKey[k] = l
	return l
}

// ReadCOCOResults adds the detections of a COCO results file (a JSON array
// of {image_id, category_id, bbox, score}) to d; name is used in errors.
func ReadCOCOResults(name string, r io.Reader, d *Detections) error {
	dec := json.NewDecoder(&limitReader{r: r, limit: MaxResultsBytes})
	where := ""
	err := eachElem(dec, func(i int) error {
		where = fmt.Sprintf("[%d]", i)
		var raw struct {
			ImageID    *int64    `json:"image_id"`
			CategoryID *int64    `json:"category_id"`
			BBox       []float64 `json:"bbox"`
			Score      *float64  `json:"score"`
		}
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if raw.ImageID == nil || raw.CategoryID == nil || raw.Score == nil {
			return fmt.Errorf("%w: want image_id, category_id, bbox and score", ErrInvalid)
		}
		if err := checkXYWH(raw.BBox); err != nil {
			return err
		}
		if err := checkScore(*raw.Score); err != nil {
			return err
		}
		d.Add(Detection{ImageID: *raw.ImageID, CategoryID: *raw.CategoryID, Box: [4]float64(raw.BBox), Score: *raw.Score})
		return nil
	})
	if err == nil {
		where = ""
		err = atEOF(dec)
	}
	if err != nil {
		return inputError(name, where, dec, err)
	}
	d.Counts.Files = append(d.Counts.Files, name)
	return nil
}
