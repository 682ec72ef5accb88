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
// that could never become detections. The rows are appended to dst[:0];
// the second result is their number.
func YOLOv8Rows(dst, pred []float32, nc, anchors int, conf float32) ([]float32, int, error) {
	dst = dst[:0]
	if nc < 1 || anchors < 1 {
		return dst, 0, fmt.Errorf("yolov8 output of %d classes, %d anchors: %w", nc, anchors, ErrSize)
	}
	if len(pred) < (4+nc)*anchors {
		return dst, 0, fmt.Errorf("yolov8 output of %d floats, shape %dx%d: %w", len(pred), 4+nc, anchors, ErrShortBuffer)
	}
	cls := pred[4*anchors : (4+nc)*anchors]
	n := 0
	for a := range anchors {
		// Like torch's amax, Go's max propagates NaN; NaN > conf is false.
		best := cls[a]
		for j := 1; j < nc; j++ {
			best = max(best, cls[j*anchors+a])
		}
		if !(best > conf) {
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
