package decode

import "math"

// slotEpsilon absorbs float error when a timestamp lands exactly on a slot
// (0.2 s is 5/25 but not exactly representable).
const slotEpsilon = 1e-6

// selector decides which decoded frames are kept: every Nth by decode index,
// or at most one per 1/FPS slot of media time (the decoder's clock). Slots
// are anchored at the first frame's time and computed as t0 + k/FPS rather
// than accumulated, so long videos do not drift; a gap in variable-frame-rate video skips the
// empty slots instead of bursting to catch up.
type selector struct {
	every int
	fps   float64

	started bool
	t0      float64
	next    int64 // index of the next slot to fill
}

func (s *selector) keep(index int64, pts float64) bool {
	if s.fps <= 0 {
		return index%int64(s.every) == 0
	}
	if !s.started {
		s.started, s.t0, s.next = true, pts, 1
		return true
	}
	if pts < s.t0+float64(s.next)/s.fps-slotEpsilon {
		return false
	}
	s.next = int64(math.Floor((pts-s.t0)*s.fps+slotEpsilon)) + 1
	return true
}
