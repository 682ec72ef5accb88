package decode

import (
	"fmt"
	"math"
	"os/exec"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/model/detect"
)

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
			p, err := detect.Plan(info.Width, info.Height, size, size)
			if err != nil {
				t.Fatal(err)
			}
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
func compareLetterbox(got, want []byte, p detect.Letterbox, size int) (mean, maxd float64, padBad int) {
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
