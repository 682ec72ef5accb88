package annotate

import (
	"bytes"
	"context"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/media/decode"
)

// testBoxes places one box of class 0 in the left half of a w x h display
// picture, one of class 2 leaving the frame at the top right, and two
// malformed boxes that must be skipped.
func testBoxes(w, h int) []Box {
	fw, fh := float32(w), float32(h)
	nan := float32(math.NaN())
	return []Box{
		{X1: 0.16 * fw, Y1: 0.3 * fh, X2: 0.46 * fw, Y2: 0.8 * fh, ClassID: 0, Label: "person", Conf: 0.87},
		{X1: 0.8 * fw, Y1: -10, X2: 1.3 * fw, Y2: 0.3 * fh, ClassID: 2, Label: "car", Conf: 0.5},
		{X1: nan, Y1: 0, X2: 10, Y2: 10, ClassID: 1, Label: "nan"},
		{X1: 0.9 * fw, Y1: 0.9 * fh, X2: 0.6 * fw, Y2: 0.6 * fh, ClassID: 1, Label: "inverted"},
	}
}

// meanRGB averages the pixels of r in a packed RGB24 picture of width w.
func meanRGB(pix []byte, w int, r image.Rectangle) [3]float64 {
	var sum [3]float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			for c := range 3 {
				sum[c] += float64(pix[(y*w+x)*3+c])
			}
		}
	}
	n := float64(r.Dx() * r.Dy())
	return [3]float64{sum[0] / n, sum[1] / n, sum[2] / n}
}

// meanAbsDiff compares region r of two RGB24 pictures of widths wa and wb.
func meanAbsDiff(a []byte, wa int, b []byte, wb int, r image.Rectangle) float64 {
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			for c := range 3 {
				sum += math.Abs(float64(a[(y*wa+x)*3+c]) - float64(b[(y*wb+x)*3+c]))
			}
		}
	}
	return sum / float64(3*r.Dx()*r.Dy())
}

func TestWrite(t *testing.T) {
	tests := []struct {
		clip         string
		wantW, wantH int // display size, even
	}{
		{"h264.mp4", 768, 576},
		{"mjpeg.avi", 768, 576},
		{"odd444.mp4", 320, 238},
		{"ten.mkv", 768, 576},
		{"vfr.mp4", 768, 576},
		{"rot90.mp4", 576, 768},
	}
	for _, tc := range tests {
		t.Run(tc.clip, func(t *testing.T) {
			src := clipPath(t, tc.clip)
			sp := probe(t, src)
			srcW, srcH := sp.width, sp.height // display size of the source
			if sp.rotation%180 != 0 {
				srcW, srcH = srcH, srcW
			}
			boxes := testBoxes(tc.wantW, tc.wantH)
			var asked []int
			dets := func(i int) ([]Box, bool) {
				asked = append(asked, i)
				return boxes, i%2 == 0 // odd frames show the held boxes
			}
			dst := filepath.Join(t.TempDir(), "annotated.mp4")
			st, err := Write(context.Background(), src, nil, dst, dets, Options{CRF: 18})
			if err != nil {
				t.Fatalf("Write: %v", err)
			}

			op := probe(t, dst)
			if op.codec != "h264" || op.width != tc.wantW || op.height != tc.wantH || op.rotation != 0 {
				t.Errorf("output %s %dx%d rotation %d, want h264 %dx%d rotation 0", op.codec, op.width, op.height, op.rotation, tc.wantW, tc.wantH)
			}
			if op.frames != sp.frames || st.Frames != sp.frames || len(asked) != sp.frames {
				t.Errorf("frames: output %d, stats %d, asked %d; source %d", op.frames, st.Frames, len(asked), sp.frames)
			}
			if st.Width != tc.wantW || st.Height != tc.wantH || st.Analysed != (sp.frames+1)/2 {
				t.Errorf("stats %+v", st)
			}
			if len(op.pts) != len(sp.pts) {
				t.Fatalf("output has %d timestamps, source %d", len(op.pts), len(sp.pts))
			}
			for i := range sp.pts {
				// ffprobe prints microseconds; both files keep exact ticks.
				if math.Abs(op.pts[i]-sp.pts[i]) > 1e-5 {
					t.Errorf("frame %d at %.6f s, source at %.6f s", i, op.pts[i], sp.pts[i])
				}
			}

			// Frame 3 is not analysed: it shows frame 2's boxes.
			const n = 3
			w, h := tc.wantW, tc.wantH
			got := rgbFrame(t, dst, n, w, h)
			want := rgbFrame(t, src, n, srcW, srcH)
			b := boxes[0]
			x1, y1, y2 := int(math.Round(float64(b.X1))), int(math.Round(float64(b.Y1))), int(math.Round(float64(b.Y2)))
			edge := image.Rect(x1, y1+10, x1+2, y2-10) // left outline, 2 px wide
			c := classColour(b.ClassID, bt601)
			m := meanRGB(got, w, edge)
			for i, v := range [3]uint8{c.r, c.g, c.b} {
				if math.Abs(m[i]-float64(v)) > 20 {
					t.Errorf("box outline mean RGB %.0f, want about %v", m, [3]uint8{c.r, c.g, c.b})
					break
				}
			}
			if before := meanRGB(want, srcW, edge); math.Abs(before[0]-m[0])+math.Abs(before[1]-m[1])+math.Abs(before[2]-m[2]) < 60 {
				t.Errorf("outline RGB %.0f barely differs from the source's %.0f", m, before)
			}
			far := image.Rect(w*6/10, h/2, w, h) // no box or label there
			if d := meanAbsDiff(got, w, want, srcW, far); d > 4 {
				t.Errorf("pixels away from boxes differ from the source by %.1f on average", d)
			}
		})
	}
}

func TestWriteReader(t *testing.T) {
	src := clipPath(t, "mjpeg.avi")
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dst := filepath.Join(t.TempDir(), "annotated.mp4")
	st, err := Write(context.Background(), "s3://bucket/mjpeg.avi", f, dst, nil, Options{})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if want := probe(t, src).frames; st.Frames != want || probe(t, dst).frames != want {
		t.Errorf("wrote %d frames, want %d", st.Frames, want)
	}
	if st.Duration < 1.99 || st.Duration > 2.01 {
		t.Errorf("duration %.3f s, want 2 s", st.Duration)
	}
}

func TestWriteBadInput(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(text, []byte("this is not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(clipPath(t, "h264.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mp4")
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// A concat list naming a clip beside it: opening it would read another
	// file, which untrusted inputs must never do.
	concat := filepath.Join(clipsDir, "list.ffconcat")
	if err := os.WriteFile(concat, []byte("ffconcat version 1.0\nfile h264.mp4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(clipsDir) // so the relative name would resolve

	tests := []struct {
		name string
		src  string
		want error
	}{
		{"missing", filepath.Join(dir, "missing.mp4"), os.ErrNotExist},
		{"text", text, decode.ErrNotVideo},
		{"truncated", truncated, decode.ErrCorrupt},
		{"audio only", clipPath(t, "audio.m4a"), decode.ErrNotVideo},
		{"nested", concat, decode.ErrFormatNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			dst := filepath.Join(out, "annotated.mp4")
			_, err := Write(context.Background(), tc.src, nil, dst, nil, Options{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Write error %v, want %v", err, tc.want)
			}
			t.Log(err)
			if n := strings.Count(err.Error(), tc.src); n != 1 {
				t.Errorf("error %q names %s %d times, want once", err, tc.src, n)
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("left %d files behind, e.g. %s", len(left), left[0].Name())
			}
		})
	}
}

func TestWriteCancel(t *testing.T) {
	src := clipPath(t, "h264.mp4")
	out := t.TempDir()
	dst := filepath.Join(out, "annotated.mp4")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	last := -1
	dets := func(i int) ([]Box, bool) {
		last = i
		if i == 5 {
			cancel()
		}
		return nil, true
	}
	_, err := Write(ctx, src, nil, dst, dets, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write error %v, want context.Canceled", err)
	}
	if last > 6 {
		t.Errorf("kept going to frame %d after cancelling at frame 5", last)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("left %d files behind, e.g. %s", len(left), left[0].Name())
	}
}

func TestWriteDamaged(t *testing.T) {
	full, err := os.ReadFile(clipPath(t, "mjpeg.avi"))
	if err != nil {
		t.Fatal(err)
	}
	// Break the headers of the 10th JPEG (after its SOI marker) and leave the
	// container intact: the decoder must reject that packet only.
	soi := 0
	for i := 0; i < 10; i++ {
		soi += bytes.Index(full[soi+1:], []byte{0xff, 0xd8, 0xff}) + 1
	}
	for i := soi + 2; i < soi+600; i++ {
		full[i] = 0xff
	}
	src := filepath.Join(t.TempDir(), "damaged.avi")
	if err := os.WriteFile(src, full, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "annotated.mp4")
	st, err := Write(context.Background(), src, nil, dst, nil, Options{})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	want := probe(t, src).frames
	if st.DecodeErrors == 0 || st.Frames != want || want >= 20 {
		t.Errorf("stats %+v: want %d frames (of 20) and decode errors", st, want)
	}
	if got := probe(t, dst).frames; got != st.Frames {
		t.Errorf("output has %d frames, stats say %d", got, st.Frames)
	}
}
