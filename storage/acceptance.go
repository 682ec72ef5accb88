package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// LargeObjectSize is the size AcceptanceTest uses for its large object; a
// backend under test should set its multipart threshold below it.
const LargeObjectSize = 20 << 20

// AcceptanceTest checks the behaviour every Bucket promises (see Bucket). b
// must be empty; the test leaves it empty. Every backend's tests call it, so
// the backends cannot drift apart.
func AcceptanceTest(t *testing.T, b Bucket) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("RoundTrip", func(t *testing.T) {
		for _, key := range []string{"obj", "a/b/c.json", "with space/ünïcödé+%20&=?.txt"} {
			data := []byte("@payload of " + key + "@")
			mustPut(t, ctx, b, key, data)
			got := mustGet(t, ctx, b, key)
			if !bytes.Equal(got, data) {
				t.Errorf("get %s: got %q, want %q", key, got, data)
			}
			attrs, err := b.Head(ctx, key)
			if err != nil {
				t.Fatalf("head %s: %v", key, err)
			}
			if attrs.Size != int64(len(data)) {
				t.Errorf("head %s: size %d, want %d", key, attrs.Size, len(data))
			}
			if d := time.Since(attrs.LastModified); d < -time.Hour || d > time.Hour {
				t.Errorf("head %s: last modified %v, not near now", key, attrs.LastModified)
			}
			mustDelete(t, ctx, b, key)
		}
		// An empty object is an object.
		mustPut(t, ctx, b, "empty", nil)
		if got := mustGet(t, ctx, b, "empty"); len(got) != 0 {
			t.Errorf("get empty: %d bytes", len(got))
		}
		mustDelete(t, ctx, b, "empty")
	})

	t.Run("GetRange", func(t *testing.T) {
		const key = "range/obj"
		mustPut(t, ctx, b, key, []byte("0123456789"))
		defer mustDelete(t, ctx, b, key)
		for _, tc := range []struct {
			name        string
			off, length int64
			want        string
		}{
			{"middle", 2, 3, "234"},
			{"start", 0, 1, "0"},
			{"to end", 7, -1, "789"},
			{"whole", 0, -1, "0123456789"},
			{"length past end", 8, 100, "89"},
			{"last byte", 9, 1, "9"},
			{"zero length", 3, 0, ""},
			{"offset at end", 10, 5, ""},
			{"offset past end", 50, -1, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rc, err := b.GetRange(ctx, key, tc.off, tc.length)
				if err != nil {
					t.Fatalf("get range %d+%d: %v", tc.off, tc.length, err)
				}
				got, err := io.ReadAll(rc)
				closeErr := rc.Close()
				if err != nil || closeErr != nil {
					t.Fatalf("read range %d+%d: %v, close: %v", tc.off, tc.length, err, closeErr)
				}
				if string(got) != tc.want {
					t.Errorf("range %d+%d: got %q, want %q", tc.off, tc.length, got, tc.want)
				}
			})
		}
		for _, r := range [][2]int64{{-1, 2}, {0, -2}} {
			if _, err := b.GetRange(ctx, key, r[0], r[1]); !errors.Is(err, ErrBadRange) {
				t.Errorf("range %d+%d: got %v, want ErrBadRange", r[0], r[1], err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		keys := []string{
			"id1/obj_1.some", "id1/obj_2.some", "id1/sub/subobj_1.some",
			"id1/sub/subobj_2.some", "id1.txt", "id10/x", "id2/obj_4.some", "obj_5.some",
		}
		for _, k := range slices.Backward(keys) { // put order must not matter
			mustPut(t, ctx, b, k, []byte(k))
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			// "id1.txt" sorts before "id1/...": byte order, not walk order.
			{"", []string{"id1.txt", "id1/obj_1.some", "id1/obj_2.some", "id1/sub/subobj_1.some", "id1/sub/subobj_2.some", "id10/x", "id2/obj_4.some", "obj_5.some"}},
			{"id1/", []string{"id1/obj_1.some", "id1/obj_2.some", "id1/sub/subobj_1.some", "id1/sub/subobj_2.some"}},
			{"id1", []string{"id1.txt", "id1/obj_1.some", "id1/obj_2.some", "id1/sub/subobj_1.some", "id1/sub/subobj_2.some", "id10/x"}},
			{"id1/sub/subobj_2", []string{"id1/sub/subobj_2.some"}},
			{"id1/o", []string{"id1/obj_1.some", "id1/obj_2.some"}},
			{"nothing/", nil},
			{"obj_5.some/", nil},
		} {
			if got := mustList(t, ctx, b, tc.prefix); !slices.Equal(got, tc.want) {
				t.Errorf("list %q:\n got %q\nwant %q", tc.prefix, got, tc.want)
			}
		}
		// An error from fn stops the listing and comes back as is.
		stop := errors.New("stop")
		calls := 0
		err := b.List(ctx, "", func(string) error { calls++; return stop })
		if err != stop || calls != 1 {
			t.Errorf("list with failing fn: err %v after %d calls, want %v after 1", err, calls, stop)
		}
		for _, k := range keys {
			mustDelete(t, ctx, b, k)
		}
		if got := mustList(t, ctx, b, ""); len(got) != 0 {
			t.Errorf("list after deleting all: %q", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		mustPut(t, ctx, b, "del/x", []byte("x"))
		mustDelete(t, ctx, b, "del/x")
		if _, err := b.Head(ctx, "del/x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("head after delete: got %v, want ErrNotFound", err)
		}
		// Deleting a missing key succeeds on every backend, as S3 does.
		if err := b.Delete(ctx, "del/x"); err != nil {
			t.Errorf("delete missing: %v, want nil", err)
		}
		if err := b.Delete(ctx, "never/was/here"); err != nil {
			t.Errorf("delete missing: %v, want nil", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		const key = "missing/obj"
		checks := map[string]error{}
		_, checks["get"] = b.Get(ctx, key)
		_, checks["get range"] = b.GetRange(ctx, key, 1, 2)
		_, checks["get zero range"] = b.GetRange(ctx, key, 0, 0)
		_, checks["head"] = b.Head(ctx, key)
		for op, err := range checks {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s missing: got %v, want ErrNotFound", op, err)
			} else if uri := URI(b, key); !strings.Contains(err.Error(), uri) {
				t.Errorf("%s missing: error %q does not name %s", op, err, uri)
			}
		}
		// A file where a folder would be is no object either.
		mustPut(t, ctx, b, "missing", []byte("x"))
		if _, err := b.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("get under an object: got %v, want ErrNotFound", err)
		}
		mustDelete(t, ctx, b, "missing")
	})

	t.Run("PutIfAbsent", func(t *testing.T) {
		const key = "once/obj"
		if err := b.PutIfAbsent(ctx, key, strings.NewReader("first")); err != nil {
			t.Fatalf("first put if absent: %v", err)
		}
		err := b.PutIfAbsent(ctx, key, strings.NewReader("second"))
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), URI(b, key)) {
			t.Errorf("second put if absent: got %v, want ErrExists naming %s", err, URI(b, key))
		}
		if got := mustGet(t, ctx, b, key); string(got) != "first" {
			t.Errorf("after second put if absent: %q, want %q", got, "first")
		}
		if got := mustList(t, ctx, b, "once/"); !slices.Equal(got, []string{key}) {
			t.Errorf("list after put if absent: %q (leftover temporary objects?)", got)
		}
		mustDelete(t, ctx, b, key)
	})

	t.Run("BadKeys", func(t *testing.T) {
		mustPut(t, ctx, b, "x", []byte("x")) // what "../x" would hit if it resolved
		defer mustDelete(t, ctx, b, "x")
		bad := []string{"../x", "/abs", "a/../b", "", "./x", "a/./b", "a//b", "a/", "..", "a\\b", "a\x00b", "a\nb", "\x7f", strings.Repeat("k", MaxKeyLen+1)}
		for _, key := range bad {
			ops := map[string]func() error{
				"get":           func() error { _, err := b.Get(ctx, key); return err },
				"get range":     func() error { _, err := b.GetRange(ctx, key, 0, 1); return err },
				"put":           func() error { return b.Put(ctx, key, strings.NewReader("evil")) },
				"put if absent": func() error { return b.PutIfAbsent(ctx, key, strings.NewReader("evil")) },
				"head":          func() error { _, err := b.Head(ctx, key); return err },
				"delete":        func() error { return b.Delete(ctx, key) },
			}
			for op, f := range ops {
				if err := f(); !errors.Is(err, ErrBadKey) {
					t.Errorf("%s %q: got %v, want ErrBadKey", op, key, err)
				}
			}
		}
		for _, prefix := range []string{"../", "/abs", "a/../", "a\\b"} {
			if err := b.List(ctx, prefix, func(string) error { return nil }); !errors.Is(err, ErrBadKey) {
				t.Errorf("list %q: got %v, want ErrBadKey", prefix, err)
			}
		}
		if got := mustList(t, ctx, b, ""); !slices.Equal(got, []string{"x"}) {
			t.Errorf("bad keys changed the bucket: %q", got)
		}
		if got := mustGet(t, ctx, b, "x"); string(got) != "x" {
			t.Errorf("bad keys overwrote x: %q", got)
		}
	})

	t.Run("Large", func(t *testing.T) {
		const key = "large/obj"
		data := randomBytes(LargeObjectSize, 1)
		// A reader that cannot seek, as a pipe from an encoder would be.
		if err := b.Put(ctx, key, struct{ io.Reader }{bytes.NewReader(data)}); err != nil {
			t.Fatalf("put large: %v", err)
		}
		defer mustDelete(t, ctx, b, key)
		if got := mustGet(t, ctx, b, key); !bytes.Equal(got, data) {
			t.Fatalf("get large: %d bytes, differ from the %d put", len(got), len(data))
		}
		attrs, err := b.Head(ctx, key)
		if err != nil || attrs.Size != LargeObjectSize {
			t.Fatalf("head large: %+v, %v", attrs, err)
		}
		// A range across a part boundary (parts are at least 5 MiB).
		off := int64(5<<20 - 100)
		rc, err := b.GetRange(ctx, key, off, 200)
		if err != nil {
			t.Fatalf("get range large: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[off:off+200]) {
			t.Errorf("range across part boundary: %v, equal %v", err, bytes.Equal(got, data[off:off+200]))
		}
		// A large conditional write loses whole, leaving the object intact.
		err = b.PutIfAbsent(ctx, key, bytes.NewReader(randomBytes(LargeObjectSize, 2)))
		if !errors.Is(err, ErrExists) {
			t.Errorf("large put if absent over existing: got %v, want ErrExists", err)
		}
		if got := mustGet(t, ctx, b, key); !bytes.Equal(got, data) {
			t.Errorf("large object changed by a failed put if absent")
		}
	})

	t.Run("AtomicOverwrite", func(t *testing.T) {
		// Readers racing overwrites must see one whole version, never a mix
		// or a prefix.
		const key = "atomic/obj"
		versions := [][]byte{bytes.Repeat([]byte{'a'}, 256<<10), bytes.Repeat([]byte{'b'}, 384<<10)}
		mustPut(t, ctx, b, key, versions[0])
		defer mustDelete(t, ctx, b, key)
		var wg sync.WaitGroup
		done := make(chan struct{})
		errs := make(chan error, 16)
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					rc, err := b.Get(ctx, key)
					if err != nil {
						errs <- fmt.Errorf("get during overwrite: %w", err)
						return
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						errs <- fmt.Errorf("read during overwrite: %w", err)
						return
					}
					if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
						errs <- fmt.Errorf("read a torn object: %d bytes", len(got))
						return
					}
				}
			})
		}
		for i := range 20 {
			if err := b.Put(ctx, key, bytes.NewReader(versions[(i+1)%2])); err != nil {
				t.Errorf("overwrite %d: %v", i, err)
				break
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := mustGet(t, ctx, b, key); !bytes.Equal(got, versions[0]) {
			t.Errorf("after overwrites: %d bytes, want the last version", len(got))
		}
		if got := mustList(t, ctx, b, "atomic/"); !slices.Equal(got, []string{key}) {
			t.Errorf("list after overwrites: %q", got)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Put(cctx, "canceled", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("put with canceled context: got %v, want context.Canceled", err)
		}
		if _, err := b.Head(ctx, "canceled"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a canceled put left an object: %v", err)
		}
	})

	if got := mustList(t, ctx, b, ""); len(got) != 0 {
		t.Errorf("acceptance test left objects: %q", got)
	}
}

func mustPut(t *testing.T, ctx context.Context, b Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(ctx, key, bytes.NewReader(data)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func mustGet(t *testing.T, ctx context.Context, b Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

func mustDelete(t *testing.T, ctx context.Context, b Bucket, key string) {
	t.Helper()
	if err := b.Delete(ctx, key); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

func mustList(t *testing.T, ctx context.Context, b Bucket, prefix string) []string {
	t.Helper()
	var keys []string
	if err := b.List(ctx, prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

// randomBytes makes n reproducible bytes that do not compress, so a backend
// cannot pass by accident on repeated patterns.
func randomBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(data)
	return data
}
