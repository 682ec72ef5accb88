package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// tmpPrefix marks files being written; List never shows them. A crash leaves
// them behind, harmless and easy to find.
const tmpPrefix = ".vidpipe-tmp-"

// FSBucket is a Bucket in a local directory; key "a/b" is the file dir/a/b.
// All access goes through os.Root, so neither keys nor symlinks planted in the
// tree can reach files outside dir.
type FSBucket struct {
	root *os.Root
	name string
}

// NewFS opens the existing directory dir as a bucket.
func NewFS(dir string) (*FSBucket, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", joinURI("file://", dir), err)
	}
	name := "file://" + abs
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, fsErr(err))
	}
	return &FSBucket{root: root, name: name}, nil
}

// Name returns "file:///abs/dir".
func (b *FSBucket) Name() string { return b.name }

// Close releases the directory handle.
func (b *FSBucket) Close() error { return b.root.Close() }

func (b *FSBucket) uri(key string) string { return joinURI(b.name, key) }

// Get opens the whole object.
func (b *FSBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return b.GetRange(ctx, key, 0, -1)
}

// GetRange opens length bytes from off (length -1: to the end).
func (b *FSBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", b.name, err)
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: %w: offset %d, length %d", b.uri(key), ErrBadRange, off, length)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", b.uri(key), err)
	}
	f, err := b.openFile(key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", b.uri(key), err)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("get %s: %w", b.uri(key), err)
		}
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// openFile opens key's regular file; a directory is no object.
func (b *FSBucket) openFile(key string) (*os.File, error) {
	f, err := b.root.Open(key)
	if err != nil {
		return nil, fsErr(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fsErr(err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotFound
	}
	return f, nil
}

// Put writes r to a temporary file beside the target, syncs it and renames it
// over the target, so readers never see a partial object.
func (b *FSBucket) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("put %s: %w", b.name, err)
	}
	if err := b.write(ctx, key, r, b.root.Rename); err != nil {
		return fmt.Errorf("put %s: %w", b.uri(key), err)
	}
	return nil
}

// PutIfAbsent writes a complete temporary file, then hard-links it to the
// key: link(2) fails when the name exists, with O_EXCL's atomicity, and the
// object appears whole or not at all.
func (b *FSBucket) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("put %s: %w", b.name, err)
	}
	link := func(tmp, key string) error {
		err := b.root.Link(tmp, key)
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	if err := b.write(ctx, key, r, link); err != nil {
		return fmt.Errorf("put %s: %w", b.uri(key), err)
	}
	return nil
}

func (b *FSBucket) write(ctx context.Context, key string, r io.Reader, publish func(tmp, key string) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := path.Dir(key)
	if dir != "." {
		if err := b.root.MkdirAll(dir, 0o755); err != nil {
			return permErr(err)
		}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
	f, err := b.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return permErr(err)
	}
	defer func() {
		// The temporary name goes in every case: renamed, linked (the key
		// keeps the data) or failed.
		if rmErr := b.root.Remove(tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = rmErr
		}
	}()
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := publish(tmp, key); err != nil {
		return permErr(err)
	}
	// Sync the directory so the new name survives a crash.
	if d, err := b.root.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Head returns the object's size and modification time.
func (b *FSBucket) Head(ctx context.Context, key string) (Attributes, error) {
	if err := ValidKey(key); err != nil {
		return Attributes{}, fmt.Errorf("head %s: %w", b.name, err)
	}
	if err := ctx.Err(); err != nil {
		return Attributes{}, fmt.Errorf("head %s: %w", b.uri(key), err)
	}
	fi, err := b.root.Stat(key)
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		return Attributes{}, fmt.Errorf("head %s: %w", b.uri(key), fsErr(err))
	}
	return Attributes{Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// List walks only the directory that prefix points into, then sorts: a
// directory walk orders "a/b" before "a.txt", byte order does not. Keys that
// fail ValidKey (files made by other tools) are skipped.
func (b *FSBucket) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := validPrefix(prefix); err != nil {
		return fmt.Errorf("list %s: %w", b.name, err)
	}
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var keys []string
	err := fs.WalkDir(b.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(p, prefix) {
			return nil
		}
		if ValidKey(p) == nil {
			keys = append(keys, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", b.uri(prefix), fsErr(err))
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object; a missing one is not an error. Emptied
// directories stay: removing them would race with a concurrent Put creating
// a file in them.
func (b *FSBucket) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("delete %s: %w", b.name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", b.uri(key), err)
	}
	fi, err := b.root.Lstat(key)
	if err != nil {
		if err = fsErr(err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", b.uri(key), err)
	}
	if fi.IsDir() {
		return nil
	}
	if err := b.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", b.uri(key), fsErr(err))
	}
	return nil
}

// fsErr maps filesystem errors onto the sentinels. A file where a directory
// should be (ENOTDIR) means the key cannot exist, as S3 would say.
func fsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists):
		return err
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	return err
}

// permErr maps only permission errors: for writes, a missing directory or a
// file in the way is not "not found".
func permErr(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	return err
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
