package coordinator

import (
	"bytes"
	"image/png"
	"testing"
	"time"
)

func TestThroughputChart(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	// w1 does 2 frames/s for 10 s; w2 joins at 5 s with 4 frames/s.
	done := map[string][]int64{}
	for i := range 20 {
		done["w1"] = append(done["w1"], t0+int64(i)*sec/2)
	}
	for i := range 20 {
		done["w2"] = append(done["w2"], t0+5*sec+int64(i)*sec/4)
	}
	c, ok := throughputChart("j", done)
	if !ok {
		t.Fatal("no chart")
	}
	if len(c.Series) != 3 || c.Series[0].Name != "all" || c.Series[1].Name != "w1" || c.Series[2].Name != "w2" {
		t.Fatalf("series %+v", c.Series)
	}
	var sum float64
	for _, p := range c.Series[0].Points {
		sum += p.Y // one-second buckets: frames/s sums to frames
	}
	if sum != 40 {
		t.Errorf("the all series counts %v frames, want 40", sum)
	}
	if y := c.Series[2].Points[0].Y; y != 0 {
		t.Errorf("w2 before it joined: %v frames/s", y)
	}
	if y := c.Series[2].Points[6].Y; y != 4 {
		t.Errorf("w2 at 6 s: %v frames/s, want 4", y)
	}
	if _, ok := throughputChart("j", map[string][]int64{"w": nil}); ok {
		t.Error("a chart with no results")
	}

	b, err := drawThroughput("j", done)
	if err != nil || b == nil {
		t.Fatalf("draw: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}
