package coordinator

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vidpipe/vidpipe/coordinator/chart"
)

// ThroughputFile is the job's chart of frames per second over time, one
// line per worker and one for all: where workers joined, left or slowed.
const ThroughputFile = "throughput.png"

// throughputChart buckets each worker's result times into frames per second
// over the job, in about 60 steps of at least a second. It reports false
// when there is nothing to draw.
func throughputChart(job string, done map[string][]int64) (chart.Chart, bool) {
	start, end := int64(math.MaxInt64), int64(0)
	workers := make([]string, 0, len(done))
	for w, ts := range done {
		workers = append(workers, w)
		for _, t := range ts {
			if t > 0 {
				start, end = min(start, t), max(end, t)
			}
		}
	}
	if end == 0 {
		return chart.Chart{}, false
	}
	slices.Sort(workers)
	// Whole seconds: about 60 steps, at least one second each.
	bucket := time.Duration(math.Ceil((time.Duration(end-start) / 60).Seconds())) * time.Second
	bucket = max(bucket, time.Second)
	n := int(time.Duration(end-start)/bucket) + 1
	series := func(name string, ts ...[]int64) chart.Series {
		counts := make([]int, n)
		for _, list := range ts {
			for _, t := range list {
				if t > 0 {
					counts[int(time.Duration(t-start)/bucket)]++
				}
			}
		}
		s := chart.Series{Name: name}
		for i, c := range counts {
			x := (time.Duration(i)*bucket + bucket/2).Seconds()
			s.Points = append(s.Points, chart.Point{X: x, Y: float64(c) / bucket.Seconds()})
		}
		return s
	}
	all := make([][]int64, 0, len(workers))
	for _, w := range workers {
		all = append(all, done[w])
	}
	c := chart.Chart{
		Title:  fmt.Sprintf("job %s: frames/s", job),
		XLabel: "seconds", YLabel: fmt.Sprintf("frames/s, per %s", bucket),
		Series: []chart.Series{series("all", all...)},
	}
	for _, w := range workers {
		c.Series = append(c.Series, series(w, done[w]))
	}
	return c, true
}

// drawThroughput draws the job's throughput chart as a PNG; nil when there
// is nothing to draw.
func drawThroughput(job string, done map[string][]int64) ([]byte, error) {
	c, ok := throughputChart(job, done)
	if !ok {
		return nil, nil
	}
	var b bytes.Buffer
	if err := chart.Draw(&b, c); err != nil {
		return nil, fmt.Errorf("throughput chart: %w", err)
	}
	return b.Bytes(), nil
}
