package detect

import "fmt"

// YOLOv8Rows turns one image of a YOLOv8/YOLO11 output, [4+nc, anchors]
// (cx, cy, w, h, then class scores already through the sigmoid; no
// objectness), into output0-style rows [cx, cy, w, h, 1, cls...] of 5+nc
// columns, so that NMS treats them as ultralytics' v8 non_max_suppression
// does: with objectness 1 a row's score obj*cls is its class score exactly.
//
// Only anchors whose best class score is above conf are kept, in anchor
// order: that is v8's candidate test (amax over the classes > conf), which
// also drops an anchor with a NaN score, and it spares copying the anchors
// that could never become detections. best is scratch space of at least
// anchors floats (nil: allocated here). The rows are appended to dst[:0];
// the second result is their number.
func YOLOv8Rows(dst, best, pred []float32, nc, anchors int, conf float32) ([]float32, int, error) {
	dst = dst[:0]
	if nc < 1 || anchors < 1 {
		return dst, 0, fmt.Errorf("yolov8 output of %d classes, %d anchors: %w", nc, anchors, ErrSize)
	}
	if len(pred) < (4+nc)*anchors {
		return dst, 0, fmt.Errorf("yolov8 output of %d floats, shape %dx%d: %w", len(pred), 4+nc, anchors, ErrShortBuffer)
	}
	if len(best) < anchors {
		best = make([]float32, anchors)
	}
	// Class by class, so that memory is read in order: anchor by anchor,
	// each class is a stride of anchors floats away, and that took 7.6 ms
	// per 640x640 image against 1.0 ms (BenchmarkYOLOv8Rows).
	best = best[:anchors:anchors]
	copy(best, pred[4*anchors:5*anchors])
	for j := 1; j < nc; j++ {
		row := pred[(4+j)*anchors : (5+j)*anchors : (5+j)*anchors]
		for a, s := range row {
			// Like torch's amax, Go's max propagates NaN.
			best[a] = max(best[a], s)
		}
	}
	cls := pred[4*anchors : (4+nc)*anchors]
	n := 0
	for a, b := range best {
		if !(b > conf) { // also drops NaN
			continue
		}
		dst = append(dst, pred[a], pred[anchors+a], pred[2*anchors+a], pred[3*anchors+a], 1)
		for j := range nc {
			dst = append(dst, cls[j*anchors+a])
		}
		n++
	}
	return dst, n, nil
}
