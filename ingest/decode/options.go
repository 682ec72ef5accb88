package decode

import "fmt"

// DefaultMaxPixels bounds decoded pictures to 64 MP (8192x8192), far above
// any real camera yet small enough that a crafted header cannot make FFmpeg
// allocate gigabytes.
const DefaultMaxPixels = 8192 * 8192

// DefaultSize is the YOLOv5 model input size.
const DefaultSize = 640

// Options controls frame selection, letterboxing and resource limits.
type Options struct {
	// Every keeps every Nth decoded frame (0 or 1 keeps all). Mutually
	// exclusive with FPS.
	Every int
	// FPS keeps about F frames per second of media time, chosen by
	// best-effort timestamps so variable-frame-rate video is sampled evenly
	// (0 = off).
	FPS float64
	// Size is the square letterbox side (0 = DefaultSize).
	Size int
	// MaxPixels rejects pictures with more pixels (0 = DefaultMaxPixels).
	MaxPixels int64
	// Threads is the decoder thread count (0 = one per CPU, as FFmpeg's
	// "auto"); 1 keeps decoding on the calling thread.
	Threads int
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Every < 0:
		return o, fmt.Errorf("%w: Every %d < 0", ErrBadOptions, o.Every)
	case o.FPS < 0 || o.FPS != o.FPS:
		return o, fmt.Errorf("%w: FPS %v", ErrBadOptions, o.FPS)
	case o.Every > 1 && o.FPS > 0:
		return o, fmt.Errorf("%w: Every and FPS are mutually exclusive", ErrBadOptions)
	case o.Size < 0 || o.Size > 8192:
		return o, fmt.Errorf("%w: Size %d outside 1..8192", ErrBadOptions, o.Size)
	case o.MaxPixels < 0:
		return o, fmt.Errorf("%w: MaxPixels %d < 0", ErrBadOptions, o.MaxPixels)
	case o.Threads < 0:
		return o, fmt.Errorf("%w: Threads %d < 0", ErrBadOptions, o.Threads)
	}
	if o.Every == 0 {
		o.Every = 1
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	return o, nil
}
