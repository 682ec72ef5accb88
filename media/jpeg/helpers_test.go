package jpeg

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	stdjpeg "image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/internal/samples"
)

func TestMain(m *testing.M) {
	// FFmpeg's own logging would drown the test output on the bad inputs.
	astiav.SetLogLevel(astiav.LogLevelQuiet)
	os.Exit(m.Run())
}

// picture is a packed RGB24 square.
type picture struct {
	name string
	size int
	rgb  []byte
}

// pictures are what frames carry at size: letterboxed frames of two
// sample videos (people walking; an animated film, past its black first
// frame), and a pattern of fine stripes and noise, JPEG's worst case.
func pictures(tb testing.TB, size int) []picture {
	tb.Helper()
	var out []picture
	for i, f := range samples.Frames(tb, "vtest.avi", size, 100, 2) {
		out = append(out, picture{fmt.Sprintf("vtest#%d", i*100), size, f})
	}
	for i, f := range samples.Frames(tb, "Megamind.avi", size, 100, 3)[1:] {
		out = append(out, picture{fmt.Sprintf("megamind#%d", (i+1)*100), size, f})
	}
	rng := rand.New(rand.NewPCG(1, 1))
	p := make([]byte, 3*size*size)
	for i := range p {
		p[i] = byte(i/7%256) ^ byte(rng.IntN(16))
	}
	return append(out, picture{"pattern", size, p})
}

// diff is the mean and largest absolute difference of a and b, byte by
// byte, and the PSNR of b against a.
func diff(a, b []byte) (mean float64, maxd int, psnr float64) {
	var sum, sq float64
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += float64(d)
		sq += float64(d * d)
		maxd = max(maxd, d)
	}
	n := float64(len(a))
	return sum / n, maxd, 10 * math.Log10(255*255/(sq/n))
}

// stdEncode is image/jpeg's JPEG of p at quality: baseline 4:2:0.
func stdEncode(tb testing.TB, p picture, quality int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, p.size, p.size))
	for i, j := 0, 0; i < len(p.rgb); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = p.rgb[i], p.rgb[i+1], p.rgb[i+2], 255
	}
	var b bytes.Buffer
	if err := stdjpeg.Encode(&b, img, &stdjpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// stdDecode is image/jpeg's picture of b as packed RGB24, converted by
// image/draw's YCbCr and Gray paths, the same arithmetic as color.YCbCr.
func stdDecode(tb testing.TB, b []byte) (rgb []byte, w, h int) {
	tb.Helper()
	img, err := stdjpeg.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	r := img.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(m, m.Rect, img, r.Min, draw.Src)
	rgb = make([]byte, 0, 3*r.Dx()*r.Dy())
	for i := 0; i < len(m.Pix); i += 4 {
		rgb = append(rgb, m.Pix[i], m.Pix[i+1], m.Pix[i+2])
	}
	return rgb, r.Dx(), r.Dy()
}
