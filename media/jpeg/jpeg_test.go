package jpeg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	stdjpeg "image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/internal/samples"
)

// TestRoundTrip encodes frames at quality 90 and decodes them: the
// pictures come back within the error JPEG at that quality makes
// (measured on these pictures: PSNR 32.7 dB at 64, 37.1 at 320, 40.2 at
// 640 for the busiest video frame, mean errors 3.6, 2.1 and 1.5 levels;
// 32.8 to 33 dB and 3.9 levels for the pattern at every size; the largest
// errors, 68 to 193 levels, are colour edges, whose chroma 4:2:0 halves), and
// image/jpeg reads the same JPEGs as the same pictures within 4 levels.
func TestRoundTrip(t *testing.T) {
	enc, err := NewEncoder(90)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var dec Decoder
	defer dec.Close()
	for _, tc := range []struct {
		size int
		// bounds for the video frames and for the pattern
		minPSNR, maxMean         float64
		maxErr                   int
		patternPSNR, patternMean float64
	}{
		{64, 31.5, 4, 128, 32, 4.5},
		{320, 36, 2.5, 96, 32, 4.5},
		{640, 39, 1.8, 80, 32, 4.5},
	} {
		for _, p := range pictures(t, tc.size) {
			t.Run(fmt.Sprintf("%d/%s", tc.size, p.name), func(t *testing.T) {
				b, err := enc.Encode(nil, p.rgb, p.size, p.size)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dec.Decode(nil, b, p.size, p.size)
				if err != nil {
					t.Fatal(err)
				}
				mean, maxErr, psnr := diff(p.rgb, got)
				t.Logf("%d bytes: mean error %.2f, max %d, PSNR %.2f dB", len(b), mean, maxErr, psnr)
				minPSNR, maxMean, maxMax := tc.minPSNR, tc.maxMean, tc.maxErr
				if p.name == "pattern" {
					minPSNR, maxMean, maxMax = tc.patternPSNR, tc.patternMean, 224
				}
				if psnr < minPSNR || mean > maxMean || maxErr > maxMax {
					t.Errorf("mean error %.2f, max %d, PSNR %.2f dB: want at most %.2f, %d and at least %.1f dB", mean, maxErr, psnr, maxMean, maxMax, minPSNR)
				}
				std, w, h := stdDecode(t, b)
				if w != p.size || h != p.size {
					t.Fatalf("image/jpeg reads %dx%d", w, h)
				}
				if mean, maxErr, _ := diff(std, got); maxErr > 4 {
					t.Errorf("image/jpeg reads it %.2f levels off on average, %d at most: want at most 4", mean, maxErr)
				}
			})
		}
	}
}

// TestQualityMatchesImageJPEG holds NewEncoder's quality mapping to what it
// promises: at the same quality, pictures as close to the original as
// image/jpeg's (within half a dB of PSNR), in no more bytes.
func TestQualityMatchesImageJPEG(t *testing.T) {
	ps := pictures(t, 640)
	for _, q := range []int{50, 75, 90, 95} {
		enc, err := NewEncoder(q)
		if err != nil {
			t.Fatal(err)
		}
		var dec Decoder
		var ours, std float64
		var ourBytes, stdBytes int
		for _, p := range ps {
			b, err := enc.Encode(nil, p.rgb, p.size, p.size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec.Decode(nil, b, p.size, p.size)
			if err != nil {
				t.Fatal(err)
			}
			_, _, psnr := diff(p.rgb, got)
			ours += psnr / float64(len(ps))
			ourBytes += len(b)
			sb := stdEncode(t, p, q)
			sgot, _, _ := stdDecode(t, sb)
			_, _, psnr = diff(p.rgb, sgot)
			std += psnr / float64(len(ps))
			stdBytes += len(sb)
		}
		enc.Close()
		dec.Close()
		t.Logf("quality %d (qscale %d): %.2f dB in %d bytes a picture; image/jpeg %.2f dB in %d", q, qscale(q), ours, ourBytes/len(ps), std, stdBytes/len(ps))
		if ours < std-0.5 || ourBytes > stdBytes {
			t.Errorf("quality %d: %.2f dB in %d bytes, image/jpeg %.2f dB in %d", q, ours, ourBytes/len(ps), std, stdBytes/len(ps))
		}
	}
	for q, want := range map[int]int{1: 31, 16: 31, 17: 29, 50: 10, 85: 3, 90: 2, 95: 1, 100: 1} {
		if got := qscale(q); got != want {
			t.Errorf("quality %d: qscale %d, want %d", q, got, want)
		}
	}
}

// TestDecodeMatchesImageJPEG decodes JPEGs from other encoders (image/jpeg,
// the ffmpeg CLI at other samplings, libjpeg's files in Go's own test data:
// progressive, restart intervals, odd sizes) and compares with image/jpeg's
// decoding of the same bytes.
//
// Both turn YCbCr to RGB with JFIF's equations; where both repeat chroma
// samples (4:2:0 and 4:2:2 at even heights, 4:4:4, grey) they differ by
// rounding, 4 levels at most. At odd heights swscale interpolates 4:2:0
// chroma and FFmpeg upsamples 4:1:1, 4:1:0 and 4:4:0 itself, while
// image/jpeg repeats: colour edges then differ, the rest does not
// (measured: mean 1.1 to 1.95 levels, PSNR 37 to 40.5 dB).
func TestDecodeMatchesImageJPEG(t *testing.T) {
	type input struct {
		name string
		jpg  []byte
	}
	var inputs []input
	dir := t.TempDir()
	for _, p := range pictures(t, 640) {
		inputs = append(inputs, input{p.name + "/image-jpeg-420", stdEncode(t, p, 90)})
		gray := image.NewGray(image.Rect(0, 0, p.size, p.size))
		for i := range gray.Pix {
			gray.Pix[i] = p.rgb[3*i+1]
		}
		var b bytes.Buffer
		if err := stdjpeg.Encode(&b, gray, &stdjpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{p.name + "/image-jpeg-gray", b.Bytes()})
		raw := filepath.Join(dir, "in.rgb")
		if err := os.WriteFile(raw, p.rgb, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, pf := range []string{"yuvj444p", "yuvj422p"} {
			out := filepath.Join(dir, pf+".jpg")
			samples.FFmpeg(t, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "640x640", "-i", raw, "-pix_fmt", pf, "-q:v", "2", "-frames:v", "1", out)
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, input{p.name + "/ffmpeg-" + pf, b})
		}
	}
	// Whose chroma is resampled differently (see above).
	resampled := map[string]bool{}
	testdata := filepath.Join(goroot(t), "src", "image", "testdata")
	for _, name := range []string{
		"video-001.jpeg", "video-001.progressive.jpeg", "video-001.restart2.jpeg", "video-001.221212.jpeg",
		"video-001.q50.444.jpeg", "video-001.q50.444.progressive.jpeg", "video-001.q50.422.jpeg", "video-001.q50.422.progressive.jpeg",
		"video-001.q50.420.jpeg", "video-001.q50.420.progressive.jpeg", "video-001.separate.dc.progression.progressive.jpeg",
		"video-001.q50.440.jpeg", "video-001.q50.411.progressive.jpeg", "video-001.q50.410.jpeg",
		"video-005.gray.jpeg", "video-005.gray.q50.2x2.progressive.jpeg",
		// Not video-001.rgb.jpeg: FFmpeg 5.1 reads its RGB components as
		// YCbCr, as the ffmpeg CLI does.
	} {
		b, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{"go-testdata/" + name, b})
		resampled["go-testdata/"+name] = strings.Contains(name, ".q50.4") && !strings.Contains(name, "444") && !strings.Contains(name, "422") ||
			strings.Contains(name, "separate") || strings.Contains(name, "restart2")
	}
	var dec Decoder
	defer dec.Close()
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			want, w, h := stdDecode(t, in.jpg)
			got, err := dec.Decode(nil, in.jpg, w, h)
			if err != nil {
				t.Fatal(err)
			}
			mean, maxErr, psnr := diff(want, got)
			t.Logf("%dx%d: mean %.3f, max %d, PSNR %.2f dB against image/jpeg", w, h, mean, maxErr, psnr)
			if resampled[in.name] {
				if mean > 2.5 || psnr < 36 {
					t.Errorf("mean %.3f, PSNR %.2f dB: want at most 2.5 and at least 36 dB", mean, psnr)
				}
			} else if mean > 0.6 || maxErr > 4 {
				t.Errorf("mean %.3f, max %d: want at most 0.6 and 4", mean, maxErr)
			}
		})
	}
}

func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// sof0 is the offset of the SOF0 segment in b.
func sof0(t testing.TB, b []byte) int {
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	return i
}

// withSOF returns b with its SOF0 declaring w x h.
func withSOF(t testing.TB, b []byte, w, h int) []byte {
	b = bytes.Clone(b)
	i := sof0(t, b)
	b[i+5], b[i+6], b[i+7], b[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	return b
}

// hiddenSOF returns b with a SOF0 declaring w x h in the unused tail of
// its first DQT segment: the segment's length covers it, so header skips
// it, but FFmpeg reads a DQT by its tables and then looks for the next
// marker, and takes it as the frame header.
func hiddenSOF(t testing.TB, b []byte, w, h int) []byte {
	i := bytes.Index(b, []byte{0xFF, 0xDB})
	if i < 0 {
		t.Fatal("no DQT")
	}
	n := int(b[i+2])<<8 | int(b[i+3])
	sof := []byte{0xFF, 0xC0, 0, 11, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0}
	out := append(bytes.Clone(b[:i+2+n]), sof...)
	out[i+2], out[i+3] = byte((n+len(sof))>>8), byte(n+len(sof))
	return append(out, b[i+2+n:]...)
}

// grayJPEG is image/jpeg's grey side x side JPEG of a gradient.
func grayJPEG(t testing.TB, side int) []byte {
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := stdjpeg.Encode(&b, img, &stdjpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDecodeRefuses feeds the decoder what may come off the bus instead of
// a frame: each gives its error, none a picture.
func TestDecodeRefuses(t *testing.T) {
	enc, err := NewEncoder(90)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	good, err := enc.Encode(nil, pictures(t, 64)[0].rgb, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	gray := grayJPEG(t, 64)
	rng := rand.New(rand.NewPCG(3, 3))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.IntN(256))
	}
	sof3 := bytes.Clone(good)
	sof3[sof0(t, sof3)+1] = 0xC3
	bits12 := bytes.Clone(good)
	bits12[sof0(t, bits12)+4] = 12
	for _, tc := range []struct {
		name string
		jpg  []byte
		want error
		text string
	}{
		{"empty", nil, ErrCorrupt, "no start-of-image marker"},
		{"garbage", garbage, ErrCorrupt, "no start-of-image marker"},
		{"garbage after SOI", append([]byte{0xFF, 0xD8}, garbage...), ErrCorrupt, "want a marker"},
		{"garbage after the header", append(bytes.Clone(good[:sof0(t, good)+19]), append(garbage, 0xFF, 0xD9)...), ErrCorrupt, ""},
		{"no end-of-image marker", good[:len(good)-2], ErrCorrupt, "no end-of-image marker"},
		{"smaller than the frame", withSOF(t, good, 32, 64), ErrSize, "header declares 32x64, the frame is 64x64"},
		{"bomb", withSOF(t, gray, 65500, 65500), ErrSize, "header declares 65500x65500, the frame is 64x64"},
		// The header says 64x64; FFmpeg finds the hidden 128x128 frame
		// header first, and max_pixels stops it.
		{"hidden larger frame header", hiddenSOF(t, gray, 128, 128), ErrCorrupt, "Invalid argument"},
		{"lossless", sof3, ErrUnsupported, "frame header 0xc3"},
		{"12-bit", bits12, ErrUnsupported, "12-bit samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dec Decoder
			defer dec.Close()
			rgb, err := dec.Decode(nil, tc.jpg, 64, 64)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.text) {
				t.Fatalf("error %v, want %v saying %q", err, tc.want, tc.text)
			}
			if rgb != nil {
				t.Errorf("%d bytes of picture with the error", len(rgb))
			}
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		var dec Decoder
		defer dec.Close()
		for n := range len(good) {
			if _, err := dec.Decode(nil, good[:n], 64, 64); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("first %d of %d bytes: error %v, want ErrCorrupt", n, len(good), err)
			}
		}
	})
}

// TestDecoderRecovers interleaves good frames with bad ones on one
// Decoder: nothing of a refused frame changes the next good one.
func TestDecoderRecovers(t *testing.T) {
	ps := pictures(t, 64)
	enc, err := NewEncoder(90)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	a, err := enc.Encode(nil, ps[0].rgb, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	var fresh Decoder
	defer fresh.Close()
	want, err := fresh.Decode(nil, a, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	var dec Decoder
	defer dec.Close()
	buf := make([]byte, 0, 3*64*64)
	bad := [][]byte{a[:len(a)/2], hiddenSOF(t, grayJPEG(t, 64), 128, 128), grayJPEG(t, 64), withSOF(t, a, 640, 640)}
	for i, b := range bad {
		if _, err := dec.Decode(buf, b, 64, 64); err != nil {
			t.Logf("frame %d: %v", i, err)
		}
		got, err := dec.Decode(buf, a, 64, 64)
		if err != nil {
			t.Fatalf("after frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("after frame %d: the good frame decodes differently", i)
		}
		if &got[0] != &buf[:1][0] {
			t.Errorf("a big enough dst was not reused")
		}
	}
	// A size change reopens the decoder.
	if _, err := dec.Decode(buf, grayJPEG(t, 32), 32, 32); err != nil {
		t.Fatal(err)
	}
	if got, err := dec.Decode(buf, a, 64, 64); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("back at 64x64: %v", err)
	}
}

func TestArguments(t *testing.T) {
	for _, q := range []int{0, 101, -1} {
		if _, err := NewEncoder(q); !errors.Is(err, ErrArgument) {
			t.Errorf("quality %d: error %v, want ErrArgument", q, err)
		}
	}
	enc, err := NewEncoder(90)
	if err != nil {
		t.Fatal(err)
	}
	rgb := make([]byte, 3*64*64)
	for _, tc := range []struct{ n, w, h int }{{len(rgb) - 1, 64, 64}, {len(rgb), 0, 64}, {len(rgb), 64, -64}, {3 * 70000, 70000, 1}} {
		if _, err := enc.Encode(nil, rgb[:min(tc.n, len(rgb))], tc.w, tc.h); !errors.Is(err, ErrArgument) {
			t.Errorf("%d bytes as %dx%d: error %v, want ErrArgument", tc.n, tc.w, tc.h, err)
		}
	}
	// Sizes change from one picture to the next, square or not.
	var dec Decoder
	for _, s := range [][2]int{{64, 64}, {48, 32}, {64, 64}} {
		px := make([]byte, 3*s[0]*s[1])
		dst := []byte("keep")
		b, err := enc.Encode(dst, px, s[0], s[1])
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:4]) != "keep" {
			t.Fatal("Encode did not append to dst")
		}
		if _, err := dec.Decode(nil, b[4:], s[0], s[1]); err != nil {
			t.Fatalf("%dx%d: %v", s[0], s[1], err)
		}
	}
	enc.Close()
	enc.Close()
	dec.Close()
	if _, err := enc.Encode(nil, rgb, 64, 64); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close: %v", err)
	}
	if _, err := dec.Decode(nil, grayJPEG(t, 64), 64, 64); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close: %v", err)
	}
}
