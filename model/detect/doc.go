// Package detect holds YOLOv5 pre- and post-processing in pure Go: letterbox
// planning and resizing, raw Detect-head decoding, non-maximum suppression and
// scaling boxes back to the source image, matching the ultralytics reference.
package detect

import "errors"

// Sentinel errors; callers match them with errors.Is.
var (
	// ErrSize reports a non-positive or inconsistent image or tensor size.
	ErrSize = errors.New("invalid size")
	// ErrShortBuffer reports an input or output slice smaller than its shape.
	ErrShortBuffer = errors.New("buffer too short")
	// ErrOption reports an out-of-range option value.
	ErrOption = errors.New("invalid option")
)
