package runbench

import (
	"time"

	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/media/jpeg"
	"github.com/vidpipe/vidpipe/model/detect"
)

// codecFrames is how many frames, evenly spaced, the codec costs are
// measured on.
const codecFrames = 20

// codecCost measures what a frame costs on the bus, raw and as JPEG: bytes,
// the encode on the ingest side, and the worker's read (the JPEG decode,
// then the float conversion or, for a u8 model, a copy), with the cores
// each side needs at 3,000 frames/s. JPEG is ingest's: FFmpeg's mjpeg at
// its default quality.
func codecCost(res *Result, frames [][]byte, size int, u8 bool) error {
	enc, err := jpeg.NewEncoder(ingest.DefaultJPEGQuality)
	if err != nil {
		return err
	}
	defer enc.Close()
	var dec jpeg.Decoder
	defer dec.Close()
	var j, px []byte
	every := max(1, len(frames)/codecFrames)
	per := 3 * size * size
	floats := make([]float32, per)
	rgb := make([]byte, per)
	read := func(pix []byte) {
		if u8 {
			copy(rgb, pix)
			return
		}
		detect.Planar(floats, pix)
	}
	var n, jpegBytes int
	var raw, encT, decT time.Duration
	var diff int64
	for i := 0; i < len(frames); i += every {
		f := frames[i]
		t0 := time.Now()
		read(f)
		raw += time.Since(t0)

		t0 = time.Now()
		j, err = enc.Encode(j[:0], f, size, size)
		if err != nil {
			return err
		}
		encT += time.Since(t0)
		jpegBytes += len(j)

		t0 = time.Now()
		px, err = dec.Decode(px, j, size, size)
		if err != nil {
			return err
		}
		read(px)
		decT += time.Since(t0)
		for k, v := range px {
			d := int64(v) - int64(f[k])
			diff += max(d, -d)
		}
		n++
	}
	ms := func(d time.Duration) float64 { return round3(d.Seconds() * 1000 / float64(n)) }
	res.RawFrameBytes, res.JPEGFrameBytes = per, jpegBytes/n
	res.RawReadMS, res.JPEGEncodeMS, res.JPEGReadMS = ms(raw), ms(encT), ms(decT)
	res.RawCoresAt3000, res.JPEGCoresAt3000 = round3(3*res.RawReadMS), round3(3*res.JPEGReadMS)
	res.JPEGMeanAbsDiff = round3(float64(diff) / float64(n*per))
	return nil
}
