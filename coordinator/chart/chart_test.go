package chart

import (
	"bytes"
	"errors"
	"image/png"
	"math"
	"testing"
)

func TestDraw(t *testing.T) {
	c := Chart{Title: "job j: frames/s", XLabel: "seconds", YLabel: "frames/s", Series: []Series{
		{Name: "all", Points: []Point{{0, 0}, {10, 12.5}, {20, 13}, {30, 2}}},
		{Name: "worker-1", Points: []Point{{0, 0}, {10, 6}, {20, 0}}},
		{Name: "late", Points: []Point{{25, 4}}},
	}}
	var b bytes.Buffer
	if err := Draw(&b, c); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != width || r.Dy() != height {
		t.Fatalf("picture is %v", r)
	}
	// Every series shows: its colour is in the plot, not only the legend.
	for i := range c.Series {
		want := Colour(i)
		n := 0
		for y := top; y < height-bottom; y++ {
			for x := left + 2; x < width-right; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B {
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("series %d (%s) is not drawn", i, c.Series[i].Name)
		}
	}
}

func TestDrawRefuses(t *testing.T) {
	if err := Draw(&bytes.Buffer{}, Chart{Series: []Series{{Name: "x"}}}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty chart: %v", err)
	}
	if err := Draw(&bytes.Buffer{}, Chart{Series: []Series{{Points: []Point{{0, math.NaN()}}}}}); err == nil {
		t.Fatal("NaN accepted")
	}
}

func TestNiceStep(t *testing.T) {
	for in, want := range map[float64]float64{0.7: 1, 1.3: 2, 3: 5, 7: 10, 12: 20, 0: 1, 0.03: 0.05} {
		if got := niceStep(in); math.Abs(got-want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", in, got, want)
		}
	}
}
