package decode

import "math"

// discontinuity is how far forward a timestamp may jump in a format whose
// timestamps may restart (MPEG-TS) before it counts as a new timeline, the
// threshold the ffmpeg CLI uses for such formats.
const discontinuity = 10.0 // seconds

// clock is the media-time clock of the decoded pictures: strictly
// increasing, in stream time-base ticks, 0 at the first picture. It follows
// the timestamps while they increase; where they repeat, go back (two
// concatenated TS files, a 33-bit wrap) or are missing, it steps on by the
// previous picture's duration instead. Sampling (Options.FPS) and the
// annotated video's timing both run on it, so neither stalls on a jump.
type clock struct {
	now     int64 // ticks since the first picture
	started bool
	last    int64 // the previous picture's timestamp, or where it was reckoned to be; noPTS if unknown
	lastDur int64 // the previous picture's duration in ticks
	nominal int64 // one frame at the guessed rate, in ticks, at least 1
	maxJump int64 // forward steps over this restart the timeline; 0 never
}

func newClock(frameDur, tb float64, discont bool) clock {
	c := clock{last: noPTS, nominal: 1}
	if tb > 0 {
		c.nominal = max(1, int64(math.Round(frameDur/tb)))
		if discont {
			c.maxJump = int64(discontinuity / tb)
		}
	}
	return c
}

// advance places a picture with timestamp ts (noPTS if none) and packet
// duration dur (0 if unknown) on the clock.
func (c *clock) advance(ts, dur int64) {
	if dur <= 0 {
		dur = c.nominal
	}
	if c.started {
		step := c.lastDur
		if ts != noPTS && c.last != noPTS && ts > c.last && (c.maxJump == 0 || ts-c.last <= c.maxJump) {
			step = ts - c.last
		}
		c.now += step
		if ts == noPTS && c.last != noPTS {
			ts = c.last + step
		}
	}
	c.started, c.last, c.lastDur = true, ts, dur
}

// duration is the latest picture's duration in ticks.
func (c *clock) duration() int64 { return c.lastDur }
