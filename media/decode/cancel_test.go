package decode

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

// cancelingReader cancels a context on its nth Read, so cancellation lands
// deterministically inside FFmpeg.
type cancelingReader struct {
	io.ReadSeeker
	reads, at int
	cancel    context.CancelFunc
}

func (r *cancelingReader) Read(b []byte) (int, error) {
	r.reads++
	if r.reads == r.at {
		r.cancel()
	}
	return r.ReadSeeker.Read(b)
}

func TestCancel(t *testing.T) {
	path := clips["vtest.avi"] // 795 frames, 8 MB: about 125 reads of 64 KiB

	t.Run("before open", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Open(ctx, path, nil, Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Open: %v, want context.Canceled", err)
		}
	})

	t.Run("during open", func(t *testing.T) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &cancelingReader{ReadSeeker: f, at: 1, cancel: cancel}
		if _, err := Open(ctx, path, r, Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Open: %v, want context.Canceled", err)
		}
	})

	t.Run("inside next", func(t *testing.T) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &cancelingReader{ReadSeeker: f, cancel: cancel}
		// Every is huge: after frame 0, one Next call would read the whole
		// file, so the cancellation happens inside FFmpeg's read loop.
		d, err := Open(ctx, path, r, Options{Every: 1 << 30, Size: 32})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r.at = r.reads + 20
		if _, err := d.Next(ctx); err != nil {
			t.Fatalf("first Next: %v", err)
		}
		_, err = d.Next(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next: %v, want context.Canceled", err)
		}
		if st := d.Stats(); st.Decoded >= 795 || r.reads > r.at+1 {
			t.Errorf("decoding went on after cancel: %d decoded, %d reads (canceled at %d)", st.Decoded, r.reads, r.at)
		}
		if _, err := d.Next(context.Background()); !errors.Is(err, context.Canceled) {
			t.Errorf("Next after cancel: %v, want the cancellation again", err)
		}
	})

	t.Run("between frames", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		d, err := Open(ctx, path, nil, Options{Size: 32})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for range 3 {
			if _, err := d.Next(ctx); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if _, err := d.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next: %v, want context.Canceled", err)
		}
	})
}
