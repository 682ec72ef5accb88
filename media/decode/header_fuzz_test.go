package decode

import (
	"bytes"
	"os"
	"testing"
)

// FuzzContainerHeaders runs the parsers that read container structure from
// the input's own bytes, outside FFmpeg: the picture-size sniffers for
// y4m and JPEG streams and the declared-length walks of MP4, Matroska, AVI
// and MPEG-TS. Whatever the bytes they must not panic, must read within
// the input, and a size they report must be positive; the walks must stop
// within maxTopLevel steps (a hang would end the run).
func FuzzContainerHeaders(f *testing.F) {
	for _, name := range []string{"tiny.mp4", "faststart.mp4", "tiny.avi", "tiny.mkv", "tiny.ts", "mjpeg.avi"} {
		b, err := os.ReadFile(clips[name])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte("YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\n"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
		0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01})
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x80, 0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte("RIFF\x04\x00\x00\x00AVI RIFF\xff\xff\xff\x7fAVIX"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []string{"yuv4mpegpipe", "mjpeg", "jpeg_pipe"} {
			if w, h, ok := headerSize(format, b); ok && (w <= 0 || h <= 0) {
				t.Fatalf("%s: size %dx%d", format, w, h)
			}
		}
		size := int64(len(b))
		r := &countingReader{r: bytes.NewReader(b)}
		for _, walk := range []func() (bool, error){
			func() (bool, error) { return boxesShort(r, size) },
			func() (bool, error) { return segmentShort(r, size) },
			func() (bool, error) { return riffShort(r, size) },
			func() (bool, error) { return tsShort(r, size) },
		} {
			r.reads = 0
			if _, err := walk(); err != nil {
				// Every read must lie within the input's size.
				t.Fatalf("walk read outside %d bytes: %v", size, err)
			}
			if r.reads > 2*maxTopLevel+1 {
				t.Fatalf("%d reads for one walk", r.reads)
			}
		}
	})
}

type countingReader struct {
	r     *bytes.Reader
	reads int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}
