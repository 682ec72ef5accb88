package ingest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/storage"
)

func noStorage(ctx context.Context, uri string) (storage.Bucket, string, error) {
	return storage.Open(ctx, uri, storage.Options{})
}

func TestExpandManifest(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "list.txt")
	body := "# cameras\n/data/a.mp4\n\n  /data/b.avi  \n"
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Expand(context.Background(), []string{"/x/first.mp4", "@" + manifest}, noStorage)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/x/first.mp4", "/data/a.mp4", "/data/b.avi"}; !slices.Equal(got, want) {
		t.Errorf("Expand = %v, want %v", got, want)
	}

	nested := filepath.Join(dir, "nested.txt")
	if err := os.WriteFile(nested, []byte("@"+manifest+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.txt")
	if err := os.WriteFile(huge, []byte(strings.Repeat("/v.mp4\n", MaxVideos+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"@" + nested, "@" + empty, "@" + huge, "@" + filepath.Join(dir, "missing.txt")} {
		if _, err := Expand(context.Background(), []string{bad}, noStorage); err == nil || !strings.Contains(err.Error(), filepath.Base(bad[1:])) && !strings.Contains(err.Error(), "more than") {
			t.Errorf("Expand(%s) = %v; want an error naming it", bad, err)
		}
	}
}

func TestExpandLocalPrefixIsOneInput(t *testing.T) {
	// Only s3:// prefixes are listed: a local path, even a directory, is
	// one input, and fails as that video if it is not one.
	got, err := Expand(context.Background(), []string{"/data/dir/"}, noStorage)
	if err != nil || !slices.Equal(got, []string{"/data/dir/"}) {
		t.Errorf("Expand = %v, %v", got, err)
	}
}
