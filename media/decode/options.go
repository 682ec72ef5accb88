package decode

import (
	"fmt"
	"runtime"
	"strings"
)

// DefaultMaxPixels bounds decoded pictures to 64 MP (8192x8192), far above
// any real camera yet small enough that a crafted header cannot make FFmpeg
// allocate gigabytes.
const DefaultMaxPixels = 8192 * 8192

// threadFramesBytes bounds the pictures automatic frame threading may hold:
// each frame thread keeps about two pictures of its own, so FFmpeg's
// one-per-CPU default would hold gigabytes of 64 MP pictures on a large host.
const threadFramesBytes = 256 << 20

// FrameThreads is the decoder thread count Open uses for w x h pictures:
// threads when set, else FFmpeg's automatic count (0) unless its frames
// would exceed threadFramesBytes, then as many threads as fit, at least one.
func FrameThreads(threads, w, h int) int {
	if threads > 0 {
		return threads
	}
	auto := min(runtime.NumCPU()+1, 16) // FFmpeg's own automatic count
	perThread := 2 * PictureBytes(w, h)
	if perThread <= 0 || int64(auto)*perThread <= threadFramesBytes {
		return 0
	}
	return int(max(1, threadFramesBytes/perThread))
}

// PictureBytes is the size of one w x h 4:2:0 8-bit picture, the usual
// decoded format, for memory estimates.
func PictureBytes(w, h int) int64 { return int64(w) * int64(h) * 3 / 2 }

// maxLetterboxers caps automatic fan-out per video: ingest decodes several
// videos at once, each with its own letterboxers, and one decoding
// goroutine cannot feed many more (a 1080p frame letterboxes in about
// 3.5 ms and decodes in about 3 ms on two cores' frame threads).
const maxLetterboxers = 8

// letterboxBytes bounds the buffers automatic fan-out holds, as
// threadFramesBytes bounds frame threads' pictures.
const letterboxBytes = 256 << 20

// smallLetterbox is the pixel count, picture and letterbox together, under
// which automatic fan-out stays serial: such a frame letterboxes in under
// about 25 µs on one core (5 to 16 µs for 64x48 into 32 or 64 squares),
// not much more than handing it to another goroutine and back costs.
const smallLetterbox = 1 << 15

// Letterboxers is the letterboxing goroutine count Next uses for w x h
// pictures letterboxed to size x size: n when set, else one per GOMAXPROCS
// up to maxLetterboxers, as many as fit in letterboxBytes, at least one,
// and one for pictures too small to be worth handing over. Each holds a
// converted picture (BGR24 at most, w x h) and two frames in flight: a copy
// of the decoded picture and its letterbox.
func Letterboxers(n, w, h, size int) int {
	if n > 0 {
		return n
	}
	if int64(w)*int64(h)+int64(size)*int64(size) < smallLetterbox {
		return 1
	}
	auto := min(runtime.GOMAXPROCS(0), maxLetterboxers)
	each := 3*int64(w)*int64(h) + 2*(PictureBytes(w, h)+3*int64(size)*int64(size))
	if each <= 0 || int64(auto)*each <= letterboxBytes {
		return auto
	}
	return int(max(1, letterboxBytes/each))
}

// DefaultSize is the YOLOv5 model input size.
const DefaultSize = 640

// Options controls frame selection, letterboxing and resource limits.
type Options struct {
	// Every keeps every Nth decoded frame (0 or 1 keeps all). Mutually
	// exclusive with FPS.
	Every int
	// FPS keeps about F frames per second of media time, chosen on the
	// decoder's clock (best-effort timestamps while they increase, a
	// frame's duration where they jump back), so variable-frame-rate video
	// is sampled evenly and sampling goes on past a timestamp jump (0 = off).
	FPS float64
	// Size is the square letterbox side (0 = DefaultSize).
	Size int
	// MaxPixels rejects pictures with more pixels (0 = DefaultMaxPixels).
	MaxPixels int64
	// Threads is the decoder thread count (0 = one per CPU, as FFmpeg's
	// "auto", fewer for pictures so large that their frames would not fit
	// in a bounded size: see FrameThreads); 1 keeps decoding on the
	// calling thread.
	Threads int
	// Preprocess chooses how pictures become letterboxes (the zero value is
	// PreprocessExact).
	Preprocess Preprocess
	// Letterboxers is how many goroutines letterbox Next's frames while
	// the calling goroutine decodes the ones after them (0 = automatic:
	// one per GOMAXPROCS, at most maxLetterboxers, fewer for pictures so
	// large that their buffers would not fit in a bounded size, one for
	// tiny ones: see Letterboxers); 1 letterboxes each frame on the
	// calling goroutine. Next returns the same frames, bytes and Stats
	// either way.
	Letterboxers int
}

// Preprocess is how decoded pictures become the model's letterboxed input.
type Preprocess uint8

const (
	// PreprocessExact gives the model the pixels YOLOv5's own pipeline
	// gives it: the picture converted to BGR at its coded size as
	// cv2.VideoCapture does, rotated as its display matrix asks, then
	// letterboxed as cv2.resize(INTER_LINEAR) does, bit for bit.
	PreprocessExact Preprocess = iota
	// PreprocessFast resizes in the source's own format with swscale, then
	// converts the small picture: several times cheaper, but about 3
	// levels away from the pixels the model was validated on, and so
	// different detections.
	PreprocessFast
)

var preprocessNames = [...]string{PreprocessExact: "exact", PreprocessFast: "fast"}

// PreprocessNames lists the names ParsePreprocess accepts, the default first.
func PreprocessNames() []string { return preprocessNames[:] }

func (p Preprocess) String() string {
	if int(p) < len(preprocessNames) {
		return preprocessNames[p]
	}
	return fmt.Sprintf("preprocess(%d)", uint8(p))
}

// ParsePreprocess reads a preprocessing name; "" is the default, exact.
func ParsePreprocess(s string) (Preprocess, error) {
	if s == "" {
		return PreprocessExact, nil
	}
	for i, n := range preprocessNames {
		if s == n {
			return Preprocess(i), nil
		}
	}
	return 0, fmt.Errorf("%w: preprocess %q is not one of %s", ErrBadOptions, s, strings.Join(preprocessNames[:], ", "))
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
	case o.Letterboxers < 0:
		return o, fmt.Errorf("%w: Letterboxers %d < 0", ErrBadOptions, o.Letterboxers)
	case int(o.Preprocess) >= len(preprocessNames):
		return o, fmt.Errorf("%w: %v", ErrBadOptions, o.Preprocess)
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
