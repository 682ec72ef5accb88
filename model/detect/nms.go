package detect

import (
	"fmt"
	"math"
	"slices"
)

// Box is an axis-aligned box in pixels, corners (X1, Y1) and (X2, Y2).
type Box struct{ X1, Y1, X2, Y2 float32 }

// Detection is one kept box with its score obj*cls and class index.
type Detection struct {
	Box     Box
	Conf    float32
	ClassID int
}

// classOffset is ultralytics' max_wh: boxes of class c move by c*7680 so one
// NMS pass keeps classes apart (boxes wider than that still interact, and
// this package reproduces that too).
const classOffset = 7680

// NMSOptions are the ultralytics non_max_suppression arguments.
type NMSOptions struct {
	// Conf is the score threshold, applied to obj first and then to obj*cls;
	// a row passes when its value is strictly greater.
	Conf float32
	// IoU is the suppression threshold: a box is dropped when its IoU with a
	// kept box is strictly greater. It is float64 because torchvision compares
	// the float32 IoU against a double threshold.
	IoU float64
	// MaxDet caps the detections per image; 0 means 300.
	MaxDet int
	// MaxCandidates caps the boxes entering NMS after sorting; 0 means 30000.
	MaxCandidates int
	// Classes, when not empty, keeps only these class indices.
	Classes []int
	// Agnostic runs one NMS over all classes.
	Agnostic bool
	// MultiLabel keeps every class whose score passes Conf, not just the best
	// one (the mAP evaluation setting).
	MultiLabel bool
}

// DefaultNMSOptions returns the detect defaults: conf 0.25, IoU 0.45, 300
// detections, 30000 candidates.
func DefaultNMSOptions() NMSOptions {
	return NMSOptions{Conf: 0.25, IoU: 0.45, MaxDet: 300, MaxCandidates: 30000}
}

func (o NMSOptions) validate() (NMSOptions, error) {
	if !(o.Conf >= 0 && o.Conf <= 1) {
		return o, fmt.Errorf("nms conf threshold %v outside [0, 1]: %w", o.Conf, ErrOption)
	}
	if !(o.IoU >= 0 && o.IoU <= 1) {
		return o, fmt.Errorf("nms iou threshold %v outside [0, 1]: %w", o.IoU, ErrOption)
	}
	if o.MaxDet < 0 || o.MaxCandidates < 0 {
		return o, fmt.Errorf("nms max_det %d, max candidates %d: %w", o.MaxDet, o.MaxCandidates, ErrOption)
	}
	if o.MaxDet == 0 {
		o.MaxDet = 300
	}
	if o.MaxCandidates == 0 {
		o.MaxCandidates = 30000
	}
	return o, nil
}

// hit is one (row, class) pair whose score passed the threshold; kept small
// because the evaluation setting can produce hundreds of thousands.
type hit struct {
	row, cls int32
}

// candidate is a hit that made the sorted, capped list fed to NMS.
type candidate struct {
	box   Box     // xyxy in input pixels
	nbox  Box     // box offset by class, as fed to NMS
	area  float32 // area of nbox
	score float32
	cls   int32
}

// sortKey packs a hit for sorting: the inverted bits of its score (positive
// floats order like their bits) above its arrival index, so an ascending
// integer sort is by score descending, ties in arrival order.
func sortKey(score float32, idx int) uint64 {
	return uint64(^math.Float32bits(score))<<32 | uint64(uint32(idx))
}

func keyScore(k uint64) float32 { return math.Float32frombits(^uint32(k >> 32)) }

// spanLimit bounds the candidate coordinate span under which boxes of two
// classes, offset by multiples of classOffset, cannot intersect; the margin
// covers float32 rounding of the offsets.
const spanLimit = classOffset - 512

// Postprocessor runs NMS with scratch buffers reused across calls, so that
// steady-state calls do not allocate. It is not safe for concurrent use.
type Postprocessor struct {
	opt    NMSOptions
	hits   []hit
	keys   []uint64
	sorted []candidate
	hist   []int32 // topKeys histogram, 1<<16 buckets
	keep   []int32
	head   []int32 // per class: index in keep of the last kept box, -1 when none
	next   []int32 // per kept box: index in keep of the previous one of its class
}

// NewPostprocessor checks opt and returns a Postprocessor using it.
func NewPostprocessor(opt NMSOptions) (*Postprocessor, error) {
	o, err := opt.validate()
	if err != nil {
		return nil, err
	}
	o.Classes = slices.Clone(o.Classes)
	return &Postprocessor{opt: o}, nil
}

// Options returns the options in effect, defaults filled in.
func (p *Postprocessor) Options() NMSOptions { return p.opt }

// NMS runs non-maximum suppression on one image's predictions: rows of cols
// float32 values [cx, cy, w, h, obj, cls0...] (cols = 5+nc), as in output0.
// The detections, best first, are appended to dst[:0]. Rows with NaN scores
// or non-finite boxes are skipped.
func NMS(dst []Detection, pred []float32, rows, cols int, opt NMSOptions) ([]Detection, error) {
	p, err := NewPostprocessor(opt)
	if err != nil {
		return dst[:0], err
	}
	return p.NMS(dst, pred, rows, cols)
}

// NMS is the reusable form of the package-level NMS.
func (p *Postprocessor) NMS(dst []Detection, pred []float32, rows, cols int) ([]Detection, error) {
	dst = dst[:0]
	if rows < 0 || rows > math.MaxInt32 || cols < 6 || cols > math.MaxInt32 {
		return dst, fmt.Errorf("nms prediction shape %dx%d: %w", rows, cols, ErrSize)
	}
	if rows > len(pred)/cols {
		return dst, fmt.Errorf("nms prediction of %d floats, shape %dx%d: %w", len(pred), rows, cols, ErrShortBuffer)
	}
	pred = pred[:rows*cols]
	p.collect(pred, cols)
	p.sort(pred, cols)
	return p.suppress(dst, cols-5), nil
}

// collect gathers the hits in ultralytics order: row-major, and for
// multi-label by ascending class within a row.
func (p *Postprocessor) collect(pred []float32, cols int) {
	o := &p.opt
	p.hits, p.keys = p.hits[:0], p.keys[:0]
	add := func(row, cls int, score float32) {
		p.keys = append(p.keys, sortKey(score, len(p.hits)))
		p.hits = append(p.hits, hit{row: int32(row), cls: int32(cls)})
	}
	for r := 0; r+cols <= len(pred); r += cols {
		row := pred[r : r+cols]
		obj := row[4]
		if !(obj > o.Conf) { // also drops NaN
			continue
		}
		if b := xyxy(row); !finite(b.X1) || !finite(b.Y1) || !finite(b.X2) || !finite(b.Y2) {
			continue // torch would keep it, but a non-finite box is of no use
		}
		cls := row[5:]
		if o.MultiLabel && len(cls) > 1 {
			for j, c := range cls {
				if s := c * obj; s > o.Conf && p.wanted(j) {
					add(r/cols, j, s)
				}
			}
			continue
		}
		// torch.max returns the first maximum and propagates NaN.
		best, bj := cls[0]*obj, 0
		nan := best != best
		for j := 1; j < len(cls) && !nan; j++ {
			s := cls[j] * obj
			if s != s {
				nan = true
			} else if s > best {
				best, bj = s, j
			}
		}
		if nan || !(best > o.Conf) || !p.wanted(bj) {
			continue
		}
		add(r/cols, bj, best)
	}
}

// xyxy is xywh2xyxy in float32, exactly as torch computes it.
func xyxy(row []float32) Box {
	return Box{
		X1: row[0] - row[2]/2, Y1: row[1] - row[3]/2,
		X2: row[0] + row[2]/2, Y2: row[1] + row[3]/2,
	}
}

func (p *Postprocessor) wanted(class int) bool {
	return len(p.opt.Classes) == 0 || slices.Contains(p.opt.Classes, class)
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// sort orders the hits by descending score, keeps at most MaxCandidates
// and builds their candidates with class-offset boxes in p.sorted.
func (p *Postprocessor) sort(pred []float32, cols int) {
	keys := p.topKeys(p.keys, p.opt.MaxCandidates)
	slices.Sort(keys)
	keys = keys[:min(len(keys), p.opt.MaxCandidates)]
	p.sorted = slices.Grow(p.sorted[:0], len(keys))[:len(keys)]
	for i, k := range keys {
		h := p.hits[uint32(k)]
		c := candidate{box: xyxy(pred[int(h.row)*cols:]), score: keyScore(k), cls: h.cls}
		var off float32
		if !p.opt.Agnostic {
			off = float32(c.cls) * classOffset
		}
		c.nbox = Box{c.box.X1 + off, c.box.Y1 + off, c.box.X2 + off, c.box.Y2 + off}
		// The explicit conversion forbids a fused multiply-add, keeping the
		// float32 rounding torchvision has.
		c.area = float32((c.nbox.X2 - c.nbox.X1) * (c.nbox.Y2 - c.nbox.Y1))
		p.sorted[i] = c
	}
}

// topKeys reorders keys so that its prefix holds at least the k smallest
// and returns that prefix, which is much shorter than keys when the
// evaluation threshold lets hundreds of thousands through. It partitions on
// the high 16 bits (sign, exponent, 7 mantissa bits of the score), so the
// prefix may hold a few more than k.
func (p *Postprocessor) topKeys(keys []uint64, k int) []uint64 {
	if len(keys) <= k {
		return keys
	}
	if p.hist == nil {
		p.hist = make([]int32, 1<<16)
	}
	hist := p.hist
	clear(hist)
	for _, v := range keys {
		hist[v>>48]++
	}
	cut, sum := 0, 0
	for b, n := range hist {
		sum += int(n)
		if sum >= k {
			cut = b
			break
		}
	}
	n := 0
	for _, v := range keys {
		if int(v>>48) <= cut {
			keys[n] = v
			n++
		}
	}
	return keys[:n]
}

// suppress is torchvision's greedy NMS on p.sorted: a candidate survives
// when no box kept before it overlaps it by more than IoU. Comparing against
// kept boxes only gives the same result and stops at MaxDet.
func (p *Postprocessor) suppress(dst []Detection, nc int) []Detection {
	cands := p.sorted
	p.keep, p.next = p.keep[:0], p.next[:0]
	perClass := !p.opt.Agnostic && boundedSpan(cands)
	if perClass {
		p.head = slices.Grow(p.head[:0], nc)[:nc]
		for i := range p.head {
			p.head[i] = -1
		}
	}
	thr := p.opt.IoU
	for i := range cands {
		c := &cands[i]
		ok := true
		if perClass {
			// Offset boxes of other classes cannot intersect, so their IoU
			// is 0 and only this class's kept boxes can suppress c.
			for k := p.head[c.cls]; k >= 0 && ok; k = p.next[k] {
				ok = !(iou(&cands[p.keep[k]], c) > thr)
			}
		} else {
			for _, k := range p.keep {
				if iou(&cands[k], c) > thr {
					ok = false
					break
				}
			}
		}
		if !ok {
			continue
		}
		if perClass {
			p.next = append(p.next, p.head[c.cls])
			p.head[c.cls] = int32(len(p.keep))
		}
		p.keep = append(p.keep, int32(i))
		dst = append(dst, Detection{Box: c.box, Conf: c.score, ClassID: int(c.cls)})
		if len(p.keep) == p.opt.MaxDet {
			break
		}
	}
	return dst
}

// boundedSpan reports whether all box coordinates lie within a window
// narrower than spanLimit, which rules out overlaps between classes.
func boundedSpan(cands []candidate) bool {
	if len(cands) == 0 {
		return true
	}
	lo, hi := cands[0].box.X1, cands[0].box.X2
	for i := range cands {
		b := &cands[i].box
		lo = min(lo, b.X1, b.Y1, b.X2, b.Y2)
		hi = max(hi, b.X1, b.Y1, b.X2, b.Y2)
	}
	return hi-lo < spanLimit
}

// iou mirrors torchvision's CPU kernel operation by operation, with a the
// kept box and b the later one, so borderline cases decide the same way.
func iou(a, b *candidate) float64 {
	xx1 := stdMax(a.nbox.X1, b.nbox.X1)
	yy1 := stdMax(a.nbox.Y1, b.nbox.Y1)
	xx2 := stdMin(a.nbox.X2, b.nbox.X2)
	yy2 := stdMin(a.nbox.Y2, b.nbox.Y2)
	w := stdMax(0, xx2-xx1)
	h := stdMax(0, yy2-yy1)
	inter := float32(w * h)
	return float64(inter / (a.area + b.area - inter))
}

// stdMax and stdMin are std::max and std::min, whose NaN handling differs
// from Go's builtins.
func stdMax(a, b float32) float32 {
	if a < b {
		return b
	}
	return a
}

func stdMin(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}
