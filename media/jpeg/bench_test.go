package jpeg

import (
	"testing"
)

// videoFrames are the sample video frames of pictures, without the
// pattern: what frames carry.
func videoFrames(b *testing.B, size int) []picture {
	ps := pictures(b, size)
	return ps[:len(ps)-1]
}

// BenchmarkEncode is ingest's cost per 640 frame sent with
// --frame-codec jpeg at the default quality, against image/jpeg's on the
// same frames (what ingest used before).
func BenchmarkEncode(b *testing.B) {
	ps := videoFrames(b, 640)
	b.Run("mjpeg", func(b *testing.B) {
		enc, err := NewEncoder(90)
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		var buf []byte
		n, size := 0, 0
		for b.Loop() {
			p := ps[n%len(ps)]
			if buf, err = enc.Encode(buf[:0], p.rgb, p.size, p.size); err != nil {
				b.Fatal(err)
			}
			n, size = n+1, size+len(buf)
		}
		report(b, n, size)
	})
	b.Run("image-jpeg", func(b *testing.B) {
		n, size := 0, 0
		for b.Loop() {
			size += len(stdEncode(b, ps[n%len(ps)], 90))
			n++
		}
		report(b, n, size)
	})
}

// BenchmarkDecode is a worker's cost per 640 frame received as JPEG,
// against image/jpeg's decoding and conversion to RGB of the same JPEGs.
func BenchmarkDecode(b *testing.B) {
	ps := videoFrames(b, 640)
	enc, err := NewEncoder(90)
	if err != nil {
		b.Fatal(err)
	}
	var jpgs [][]byte
	for _, p := range ps {
		j, err := enc.Encode(nil, p.rgb, p.size, p.size)
		if err != nil {
			b.Fatal(err)
		}
		jpgs = append(jpgs, j)
	}
	enc.Close()
	b.Run("mjpeg", func(b *testing.B) {
		var dec Decoder
		defer dec.Close()
		var rgb []byte
		n, size := 0, 0
		for b.Loop() {
			j := jpgs[n%len(jpgs)]
			if rgb, err = dec.Decode(rgb, j, 640, 640); err != nil {
				b.Fatal(err)
			}
			n, size = n+1, size+len(j)
		}
		report(b, n, size)
	})
	b.Run("image-jpeg", func(b *testing.B) {
		n, size := 0, 0
		for b.Loop() {
			j := jpgs[n%len(jpgs)]
			stdDecode(b, j)
			n, size = n+1, size+len(j)
		}
		report(b, n, size)
	})
}

func report(b *testing.B, n, size int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(n), "ms/frame")
	b.ReportMetric(float64(size)/float64(n), "bytes/frame")
}
