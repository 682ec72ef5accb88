package annotate

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/internal/font"
	"github.com/vidpipe/vidpipe/media/decode"
)

func TestClipBox(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	tests := []struct {
		name string
		box  Box
		want image.Rectangle
		ok   bool
	}{
		{"inside", Box{X1: 10.4, Y1: 20.6, X2: 50, Y2: 60}, image.Rect(10, 21, 50, 60), true},
		{"clipped", Box{X1: -30, Y1: -5, X2: 500, Y2: 90}, image.Rect(0, 0, 100, 80), true},
		{"outside right", Box{X1: 120, Y1: 10, X2: 150, Y2: 20}, image.Rectangle{}, false},
		{"outside above", Box{X1: 10, Y1: -50, X2: 20, Y2: -1}, image.Rectangle{}, false},
		{"inverted", Box{X1: 50, Y1: 10, X2: 20, Y2: 30}, image.Rectangle{}, false},
		{"nan", Box{X1: nan, Y1: 10, X2: 20, Y2: 30}, image.Rectangle{}, false},
		{"inf", Box{X1: 0, Y1: 0, X2: inf, Y2: 30}, image.Rectangle{}, false},
		{"huge", Box{X1: -3e38, Y1: -3e38, X2: 3e38, Y2: 3e38}, image.Rect(0, 0, 100, 80), true},
		{"empty", Box{X1: 10, Y1: 10, X2: 10, Y2: 30}, image.Rectangle{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := clipBox(tc.box, 100, 80)
			if ok != tc.ok || got != tc.want {
				t.Errorf("clipBox = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// grey is a mid-grey test picture.
func grey(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	return img
}

func TestDrawRGBA(t *testing.T) {
	img := grey(200, 100)
	boxes := []Box{
		{X1: 20, Y1: 30, X2: 80, Y2: 90, ClassID: 0, Label: "person", Conf: 0.87},
		{X1: 150, Y1: -20, X2: 400, Y2: 40, ClassID: 23, Label: "giraffe", Conf: 1},
		{X1: 300, Y1: 300, X2: 400, Y2: 400, ClassID: 5}, // off the picture
		{X1: float32(math.NaN()), ClassID: 6},
		{X1: 90, Y1: 90, X2: 10, Y2: 10, ClassID: 7},
		{X1: 1, Y1: 1, X2: 199, Y2: 99, ClassID: -3, Label: string(make([]byte, 300)) + "é"},
	}
	drawBoxes(rgbaCanvas{img}, boxes[:5], styleFor(200, 100), bt601)

	red := classColour(0, bt601)
	at := func(x, y int) color.RGBA { return img.RGBAAt(x, y) }
	want := color.RGBA{red.r, red.g, red.b, 255}
	for _, p := range []image.Point{{20, 60}, {21, 60}, {79, 60}, {50, 30}, {50, 89}} {
		if got := at(p.X, p.Y); got != want {
			t.Errorf("outline pixel %v = %v, want %v", p, got, want)
		}
	}
	for _, p := range []image.Point{{22, 60}, {50, 32}, {19, 60}, {50, 90}, {100, 95}} {
		if got := at(p.X, p.Y); got != (color.RGBA{128, 128, 128, 128}) {
			t.Errorf("pixel %v = %v, want untouched", p, got)
		}
	}
	// The label sits above the box: background colour with light text.
	var bg, ink int
	for y := 30 - font.CellH - 1; y < 30; y++ {
		for x := 20; x < 20+font.TextWidth("person 0.87")+2; x++ {
			switch at(x, y) {
			case want:
				bg++
			case color.RGBA{255, 255, 255, 255}:
				ink++
			}
		}
	}
	if bg == 0 || ink < 40 {
		t.Errorf("label has %d background and %d text pixels", bg, ink)
	}
	// The giraffe box leaves the frame at the top: its label moves inside
	// and shifts left to stay in the picture.
	g := classColour(23, bt601)
	if got := at(199, 2); got != (color.RGBA{g.r, g.g, g.b, 255}) {
		t.Errorf("clipped box corner = %v, want %v", got, g)
	}

	// Hostile labels and class ids must not panic.
	drawBoxes(rgbaCanvas{img}, boxes[5:], styleFor(200, 100), bt601)
}

func TestDrawYUVMatchesRGBA(t *testing.T) {
	const w, h = 64, 48
	y := bytes.Repeat([]byte{128}, w*h)
	u := bytes.Repeat([]byte{128}, w*h/4)
	v := bytes.Repeat([]byte{128}, w*h/4)
	cv := &yuvCanvas{w: w, h: h, y: y, u: u, v: v, yStride: w, cStride: w / 2}
	drawBoxes(cv, []Box{{X1: 10, Y1: 20, X2: 40, Y2: 47, ClassID: 9, Label: "boat", Conf: 0.5}}, styleFor(w, h), bt601)
	c := classColour(9, bt601)
	if y[30*w+10] != c.y || u[15*w/2+5] != c.u || v[15*w/2+5] != c.v {
		t.Errorf("outline YUV = %d,%d,%d; want %d,%d,%d", y[30*w+10], u[15*w/2+5], v[15*w/2+5], c.y, c.u, c.v)
	}
	if y[30*w+30] != 128 || u[15*w/2+15] != 128 {
		t.Errorf("inside the box changed: Y %d U %d", y[30*w+30], u[15*w/2+15])
	}
}

func TestColour(t *testing.T) {
	// Limited-range BT.601 of pure red, as swscale computes it.
	if c := newColour(255, 0, 0, bt601); c.y != 81 || c.u != 90 || c.v != 240 {
		t.Errorf("red BT.601 = %d,%d,%d; want 81,90,240", c.y, c.u, c.v)
	}
	if c := newColour(255, 255, 255, bt709); c.y != 235 || c.u != 128 || c.v != 128 {
		t.Errorf("white BT.709 = %d,%d,%d; want 235,128,128", c.y, c.u, c.v)
	}
	if classColour(-1, bt601) != classColour(19, bt601) {
		t.Error("negative class id does not wrap")
	}
}

func TestGlyph(t *testing.T) {
	if font.Glyph('é') != font.Glyph('?') || font.Glyph(0) != font.Glyph('?') {
		t.Error("non-ASCII does not draw as '?'")
	}
	if *font.Glyph(' ') != [font.W]byte{} {
		t.Error("space has ink")
	}
	if got := font.TextWidth("ab"); got != 11 {
		t.Errorf("font.TextWidth(ab) = %d, want 11", got)
	}
}

// TestPreview checks the preview Write takes during its pass: the analysed
// frame with the most boxes, upright at its own size, boxes drawn, pixels
// elsewhere as the ffmpeg CLI decodes them.
func TestPreview(t *testing.T) {
	tests := []struct {
		clip string
		w, h int
	}{
		{"h264.mp4", 768, 576},
		{"rot90.mp4", 576, 768},
		{"odd444.mp4", 321, 239},
	}
	for _, tc := range tests {
		t.Run(tc.clip, func(t *testing.T) {
			src := clipPath(t, tc.clip)
			boxes := testBoxes(tc.w, tc.h)
			dir := t.TempDir()
			path := filepath.Join(dir, "preview.png")
			// Frame 7 has the most boxes; frame 3, analysed earlier, one.
			dets := func(i int) ([]Box, bool) {
				switch i {
				case 3:
					return boxes[:1], true
				case 7:
					return boxes, true
				}
				return nil, i%2 == 0
			}
			st, err := Write(context.Background(), src, nil, filepath.Join(dir, "annotated.mp4"), dets, Options{Preview: path})
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if st.PreviewFrame != 7 {
				t.Errorf("preview shows frame %d, want 7", st.PreviewFrame)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decode png: %v", err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("png is %v, want %dx%d", b, tc.w, tc.h)
			}
			c := classColour(0, bt601)
			x, y := int(math.Round(float64(boxes[0].X1))), int(math.Round(float64(boxes[0].Y2)))-5
			if r, g, b, _ := img.At(x, y).RGBA(); uint8(r>>8) != c.r || uint8(g>>8) != c.g || uint8(b>>8) != c.b {
				t.Errorf("outline pixel = %d,%d,%d; want %d,%d,%d", r>>8, g>>8, b>>8, c.r, c.g, c.b)
			}
			// Away from the boxes the still is the CLI's decode of the frame.
			want := rgbFrame(t, src, 7, tc.w, tc.h)
			rgba := image.NewRGBA(img.Bounds())
			for py := range tc.h {
				for px := range tc.w {
					rgba.Set(px, py, img.At(px, py))
				}
			}
			got := make([]byte, 0, tc.w*tc.h*3)
			for i := 0; i < len(rgba.Pix); i += 4 {
				got = append(got, rgba.Pix[i:i+3]...)
			}
			if d := meanAbsDiff(got, tc.w, want, tc.w, image.Rect(tc.w*6/10, tc.h/2, tc.w, tc.h)); d > 3 {
				t.Errorf("pixels away from boxes differ from ffmpeg's decode by %.1f on average", d)
			}
		})
	}
	t.Run("nothing analysed", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "preview.png")
		st, err := Write(context.Background(), clipPath(t, "odd444.mp4"), nil, filepath.Join(dir, "annotated.mp4"), nil, Options{Preview: path})
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) || st.PreviewFrame != -1 {
			t.Errorf("preview frame %d, stat %v; want none", st.PreviewFrame, err)
		}
	})
}

// TestDrawPNGSample draws a vtest frame for eyeballing; set
// VIDPIPE_ANNOTATE_PNG to keep the picture at that path.
func TestDrawPNGSample(t *testing.T) {
	path := os.Getenv("VIDPIPE_ANNOTATE_PNG")
	if path == "" {
		path = filepath.Join(t.TempDir(), "sample.png")
	}
	boxes := []Box{
		{X1: 60, Y1: 250, X2: 130, Y2: 420, ClassID: 0, Label: "person", Conf: 0.87},
		{X1: 380, Y1: 200, X2: 440, Y2: 330, ClassID: 0, Label: "person", Conf: 0.64},
		{X1: 600, Y1: 0, X2: 800, Y2: 90, ClassID: 2, Label: "car", Conf: 0.41},
		{X1: 250, Y1: 450, X2: 520, Y2: 570, ClassID: 24, Label: "backpack", Conf: 0.33},
		{X1: 10, Y1: 10, X2: 330, Y2: 40, ClassID: 13, Label: "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLM", Conf: 1},
		{X1: 10, Y1: 60, X2: 330, Y2: 90, ClassID: 17, Label: "NOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~", Conf: 0.5},
	}
	const w, h = 768, 576
	rgb := rgbFrame(t, sampleVideo(t), 100, w, h)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		copy(img.Pix[4*i:4*i+3], rgb[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	if err := DrawPNG(path, img, boxes); err != nil {
		t.Fatalf("DrawPNG: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestHoldBoxes(t *testing.T) {
	person := []Box{{X1: 1, Y1: 1, X2: 5, Y2: 5, Label: "person"}}
	analysed := map[int]bool{0: true, 3: true, 4: true}
	a := annotator{
		tb:    astiav.NewRational(1, 10),
		dispW: 8, dispH: 8,
		dets: func(i int) ([]Box, bool) {
			if i == 4 {
				return nil, true // analysed, nothing found
			}
			return person, analysed[i]
		},
	}
	// Clock time in tenths of a second: frame 2 is 1 s after frame 0, frame 3 is 1.1 s.
	times := []int64{0, 5, 10, 11, 12, 13}
	want := []int{1, 1, 1, 1, 0, 0}
	for i, tm := range times {
		draw, own := a.boxes(&decode.Picture{Index: i, Time: tm, Width: 8, Height: 8})
		if got := len(draw); got != want[i] {
			t.Errorf("frame %d: %d boxes, want %d", i, got, want[i])
		}
		if (own != nil) != analysed[i] {
			t.Errorf("frame %d: own boxes %v, analysed %v", i, own, analysed[i])
		}
	}
	if a.analysed != 3 {
		t.Errorf("analysed %d, want 3", a.analysed)
	}
}
