package results

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// flushedZstd compresses n bytes as one frame of small blocks without a
// content size, as a streaming writer that flushes often does: the block
// headers alone bound it far above its size, so only decoding can tell.
func flushedZstd(t *testing.T, data []byte, chunk int) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += chunk {
		if _, err := w.Write(data[i:min(i+chunk, len(data))]); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInflaterCheck holds zstd pages to their declared size on both paths
// (block headers, and decoding when the headers cannot bound them), and
// checks zstdBound never undercounts what the decoder really produces.
func TestInflaterCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := make([]byte, 300<<10)
	for i := range text {
		text[i] = "abcdefgh"[rng.IntN(8)]
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var inf inflater
	defer inf.close()

	for _, tc := range []struct {
		name    string
		payload []byte
		size    int
	}{
		{"one-shot 10 B", enc.EncodeAll(text[:10], nil), 10},
		{"one-shot 300 KB", enc.EncodeAll(text, nil), len(text)},
		{"two frames", enc.EncodeAll(text[:5000], enc.EncodeAll(text[:7000], nil)), 12000},
		{"flushed blocks", flushedZstd(t, text[:20000], 500), 20000},
	} {
		out, err := dec.DecodeAll(tc.payload, nil)
		if err != nil || len(out) != tc.size {
			t.Fatalf("%s: decoded %d bytes, %v", tc.name, len(out), err)
		}
		bound, _, err := zstdBound(tc.payload)
		if err != nil || bound < int64(tc.size) {
			t.Errorf("%s: bound %d for %d bytes, %v", tc.name, bound, tc.size, err)
		}
		if err := inf.check(format.Zstd, tc.payload, tc.size); err != nil {
			t.Errorf("%s: honest page refused: %v", tc.name, err)
		}
		if err := inf.check(format.Zstd, tc.payload, tc.size-1); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "inflates past") {
			t.Errorf("%s: page one byte over its declared size: %v", tc.name, err)
		}
		t.Logf("%s: %d bytes, bound %d", tc.name, tc.size, bound)
	}
	if b, exact, err := zstdBound(zstdBomb(1 << 30)); err != nil || b != 1<<30 || !exact {
		t.Errorf("bomb bound %d, %v", b, err)
	}
	for _, bad := range [][]byte{[]byte("not zstd at all"), zstdBomb(1 << 20)[:20]} {
		if err := inf.check(format.Zstd, bad, 1<<20); len(bad) > 0 && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v", bad[:min(len(bad), 16)], err)
		}
	}
}

// FuzzZstdBound: whatever zstdBound accepts, the decoder parquet-go uses
// produces no more than the bound.
func FuzzZstdBound(f *testing.F) {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	f.Add(enc.EncodeAll([]byte(strings.Repeat("vidpipe ", 100)), nil))
	f.Add(zstdBomb(1 << 20))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bound, _, err := zstdBound(b)
		if err != nil || bound > 64<<20 {
			return
		}
		out, err := dec.DecodeAll(b, nil)
		if err == nil && int64(len(out)) > bound {
			t.Fatalf("decoded %d bytes, bound %d", len(out), bound)
		}
	})
}

// TestCheckValues: a page's declared value count is held to the row
// group's rows across the chunk's pages, and a dictionary's to its bytes,
// since parquet-go sizes buffers by them (a run-length page can declare
// 2^31-1 values in a few bytes).
func TestCheckValues(t *testing.T) {
	data := func(n int32) *format.PageHeader {
		h := &format.PageHeader{Type: format.DataPage, UncompressedPageSize: 8}
		h.DataPageHeader.V.NumValues, h.DataPageHeader.Valid = n, true
		return h
	}
	var seen int64
	for _, n := range []int32{60, 40} {
		if err := checkValues(data(n), 100, &seen); err != nil {
			t.Fatalf("%d values of 100 rows: %v", n, err)
		}
	}
	if err := checkValues(data(1), 100, &seen); !errors.Is(err, ErrCorrupt) {
		t.Errorf("101st value of 100 rows: %v", err)
	}
	seen = 0
	if err := checkValues(data(math.MaxInt32), 100, &seen); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2147483647 values") {
		t.Errorf("2^31-1 values: %v", err)
	}
	if err := checkValues(data(-1), 100, new(int64)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("negative count: %v", err)
	}
	dict := &format.PageHeader{Type: format.DictionaryPage, UncompressedPageSize: 10}
	dict.DictionaryPageHeader.V.NumValues, dict.DictionaryPageHeader.Valid = 11, true
	if err := checkValues(dict, 100, new(int64)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("11 dictionary values in 10 bytes: %v", err)
	}
}
