package results

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// CountKind is what CountBy groups rows by.
type CountKind string

// Count kinds.
const (
	ByClass  CountKind = "class"
	ByVideo  CountKind = "video"
	ByJob    CountKind = "job"
	BySecond CountKind = "second" // whole seconds of pts, floor(pts)
)

// ParseCountKind checks a --count-by value.
func ParseCountKind(s string) (CountKind, error) {
	switch k := CountKind(s); k {
	case ByClass, ByVideo, ByJob, BySecond:
		return k, nil
	}
	return "", fmt.Errorf("count by %q: want class, video, job or second", s)
}

// keyCol is the column a kind reads.
func (k CountKind) keyCol() colID {
	switch k {
	case ByVideo:
		return cVideo
	case ByJob:
		return cJob
	case BySecond:
		return cPTS
	default:
		return cClass
	}
}

// Count is one group: Key is the class, video or job name, or the second
// in decimal; N is its number of matching rows.
type Count struct {
	Key string
	N   int64
}

// unknownSecond groups rows whose pts is NaN or infinite.
const unknownSecond = "unknown"

// Counter accumulates counts over any number of files.
type Counter struct {
	kind    CountKind
	keys    map[string]int64
	seconds map[int64]int64
	unknown int64
}

// NewCounter starts empty counts by kind.
func NewCounter(kind CountKind) (*Counter, error) {
	if _, err := ParseCountKind(string(kind)); err != nil {
		return nil, err
	}
	return &Counter{kind: kind, keys: map[string]int64{}, seconds: map[int64]int64{}}, nil
}

// Kind is the grouping.
func (c *Counter) Kind() CountKind { return c.kind }

// Add counts one row.
func (c *Counter) Add(r Row) {
	switch c.kind {
	case ByClass:
		c.keys[r.Class]++
	case ByVideo:
		c.keys[r.Video]++
	case ByJob:
		c.keys[r.Job]++
	case BySecond:
		if math.IsNaN(r.PTS) || math.IsInf(r.PTS, 0) || math.Abs(r.PTS) >= 1<<62 {
			c.unknown++
			return
		}
		c.seconds[int64(math.Floor(r.PTS))]++
	}
}

// Scan counts the rows of src matching f, reading only the grouping column
// and the filter's columns.
func (c *Counter) Scan(ctx context.Context, src Source, f Filter) (ScanStats, error) {
	opt := scanOptions{cols: 1 << c.kind.keyCol()}
	return scan(ctx, src, f, opt, func(r Row) error {
		c.Add(r)
		return nil
	})
}

// Counts returns the groups: by second in time order, otherwise largest
// first, ties by name.
func (c *Counter) Counts() []Count {
	if c.kind == BySecond {
		secs := make([]int64, 0, len(c.seconds))
		for s := range c.seconds {
			secs = append(secs, s)
		}
		slices.Sort(secs)
		out := make([]Count, 0, len(secs)+1)
		for _, s := range secs {
			out = append(out, Count{Key: strconv.FormatInt(s, 10), N: c.seconds[s]})
		}
		if c.unknown > 0 {
			out = append(out, Count{Key: unknownSecond, N: c.unknown})
		}
		return out
	}
	out := make([]Count, 0, len(c.keys))
	for k, n := range c.keys {
		out = append(out, Count{Key: k, N: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.N != b.N {
			return cmp.Compare(b.N, a.N)
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}
