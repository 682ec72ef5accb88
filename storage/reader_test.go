package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/vidpipe/vidpipe/internal/s3test"
)

const readerObjectSize = 30<<20 + 12345 // not a multiple of the block size

// readerBuckets are the backends NewReadSeeker is checked against, each
// holding the same object.
func readerBuckets(t *testing.T, data []byte) map[string]Bucket {
	t.Helper()
	ctx := context.Background()
	s3b, _ := newS3Bucket(t, "reader")
	fsb := newFS(t)
	buckets := map[string]Bucket{"versitygw": s3b, "file": fsb}
	for _, b := range buckets {
		mustPut(t, ctx, b, "videos/big.mp4", data)
	}
	return buckets
}

func TestObjectReader(t *testing.T) {
	data := randomBytes(readerObjectSize, 7)
	for name, b := range readerBuckets(t, data) {
		t.Run(name, func(t *testing.T) {
			t.Run("RandomSeeks", func(t *testing.T) { testRandomSeeks(t, b, data) })
			t.Run("Sequential", func(t *testing.T) { testSequential(t, b, data) })
			t.Run("ConcurrentReadAt", func(t *testing.T) { testConcurrentReadAt(t, b, data) })
		})
	}
}

// Every Seek and Read answers as bytes.Reader does on the same data.
func testRandomSeeks(t *testing.T, b Bucket, data []byte) {
	ctx := context.Background()
	opts := ReaderOptions{BlockSize: 1 << 20, Blocks: 4}
	r, err := NewReadSeeker(ctx, b, "videos/big.mp4", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := bytes.NewReader(data)
	rng := rand.New(rand.NewPCG(1, 2))
	size := int64(len(data))
	buf1, buf2 := make([]byte, 3<<20), make([]byte, 3<<20)
	for i := range 300 {
		var off int64
		whence := rng.IntN(3)
		switch whence {
		case io.SeekStart:
			off = rng.Int64N(size + 100)
		case io.SeekCurrent:
			off = rng.Int64N(4<<20) - 2<<20
		case io.SeekEnd:
			off = -rng.Int64N(size / 10)
		}
		p1, err1 := r.Seek(off, whence)
		p2, err2 := want.Seek(off, whence)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && p1 != p2) {
			t.Fatalf("op %d: Seek(%d, %d) = %d, %v; bytes.Reader: %d, %v", i, off, whence, p1, err1, p2, err2)
		}
		n := rng.IntN(len(buf1))
		if rng.IntN(4) == 0 {
			n = rng.IntN(64) // small reads, as a demuxer parses headers
		}
		n1, err1 := io.ReadFull(r, buf1[:n])
		n2, err2 := io.ReadFull(want, buf2[:n])
		if n1 != n2 || !errors.Is(err1, err2) || !bytes.Equal(buf1[:n1], buf2[:n2]) {
			t.Fatalf("op %d: read %d at %d: got %d, %v; bytes.Reader: %d, %v", i, n, p2, n1, err1, n2, err2)
		}
	}
	// ReadAt past the end and across it.
	n, err := r.ReadAt(buf1[:100], size-10)
	if n != 10 || err != io.EOF || !bytes.Equal(buf1[:10], data[size-10:]) {
		t.Fatalf("ReadAt across the end: %d, %v", n, err)
	}
	if peak, bound := r.PeakBufferBytes(), int64(opts.BlockSize*opts.Blocks); peak > bound {
		t.Fatalf("peak block memory %d > bound %d", peak, bound)
	}
	t.Logf("300 random seeks: %d requests, %.1f MB fetched for a %.1f MB object", r.Requests(), mb(r.BytesFetched()), mb(size))
}

// A front-to-back read fetches each byte once, with bounded memory.
func testSequential(t *testing.T, b Bucket, data []byte) {
	ctx := context.Background()
	opts := ReaderOptions{BlockSize: 1 << 20, Blocks: 4}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewReadSeeker(ctx, b, "videos/big.mp4", opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &hashWriter{}
	n, err := io.Copy(h, r) // 32 KiB reads, like a demuxer
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copy: %d bytes, %v", n, err)
	}
	runtime.ReadMemStats(&after)
	r.Close()
	if h.sum != checksum(data) {
		t.Fatal("sequential read differs from the object")
	}
	size := int64(len(data))
	ratio := float64(r.BytesFetched()) / float64(size)
	if ratio > 1.1 {
		t.Errorf("fetched %d bytes for a %d-byte object (%.3fx)", r.BytesFetched(), size, ratio)
	}
	wantReq := 1 + (size+int64(opts.BlockSize)-1)/int64(opts.BlockSize)
	if r.Requests() > wantReq {
		t.Errorf("%d requests, want at most %d (one HEAD, one GET per block)", r.Requests(), wantReq)
	}
	// The whole object must never be held: everything allocated during the
	// read, SDK buffers included, stays far below its size.
	alloc := int64(after.TotalAlloc - before.TotalAlloc)
	bound := int64(opts.BlockSize*opts.Blocks) + 8<<20
	if alloc > bound {
		t.Errorf("allocated %.1f MB reading a %.1f MB object; bound %.1f MB", mb(alloc), mb(size), mb(bound))
	}
	t.Logf("sequential: %d requests, fetched %.3fx the object, allocated %.1f MB, peak blocks %.1f MB",
		r.Requests(), ratio, mb(alloc), mb(r.PeakBufferBytes()))
}

// ReadAt from several goroutines at once, as io.ReaderAt allows.
func testConcurrentReadAt(t *testing.T, b Bucket, data []byte) {
	r, err := NewReadSeeker(context.Background(), b, "videos/big.mp4", ReaderOptions{BlockSize: 512 << 10, Blocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, 1<<20)
			for range 40 {
				off := rng.Int64N(int64(len(data)))
				n, err := r.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					errs <- errors.New("concurrent ReadAt returned wrong bytes")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestObjectReaderErrors(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	if _, err := NewReadSeeker(ctx, b, "missing", ReaderOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
	mustPut(t, ctx, b, "obj", randomBytes(3<<20, 4))
	r, err := NewReadSeeker(ctx, b, "obj", ReaderOptions{BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("seek to -1 succeeded")
	}
	// The object shrinks under the reader: an error, not silent garbage.
	mustPut(t, ctx, b, "obj", randomBytes(1<<20, 4))
	if _, err := r.ReadAt(make([]byte, 10), 2<<20); err == nil {
		t.Error("read past the new end of a shrunk object succeeded")
	}
	r.Close()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}

func BenchmarkObjectReader(b *testing.B) {
	const size = 32 << 20
	data := randomBytes(size, 5)
	srv := s3test.Start(b)
	srv.SetEnv(b)
	srv.CreateBucket(b, "bench")
	ctx := context.Background()
	s3b, err := NewS3(ctx, "bench", testS3Options(srv.Endpoint))
	if err != nil {
		b.Fatal(err)
	}
	fsb, err := NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer fsb.Close()
	for _, bk := range []Bucket{s3b, fsb} {
		if err := bk.Put(ctx, "obj", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		b    Bucket
	}{{"versitygw", s3b}, {"file", fsb}} {
		// The limit: one streaming GET of the whole object.
		b.Run(tc.name+"/get", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				rc, err := tc.b.Get(ctx, "obj")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
		b.Run(tc.name+"/reader", func(b *testing.B) {
			b.SetBytes(size)
			var fetched int64
			for b.Loop() {
				r, err := NewReadSeeker(ctx, tc.b, "obj", ReaderOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				fetched += r.BytesFetched()
				r.Close()
			}
			b.ReportMetric(float64(fetched)/float64(b.N)/size, "fetched/size")
		})
	}
}

type hashWriter struct{ sum uint64 }

func (h *hashWriter) Write(p []byte) (int, error) {
	for _, c := range p {
		h.sum = h.sum*1099511628211 + uint64(c)
	}
	return len(p), nil
}

func checksum(data []byte) uint64 {
	h := &hashWriter{}
	h.Write(data)
	return h.sum
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// Sequential reads start fetching the next block before it is asked for, so
// fetching overlaps decoding.
func TestObjectReaderReadsAhead(t *testing.T) {
	ctx := context.Background()
	fsb := newFS(t)
	mustPut(t, ctx, fsb, "obj", randomBytes(5<<20, 6))
	rb := &recordingBucket{Bucket: fsb, offsets: make(chan int64, 16)}
	r, err := NewReadSeeker(ctx, rb, "obj", ReaderOptions{BlockSize: 1 << 20, Blocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 2<<20)); err != nil { // blocks 0 and 1
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for !seen[2<<20] {
		off := <-rb.offsets // the test's deadline bounds this wait
		seen[off] = true
	}
	if seen[3<<20] {
		t.Error("read two blocks ahead")
	}
}

type recordingBucket struct {
	Bucket
	offsets chan int64
}

func (b *recordingBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	b.offsets <- off
	return b.Bucket.GetRange(ctx, key, off, length)
}
