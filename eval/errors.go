package eval

import "errors"

// Errors that callers can test with errors.Is. Each is wrapped with the name
// of the file it concerns and the entry at fault.
var (
	// ErrInvalid means an input is not what it should be: not JSON, not the
	// expected shape, a box without four finite numbers, a duplicate id.
	ErrInvalid = errors.New("invalid input")
	// ErrTooLarge means an input is past one of the package's limits.
	ErrTooLarge = errors.New("input too large")
	// ErrNoMatch means no ground-truth image can be matched to a frame, or
	// images would match frames of several videos: see the package
	// documentation for the rules.
	ErrNoMatch = errors.New("ground truth does not match the detections")
)
