package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newFS(t *testing.T) *FSBucket {
	t.Helper()
	b, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestFSAcceptance(t *testing.T) {
	AcceptanceTest(t, newFS(t))
}

func TestFSMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := NewFS(dir)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "file://"+dir) {
		t.Fatalf("NewFS(missing) = %v, want ErrNotFound naming file://%s", err, dir)
	}
}

// Keys are validated, but a symlink planted in the tree must not lead reads or
// writes outside the root either.
func TestFSSymlinkCannotEscape(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	b, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if rc, err := b.Get(ctx, "link/secret"); err == nil {
		data, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("read %q through a symlink out of the root", data)
	}
	if err := b.Put(ctx, "link/planted", strings.NewReader("x")); err == nil {
		t.Fatal("wrote through a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file planted outside the root: %v", err)
	}
	var keys []string
	if err := b.List(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil || len(keys) != 0 {
		t.Fatalf("list followed the symlink: %q, %v", keys, err)
	}
}

// A crashed writer leaves a temporary file; it must not show as an object.
func TestFSIgnoresLeftoverTemporaryFiles(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	if err := b.Put(ctx, "d/real", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimPrefix(b.Name(), "file://")
	if err := os.WriteFile(filepath.Join(root, "d", tmpPrefix+"crashed"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "d/real" {
		t.Fatalf("list = %q, want [d/real]", keys)
	}
}

// A failed upload leaves neither the object nor its temporary file.
func TestFSFailedPutLeavesNothing(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	boom := errors.New("source broke")
	err := b.Put(ctx, "d/x", io.MultiReader(strings.NewReader("partial"), errReader{boom}))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), URI(b, "d/x")) {
		t.Fatalf("put from a failing reader: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(strings.TrimPrefix(b.Name(), "file://"), "d"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("after failed put the folder holds %v (%v)", entries, err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
