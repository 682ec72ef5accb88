// Package samples gives tests the real videos scripts/setup.sh installs
// (Debian's opencv-doc clips): their paths, and their frames letterboxed as
// media/decode hands them to the pipeline.
package samples

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/builtin"
)

// Path returns the path of the sample video name, failing tb if setup has
// not installed it: a missing oracle is a broken setup, not a skip.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(builtin.CacheDir(), "videos", name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("sample video %s missing (run scripts/setup.sh --test): %v", name, err)
	}
	return p
}

// Frames decodes up to n size x size letterboxes of the sample video name,
// every every-th frame, one decoder thread, as copies.
func Frames(tb testing.TB, name string, size, every, n int) [][]byte {
	tb.Helper()
	d, err := decode.Open(context.Background(), Path(tb, name), nil, decode.Options{Size: size, Every: every, Threads: 1})
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	var out [][]byte
	for len(out) < n {
		f, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, append([]byte(nil), f.Letterbox...))
	}
	return out
}
