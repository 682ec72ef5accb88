package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// ReaderOptions sizes an ObjectReader's cache.
type ReaderOptions struct {
	// BlockSize is the size of each ranged GET (default 4 MiB).
	BlockSize int
	// Blocks is how many blocks are kept, including the one read ahead
	// (default 4, at least 2 so read-ahead never evicts the block in use).
	Blocks int
}

// ObjectReader reads an object through ranged GETs of fixed blocks, so a
// demuxer can seek (an MP4's moov atom at the end) without downloading the
// whole object. It keeps at most Blocks blocks of BlockSize bytes, and when
// reads are sequential it fetches the next block in the background.
//
// ReadAt is safe for concurrent use; Read and Seek share one position and are
// not.
type ObjectReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	b      Bucket
	key    string
	size   int64
	bs     int64
	max    int

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a block completes or is released
	blocks  map[int64]*block
	bufs    [][]byte // released buffers, reused
	nbufs   int      // buffers allocated, at most max
	clock   uint64
	last    int64 // index of the last block read, for read-ahead
	closed  bool
	loaders sync.WaitGroup

	pos       int64 // Read/Seek position
	fetched   atomic.Int64
	requests  atomic.Int64
	peakBytes atomic.Int64
}

type block struct {
	idx      int64
	buf      []byte
	n        int
	done     bool
	err      error
	refs     int // readers copying out of buf; such a block is not evicted
	used     uint64
	readAhed bool
}

// NewReadSeeker opens key for random access. It sends one HEAD for the size;
// ctx bounds every later fetch, since io.Reader has no context of its own.
func NewReadSeeker(ctx context.Context, b Bucket, key string, opts ReaderOptions) (*ObjectReader, error) {
	if opts.BlockSize <= 0 {
		opts.BlockSize = 4 << 20
	}
	if opts.Blocks <= 0 {
		opts.Blocks = 4
	}
	opts.Blocks = max(opts.Blocks, 2)
	attrs, err := b.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &ObjectReader{
		ctx: ctx, cancel: cancel, b: b, key: key, size: attrs.Size,
		bs: int64(opts.BlockSize), max: opts.Blocks,
		blocks: make(map[int64]*block), last: -2,
	}
	r.requests.Add(1)
	r.cond = sync.NewCond(&r.mu)
	return r, nil
}

// Name is the object's URI, for errors and for decoders that want a name.
func (r *ObjectReader) Name() string { return URI(r.b, r.key) }

// Size is the object's size when the reader was opened.
func (r *ObjectReader) Size() int64 { return r.size }

// BytesFetched counts the bytes received from the bucket.
func (r *ObjectReader) BytesFetched() int64 { return r.fetched.Load() }

// Requests counts requests sent: the HEAD and every ranged GET.
func (r *ObjectReader) Requests() int64 { return r.requests.Load() }

// PeakBufferBytes is the most block memory held at once, at most
// BlockSize*Blocks.
func (r *ObjectReader) PeakBufferBytes() int64 { return r.peakBytes.Load() }

// Read reads from the current position.
func (r *ObjectReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // io.Reader: report EOF on the next call
	}
	return n, err
}

// Seek sets the position for Read; seeking past the end is allowed and reads
// return io.EOF there.
func (r *ObjectReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("seek %s: invalid whence %d", r.Name(), whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek %s: negative position %d", r.Name(), abs)
	}
	r.pos = abs
	return abs, nil
}

// ReadAt reads len(p) bytes at off, fetching the blocks it spans.
func (r *ObjectReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.Name(), off)
	}
	n := 0
	for n < len(p) {
		if off >= r.size {
			return n, io.EOF
		}
		idx := off / r.bs
		blk, err := r.acquire(idx)
		if err != nil {
			return n, err
		}
		start := off - idx*r.bs
		if start >= int64(blk.n) {
			// The object shrank since the HEAD.
			r.release(blk)
			return n, fmt.Errorf("read %s: %w", r.Name(), io.ErrUnexpectedEOF)
		}
		c := copy(p[n:], blk.buf[start:blk.n])
		r.release(blk)
		n += c
		off += int64(c)
	}
	return n, nil
}

// acquire returns block idx with a reference held, fetching it if needed.
func (r *ObjectReader) acquire(idx int64) (*block, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.closed {
			return nil, fmt.Errorf("read %s: %w", r.Name(), os.ErrClosed)
		}
		if blk, ok := r.blocks[idx]; ok {
			blk.refs++
			for !blk.done {
				r.cond.Wait()
			}
			if blk.err != nil {
				blk.refs--
				if r.blocks[idx] == blk {
					delete(r.blocks, idx)
					r.freeLocked(blk)
				}
				if blk.readAhed && !errors.Is(blk.err, context.Canceled) {
					continue // a failed read-ahead is retried in the foreground
				}
				return nil, blk.err
			}
			r.touchLocked(blk)
			return blk, nil
		}
		buf := r.bufferLocked()
		if buf == nil {
			r.cond.Wait() // every buffer is being filled or read from
			continue
		}
		blk := &block{idx: idx, buf: buf, refs: 1}
		r.blocks[idx] = blk
		r.touchLocked(blk)
		r.mu.Unlock()
		r.fill(blk)
		r.mu.Lock()
		blk.done = true
		r.cond.Broadcast()
		if blk.err != nil {
			blk.refs--
			if r.blocks[idx] == blk {
				delete(r.blocks, idx)
				r.freeLocked(blk)
			}
			return nil, blk.err
		}
		return blk, nil
	}
}

// touchLocked marks blk used and, when reads move forward block by block,
// starts fetching the next one. The first block starts none: a demuxer often
// reads the header and then jumps to the end.
func (r *ObjectReader) touchLocked(blk *block) {
	r.clock++
	blk.used = r.clock
	if blk.idx == r.last+1 {
		r.readAheadLocked(blk.idx + 1)
	}
	r.last = blk.idx
}

func (r *ObjectReader) readAheadLocked(idx int64) {
	if r.closed || idx*r.bs >= r.size || r.blocks[idx] != nil {
		return
	}
	buf := r.bufferLocked()
	if buf == nil {
		return
	}
	blk := &block{idx: idx, buf: buf, readAhed: true}
	r.blocks[idx] = blk
	r.loaders.Add(1)
	go func() {
		defer r.loaders.Done()
		r.fill(blk)
		r.mu.Lock()
		blk.done = true
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
}

// bufferLocked returns a free buffer: a released one, a new one while fewer
// than max exist, or the least recently used idle block's.
func (r *ObjectReader) bufferLocked() []byte {
	if n := len(r.bufs); n > 0 {
		buf := r.bufs[n-1]
		r.bufs = r.bufs[:n-1]
		return buf
	}
	if r.nbufs < r.max {
		r.nbufs++
		r.peakBytes.Store(int64(r.nbufs) * r.bs)
		return make([]byte, r.bs)
	}
	var victim *block
	for _, blk := range r.blocks {
		if blk.done && blk.refs == 0 && (victim == nil || blk.used < victim.used) {
			victim = blk
		}
	}
	if victim == nil {
		return nil
	}
	delete(r.blocks, victim.idx)
	buf := victim.buf
	victim.buf = nil
	return buf
}

func (r *ObjectReader) freeLocked(blk *block) {
	if blk.buf != nil {
		r.bufs = append(r.bufs, blk.buf)
		blk.buf = nil
	}
	r.cond.Broadcast()
}

func (r *ObjectReader) release(blk *block) {
	r.mu.Lock()
	blk.refs--
	if blk.refs == 0 {
		r.cond.Broadcast()
	}
	r.mu.Unlock()
}

// fill fetches blk's bytes with one ranged GET.
func (r *ObjectReader) fill(blk *block) {
	off := blk.idx * r.bs
	want := min(r.bs, r.size-off)
	r.requests.Add(1)
	rc, err := r.b.GetRange(r.ctx, r.key, off, want)
	if err != nil {
		blk.err = err
		return
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, blk.buf[:want])
	r.fetched.Add(int64(n))
	blk.n = n
	if err != nil && !(errors.Is(err, io.ErrUnexpectedEOF) && n > 0) {
		blk.err = fmt.Errorf("read %s at %d: %w", r.Name(), off, err)
	}
}

// Close stops read-ahead and drops the cache.
func (r *ObjectReader) Close() error {
	r.mu.Lock()
	r.closed = true // no read-ahead starts after this
	r.mu.Unlock()
	r.cancel()
	r.loaders.Wait()
	r.mu.Lock()
	clear(r.blocks)
	r.bufs = nil
	r.cond.Broadcast()
	r.mu.Unlock()
	return nil
}

var (
	_ io.ReadSeeker = (*ObjectReader)(nil)
	_ io.ReaderAt   = (*ObjectReader)(nil)
)
