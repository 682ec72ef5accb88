package decode

import (
	"fmt"
	"math"
	"os/exec"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/model/detect"
)

// TestPlace checks letterbox geometry against YOLOv5's letterbox() and
// scale-back formulas, evaluated with Python (round-half-even included).
func TestPlace(t *testing.T) {
	tests := []struct {
		w, h, size            int
		newW, newH, left, top int
		gain, padX, padY      float64
	}{
		{768, 576, 640, 640, 480, 0, 80, 0.8333333333333334, 0, 80},
		{576, 768, 640, 480, 640, 80, 0, 0.8333333333333334, 80, 0},
		{321, 239, 640, 640, 477, 0, 81, 1.9937694704049844, 0, 81.74454828660436},
		{1920, 1080, 640, 640, 360, 0, 140, 0.3333333333333333, 0, 140},
		{1080, 1920, 640, 360, 640, 140, 0, 0.3333333333333333, 140, 0},
		{100, 50, 640, 640, 320, 0, 160, 6.4, 0, 160},
		{333, 1000, 640, 213, 640, 213, 0, 0.64, 213.44, 0},
		{1280, 101, 640, 640, 50, 0, 295, 0.5, 0, 294.75}, // 50.5 rounds to even
		{1280, 103, 640, 640, 52, 0, 294, 0.5, 0, 294.25}, // 51.5 rounds to even
		{720, 528, 640, 640, 469, 0, 85, 0.8888888888888888, 0, 85.33333333333334},
		{640, 640, 640, 640, 640, 0, 0, 1, 0, 0},
		{1, 1, 640, 640, 640, 0, 0, 640, 0, 0},
		{7, 3, 5, 5, 2, 0, 1, 0.7142857142857143, 0, 1.4285714285714286},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d_%d", tt.w, tt.h, tt.size), func(t *testing.T) {
			p := place(tt.w, tt.h, tt.size)
			want := placement{tt.newW, tt.newH, tt.left, tt.top, tt.gain, tt.padX, tt.padY}
			if p != want {
				t.Errorf("place = %+v, want %+v", p, want)
			}
		})
	}
}

// TestLetterboxMatchesFFmpeg compares PreprocessFast's letterboxes, first frames, with
// the ffmpeg CLI running the same swscale steps: for 8-bit 4:2:0 sources a
// bilinear resize in the source format then a conversion to rgb24, for others
// one bilinear resize to rgb24; then pad. It also reports the distance to
// the one-pass chain, the quality cost of the two-pass speed-up.
func TestLetterboxMatchesFFmpeg(t *testing.T) {
	const size, frames = 640, 3
	tests := []struct {
		clip       string
		maxMean    float64 // mean absolute difference to the same chain, 0-255
		maxMeanOne float64 // ... to the one-pass chain
	}{
		{"h264.mp4", 0.01, 1.5},
		{"mjpeg.avi", 0.01, 1.5},  // full-range yuvj420p
		{"odd10.mkv", 0.01, 0.01}, // 10-bit 4:4:4, odd size, upscaled: one pass
		{"tree.avi", 0.01, 0.01},  // rgb24 source: one pass
		// ffmpeg rotates before scaling, we after.
		{"rot90.mp4", 0.3, 1.5},
		{"rot180.mp4", 0.3, 1.5},
		{"rot270.mp4", 0.3, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			path := clips[tt.clip]
			recs, _, info := decodeAll(t, path, nil, Options{Size: size, Preprocess: PreprocessFast}, frames)
			p := place(info.Width, info.Height, size)
			pad := fmt.Sprintf("pad=%d:%d:%d:%d:color=0x727272", size, size, p.Left, p.Top)
			one := fmt.Sprintf("scale=%d:%d:flags=bilinear,format=rgb24,%s", p.NewW, p.NewH, pad)
			same := one
			if twoPass(astiav.FindPixelFormatByName(info.PixelFormat)) {
				same = fmt.Sprintf("scale=%d:%d:flags=bilinear,format=%s,scale=flags=bilinear,format=rgb24,%s",
					p.NewW, p.NewH, info.PixelFormat, pad)
			}
			for _, ref := range []struct {
				name, vf string
				maxMean  float64
			}{{"same chain", same, tt.maxMean}, {"one pass", one, tt.maxMeanOne}} {
				want := ffmpegRGB(t, path, ref.vf, frames, size)
				for i := range frames {
					mean, maxd, padBad := compareLetterbox(recs[i].Pixels, want[i], p, size)
					t.Logf("%s, frame %d: %dx%d at (%d,%d), mean abs diff %.4f, max %.0f", ref.name, i, p.NewW, p.NewH, p.Left, p.Top, mean, maxd)
					if padBad > 0 {
						t.Errorf("frame %d: %d padding bytes are not %d", i, padBad, detect.PadValue)
					}
					if mean > ref.maxMean {
						t.Errorf("%s, frame %d: mean abs diff %.3f > %.3f", ref.name, i, mean, ref.maxMean)
					}
				}
			}
		})
	}
}

// ffmpegRGB returns the first frames of path through the filter chain vf as
// packed rgb24 pictures of size x size. ffmpeg applies the display matrix
// itself (autorotate); passthrough keeps it from duplicating frames.
func ffmpegRGB(t *testing.T, path, vf string, frames, size int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-frames:v", fmt.Sprint(frames),
		"-fps_mode", "passthrough", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg -vf %s: %v", vf, err)
	}
	n := size * size * 3
	if len(out) != frames*n {
		t.Fatalf("ffmpeg -vf %s: %d bytes, want %d", vf, len(out), frames*n)
	}
	var pics [][]byte
	for i := range frames {
		pics = append(pics, out[i*n:(i+1)*n])
	}
	return pics
}

// compareLetterbox returns the mean and max absolute difference inside the
// picture area and how many of our padding bytes are not detect.PadValue.
func compareLetterbox(got, want []byte, p placement, size int) (mean, maxd float64, padBad int) {
	var sum float64
	for y := range size {
		for x := range size {
			inside := x >= p.Left && x < p.Left+p.NewW && y >= p.Top && y < p.Top+p.NewH
			for c := range 3 {
				o := (y*size+x)*3 + c
				if !inside {
					if got[o] != detect.PadValue {
						padBad++
					}
					continue
				}
				d := math.Abs(float64(got[o]) - float64(want[o]))
				sum += d
				maxd = max(maxd, d)
			}
		}
	}
	return sum / float64(p.NewW*p.NewH*3), maxd, padBad
}
