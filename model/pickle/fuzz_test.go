package pickle

import (
	"errors"
	"testing"
)

// FuzzPickle: any bytes decode to a value or to one of the sentinel errors,
// within the limits, without panicking. Seeds: testdata/fuzz/FuzzPickle,
// CPython's own pickles (gen_cases.py).
func FuzzPickle(f *testing.F) {
	f.Add([]byte("\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."))
	lim := Limits{MaxOps: 1 << 16, MaxDepth: 64, MaxStack: 1 << 12, MaxMemo: 1 << 12}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Decode(b, Options{Limits: lim})
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnknownFunction) &&
			!errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrLimit) {
			t.Fatalf("error outside the sentinels: %v", err)
		}
	})
}
