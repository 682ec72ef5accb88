package results

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	pqgzip "github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/vidpipe/vidpipe/internal/peakrss"
)

// zstdBomb is a zstd frame of n zero bytes made of RLE blocks, 4 bytes per
// 128 KB: 1 GB in 32 KB, written directly so the test never holds the
// gigabyte.
func zstdBomb(n int64) []byte {
	const block = 128 << 10
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38} // magic; no content size; 128 KB window
	for n > 0 {
		size := min(n, block)
		n -= size
		h := uint32(1<<1 | size<<3) // RLE block
		if n == 0 {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// gzipBomb is a gzip member of n zero bytes (~1.3 KB per MB).
func gzipBomb(t testing.TB, n int64) []byte {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for ; n > 0; n -= int64(len(zero)) {
		if _, err := w.Write(zero[:min(n, int64(len(zero)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombCodec compresses pages honestly and appends bomb to the first: its
// header still declares the honest uncompressed size, and both zstd and
// gzip decode concatenated frames as one stream, so the page inflates to
// its size plus the bomb's.
type bombCodec struct {
	compress.Codec
	bomb []byte
	done atomic.Bool
}

func (c *bombCodec) Encode(dst, src []byte) ([]byte, error) {
	out, err := c.Codec.Encode(dst, src)
	if c.done.CompareAndSwap(false, true) {
		out = append(out, c.bomb...)
	}
	return out, err
}

// bombTable is a small detections table whose pages are compressed by codec.
func bombTable(t testing.TB, codec compress.Codec) []byte {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[Row](&buf, parquet.Compression(codec), parquet.KeyValueMetadata("vidpipe.schema", SchemaVersion))
	if _, err := w.Write(collect(genParams{Seed: 9, Videos: 1, Frames: 20, Dets: 2})); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withFooter frames footer bytes as a Parquet file.
func withFooter(footer []byte) []byte {
	b := append([]byte("PAR1"), footer...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(footer)))
	return append(b, "PAR1"...)
}

// listBombFooter is a 300-byte FileMetaData whose schema list declares
// 2^31-1 elements: version 1, then field 2 as a list of structs with a
// varint size.
func listBombFooter() []byte {
	footer := []byte{0x15, 0x02, 0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07}
	return append(footer, make([]byte, 300-len(footer))...)
}

type bombReport struct {
	Err     string `json:"err"`
	Corrupt bool   `json:"corrupt"`
	Rows    int64  `json:"rows"`
	PeakRSS int64  `json:"peak_rss"` // VmHWM, bytes
}

// TestBombHelper is the child process of TestBombsBounded: it scans the
// file named by VIDPIPE_BOMB_FILE and reports the outcome.
func TestBombHelper(t *testing.T) {
	path := os.Getenv("VIDPIPE_BOMB_FILE")
	if path == "" {
		t.Skip("child of TestBombsBounded")
	}
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, err := Scan(context.Background(), src, Filter{}, func(Row) error { return nil })
	rss, rssErr := peakrss.Self()
	if rssErr != nil {
		t.Fatal(rssErr)
	}
	rep := bombReport{Rows: st.Matched, PeakRSS: rss}
	if err != nil {
		rep.Err, rep.Corrupt = err.Error(), errors.Is(err, ErrCorrupt)
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("REPORT %s\n", b)
}

// runBomb scans data in a child process and returns its report. A child
// the runtime kills (out of memory) fails the test.
func runBomb(t *testing.T, name string, data []byte) bombReport {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".parquet")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBombHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VIDPIPE_BOMB_FILE="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: scan process died (%v):\n%s", name, err, out[max(0, len(out)-2000):])
	}
	var rep bombReport
	found := false
	for line := range strings.SplitSeq(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "REPORT "); ok {
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("%s: scan process reported nothing:\n%s", name, out)
	}
	return rep
}

// TestBombsBounded scans decompression bombs and hostile footers in a child
// process each: every one ends in an error that names the reason, and the
// child's peak RSS stays under maxRSS however much the bomb claims. A good
// file through the same path shows the child really scans.
func TestBombsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 512 MB gzip bomb and runs child processes")
	}
	const maxRSS = 256 << 20
	good := writeRows(t, collect(genParams{Seed: 6, Videos: 2, Frames: 500, Dets: 3}), WriterOptions{RowGroupRows: 1000})
	// A footer length reaching past the start of the file.
	beyond := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(beyond[len(beyond)-8:], uint32(len(good)))
	tests := []struct {
		name    string
		data    []byte
		mention string // "" for the good file
	}{
		{name: "good", data: good},
		{name: "zstd-1GB-page", data: bombTable(t, &bombCodec{Codec: &zstd.Codec{}, bomb: zstdBomb(1 << 30)}), mention: "inflates past its declared"},
		{name: "gzip-512MB-page", data: bombTable(t, &bombCodec{Codec: &pqgzip.Codec{}, bomb: gzipBomb(t, 512<<20)}), mention: "inflates past its declared"},
		{name: "footer-list-2^31-1", data: withFooter(listBombFooter()), mention: "container of 2147483647 elements"},
		{name: "footer-cut", data: append(append([]byte{}, good[:len(good)-200]...), good[len(good)-8:]...), mention: "footer"},
		{name: "footer-beyond-file", data: beyond, mention: "exceeds file size"},
	}

	// VIDPIPE_BOMB_KEEP=dir keeps each fixture as dir/<name>/detections.parquet,
	// to try on `vidpipe query dir/<name>`.
	keep := os.Getenv("VIDPIPE_BOMB_KEEP")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if keep != "" {
				dir := filepath.Join(keep, tt.name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "detections.parquet"), tt.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep := runBomb(t, tt.name, tt.data)
			rss := rep.PeakRSS
			t.Logf("%s: %d bytes on disk, peak RSS %.1f MB, error %q", tt.name, len(tt.data), float64(rss)/(1<<20), rep.Err)
			if tt.mention == "" {
				if rep.Err != "" || rep.Rows == 0 {
					t.Fatalf("good file: %d rows, error %q", rep.Rows, rep.Err)
				}
			} else {
				if !rep.Corrupt || !strings.Contains(rep.Err, tt.mention) || !strings.Contains(rep.Err, tt.name+".parquet") {
					t.Errorf("error %q: want ErrCorrupt naming the file and saying %q", rep.Err, tt.mention)
				}
			}
			if rss > maxRSS {
				t.Errorf("peak RSS %d MB, bound %d MB", rss>>20, maxRSS>>20)
			}
		})
	}
}

// FuzzFooter decodes fuzzed footers framed as a Parquet file: whatever
// the bytes, opening ends in a result or an error naming the file, and
// never in a panic or an allocation the footer's size does not justify
// (the fuzzer's memory limit would end the run).
func FuzzFooter(f *testing.F) {
	good := writeRows(f, collect(genParams{Seed: 8, Videos: 2, Frames: 40, Dets: 2, Classes: 4}), WriterOptions{RowGroupRows: 50})
	n := int(binary.LittleEndian.Uint32(good[len(good)-8:]))
	footer := good[len(good)-8-n : len(good)-8]
	f.Add(footer)
	f.Add(footer[:n/2])
	f.Add(listBombFooter())
	f.Add([]byte{0x15, 0x02, 0x00})
	f.Add([]byte{0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c, 0x1c})
	f.Fuzz(func(t *testing.T, footer []byte) {
		used, err := checkThrift(footer, maxFooterAlloc)
		if used > len(footer) || (err == nil && used == 0) {
			t.Fatalf("walk used %d of %d bytes, err %v", used, len(footer), err)
		}
		_, err = Scan(context.Background(), NewBytesSource("fuzz.parquet", withFooter(footer)), Filter{}, func(Row) error { return nil })
		if err != nil && !strings.Contains(err.Error(), "fuzz.parquet") {
			t.Fatalf("error does not name the source: %v", err)
		}
	})
}
