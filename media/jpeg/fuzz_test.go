package jpeg

import (
	"errors"
	"testing"
)

// FuzzDecode feeds the decoder arbitrary bytes as a 16x16 frame: it returns
// a 16x16 picture or one of the package's errors, and never crashes,
// whatever FFmpeg makes of the bytes.
func FuzzDecode(f *testing.F) {
	const side = 16
	enc, err := NewEncoder(90)
	if err != nil {
		f.Fatal(err)
	}
	px := make([]byte, 3*side*side)
	for i := range px {
		px[i] = byte(i * 13)
	}
	good, err := enc.Encode(nil, px, side, side)
	enc.Close()
	if err != nil {
		f.Fatal(err)
	}
	gray := grayJPEG(f, side)
	f.Add(good)
	f.Add(gray)
	f.Add(good[:len(good)/2])
	f.Add(withSOF(f, gray, 65500, 65500))
	f.Add(hiddenSOF(f, gray, 64, 64))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, b []byte) {
		var dec Decoder
		defer dec.Close()
		rgb, err := dec.Decode(nil, b, side, side)
		switch {
		case err == nil && len(rgb) != 3*side*side:
			t.Fatalf("%d bytes of picture, want %d", len(rgb), 3*side*side)
		case err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSize) && !errors.Is(err, ErrUnsupported):
			t.Fatalf("error %v is none of the package's", err)
		}
	})
}
