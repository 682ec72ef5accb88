package runbench

import (
	"bytes"
	"image"
	"image/jpeg"
	"time"

	"github.com/vidpipe/vidpipe/model/detect"
)

// codecFrames is how many frames, evenly spaced, the codec costs are
// measured on.
const codecFrames = 20

// codecCost measures what a frame costs on the bus, raw and as JPEG: bytes,
// the encode on the ingest side, and the worker's read (the JPEG decode,
// then the float conversion or, for a u8 model, a copy), with the cores
// each side needs at 3,000 frames/s.
func codecCost(res *Result, frames [][]byte, size int, u8 bool) error {
	every := max(1, len(frames)/codecFrames)
	per := 3 * size * size
	floats := make([]float32, per)
	rgb := make([]byte, per)
	read := func(px []byte) {
		if u8 {
			copy(rgb, px)
			return
		}
		detect.Planar(floats, px)
	}
	var n, jpegBytes int
	var raw, enc, dec time.Duration
	var diff int64
	for i := 0; i < len(frames); i += every {
		f := frames[i]
		t0 := time.Now()
		read(f)
		raw += time.Since(t0)

		t0 = time.Now()
		j, err := encodeJPEG(f, size)
		if err != nil {
			return err
		}
		enc += time.Since(t0)
		jpegBytes += len(j)

		t0 = time.Now()
		px, err := decodeJPEG(j, size)
		if err != nil {
			return err
		}
		read(px)
		dec += time.Since(t0)
		for k, v := range px {
			d := int64(v) - int64(f[k])
			diff += max(d, -d)
		}
		n++
	}
	ms := func(d time.Duration) float64 { return round3(d.Seconds() * 1000 / float64(n)) }
	res.RawFrameBytes, res.JPEGFrameBytes = per, jpegBytes/n
	res.RawReadMS, res.JPEGEncodeMS, res.JPEGReadMS = ms(raw), ms(enc), ms(dec)
	res.RawCoresAt3000, res.JPEGCoresAt3000 = round3(3*res.RawReadMS), round3(3*res.JPEGReadMS)
	res.JPEGMeanAbsDiff = round3(float64(diff) / float64(n*per))
	return nil
}

// encodeJPEG and decodeJPEG are placeholders for the FFmpeg codec.
func encodeJPEG(rgb []byte, size int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i, j := 0, 0; i+2 < len(rgb); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = rgb[i], rgb[i+1], rgb[i+2], 255
	}
	var buf bytes.Buffer
	err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	return buf.Bytes(), err
}

func decodeJPEG(b []byte, size int) ([]byte, error) {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 3*size*size)
	for y := range size {
		for x := range size {
			r, g, b, _ := img.At(x, y).RGBA()
			out = append(out, byte(r>>8), byte(g>>8), byte(b>>8))
		}
	}
	return out, nil
}
