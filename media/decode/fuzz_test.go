package decode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// FuzzOpen feeds arbitrary bytes through the io.ReadSeeker path: Open and
// Next must never panic or hang, and every Open failure must be classified.
func FuzzOpen(f *testing.F) {
	for _, name := range []string{"tiny.mp4", "tiny.avi", "tiny.mkv", "tiny.ts", "text.txt", "concat.ffconcat"} {
		b, err := os.ReadFile(clips[name])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if len(b) > 64 {
			f.Add(b[:len(b)/2])
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		const size = 32
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := Open(ctx, "fuzz", bytes.NewReader(data), Options{Size: size, MaxPixels: 1 << 20, Threads: 1})
		if err != nil {
			classified := false
			for _, s := range []error{ErrNotVideo, ErrCorrupt, ErrNoDecoder, ErrTooLarge, ErrFormatNotAllowed, context.DeadlineExceeded} {
				classified = classified || errors.Is(err, s)
			}
			if !classified {
				t.Fatalf("unclassified open error: %v", err)
			}
			return
		}
		defer d.Close()
		last := -1
		for range 200 {
			fr, err := d.Next(ctx)
			if errors.Is(err, io.EOF) {
				if st := d.Stats(); st.Missing < 0 || st.Missing > st.Expected || (st.Missing > 0 && !st.Truncated) {
					t.Fatalf("inconsistent truncation in stats %+v", st)
				}
				break
			}
			if err != nil {
				if _, again := d.Next(ctx); again == nil {
					t.Fatalf("Next succeeded after failing with %v", err)
				}
				break
			}
			if len(fr.Letterbox) != size*size*3 || fr.Index <= last || fr.Width <= 0 || fr.Height <= 0 {
				t.Fatalf("bad frame: index %d after %d, %dx%d, %d bytes", fr.Index, last, fr.Width, fr.Height, len(fr.Letterbox))
			}
			last = fr.Index
		}
	})
}
