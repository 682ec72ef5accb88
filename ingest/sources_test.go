package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/s3test"
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

// s3Store starts versitygw with the given buckets and returns an Opener on
// it that records every location it opens.
func s3Store(t *testing.T, buckets ...string) (open Opener, opened func() []string, put func(uri, body string)) {
	t.Helper()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	for _, b := range buckets {
		srv.CreateBucket(t, b)
	}
	var mu sync.Mutex
	var seen []string
	open = func(ctx context.Context, uri string) (storage.Bucket, string, error) {
		mu.Lock()
		seen = append(seen, uri)
		mu.Unlock()
		b, key, err := storage.Open(ctx, uri, storage.Options{S3Endpoint: srv.Endpoint})
		if err == nil {
			t.Cleanup(func() { b.Close() })
		}
		return b, key, err
	}
	opened = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	put = func(uri, body string) {
		t.Helper()
		b, key, err := storage.Open(context.Background(), uri, storage.Options{S3Endpoint: srv.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Put(context.Background(), key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	return open, opened, put
}

// onlyBucket is a policy's Allow for one bucket.
func onlyBucket(bucket string) func(string) error {
	return func(loc string) error {
		_, b, _, err := storage.ParseURI(loc)
		if err != nil {
			return err
		}
		if b != bucket {
			return fmt.Errorf("bucket %q is not served", b)
		}
		return nil
	}
}

// TestPrefixListsOnlyDecodableVideos: a prefix listing takes exactly the
// extensions of the formats the decoder accepts; an .mxf file, which the
// decoder refuses, is not a video of the job.
func TestPrefixListsOnlyDecodableVideos(t *testing.T) {
	open, _, put := s3Store(t, "vids")
	for _, k := range []string{"cam/a.mxf", "cam/b.mp4", "cam/c.MKV", "cam/d.y4m", "cam/notes.txt", "cam/e.wmv"} {
		put("s3://vids/"+k, "x")
	}
	got, err := Expand(context.Background(), []string{"s3://vids/cam/"}, open)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s3://vids/cam/b.mp4", "s3://vids/cam/c.MKV", "s3://vids/cam/d.y4m", "s3://vids/cam/e.wmv"}
	if !slices.Equal(got, want) {
		t.Fatalf("Expand = %q, want %q", got, want)
	}
}

// TestExpandNeverReadsLocalManifests: a service's policy never reads a
// file of its own host as a manifest, and its error shows none of it.
func TestExpandNeverReadsLocalManifests(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "some.conf")
	if err := os.WriteFile(conf, []byte("/secret/line-one.mp4\npassword=hunter2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ExpandWith(context.Background(), []string{"@" + conf}, noStorage, Policy{})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "s3://") {
		t.Fatalf("err = %v, want ErrNotAllowed saying manifests are s3:// objects", err)
	}
	if strings.Contains(err.Error(), "line-one") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error echoes the file: %v", err)
	}
	// The local CLI still reads its own manifests.
	if got, err := Expand(context.Background(), []string{"@" + conf}, noStorage); err != nil || len(got) != 2 {
		t.Fatalf("CLI Expand = %q, %v", got, err)
	}
}

// TestExpandAllowsBeforeListing: a manifest line naming a foreign bucket
// is refused before that bucket is opened, and the error names no key in it.
func TestExpandAllowsBeforeListing(t *testing.T) {
	open, opened, put := s3Store(t, "okay", "secret")
	put("s3://secret/private/first-secret-key.mp4", "x")
	put("s3://okay/list.txt", "s3://okay/a.mp4\ns3://secret/private/\n")
	policy := Policy{Allow: onlyBucket("okay")}
	for _, inputs := range [][]string{
		{"@s3://okay/list.txt"},   // a manifest line
		{"s3://secret/private/"},  // a prefix in the spec
		{"@s3://secret/list.txt"}, // a manifest in the spec
		{"s3://okay/a.mp4", "s3://secret/private/x.mp4"},
	} {
		_, err := ExpandWith(context.Background(), inputs, open, policy)
		if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), `bucket "secret"`) {
			t.Errorf("%q: err = %v, want ErrNotAllowed naming the bucket", inputs, err)
		}
		if err != nil && strings.Contains(err.Error(), "first-secret-key") {
			t.Errorf("%q: error names a key of the foreign bucket: %v", inputs, err)
		}
	}
	for _, u := range opened() {
		if strings.HasPrefix(u, "s3://secret") {
			t.Errorf("opened %s", u)
		}
	}
}

// TestExpandBoundsManifestWork: the manifests and listings one call may
// ask for are bounded, and the error names the limit that was hit.
func TestExpandBoundsManifestWork(t *testing.T) {
	open, opened, put := s3Store(t, "okay")
	line := "s3://okay/v/a.mp4\n"
	put("s3://okay/small.txt", line)
	put("s3://okay/medium.txt", strings.Repeat(line, 50)) // 900 bytes
	put("s3://okay/big.txt", strings.Repeat(line, 100))   // 1800 bytes
	for i := range 5 {
		put(fmt.Sprintf("s3://okay/keys/%d.txt", i), "x")
	}
	put("s3://okay/keys/a.mp4", "x")
	limits := Limits{Manifests: 3, ManifestBytes: 1000, TotalManifestBytes: 1100, Prefixes: 2, Listed: 5}
	many := slices.Repeat([]string{"@s3://okay/small.txt"}, 4)
	for name, tc := range map[string]struct {
		inputs []string
		limit  string
		opens  int
	}{
		"manifests":      {many, "of 3 manifests", 0},
		"manifest bytes": {[]string{"@s3://okay/big.txt"}, "of 1000 bytes per manifest", 1},
		"total bytes":    {[]string{"@s3://okay/medium.txt", "@s3://okay/medium.txt"}, "of 1100 manifest bytes", 2},
		"prefixes":       {[]string{"s3://okay/a/", "s3://okay/b/", "s3://okay/c/"}, "of 2 prefixes", 0},
		"listed keys":    {[]string{"s3://okay/keys/"}, "of 5 listed keys", 1},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(opened())
			_, err := ExpandWith(context.Background(), tc.inputs, open, Policy{Limits: limits})
			if !errors.Is(err, ErrOverLimit) || !strings.Contains(err.Error(), tc.limit) {
				t.Fatalf("err = %v, want ErrOverLimit naming %q", err, tc.limit)
			}
			if n := len(opened()) - before; n != tc.opens {
				t.Fatalf("%d locations opened, want %d", n, tc.opens)
			}
		})
	}
	// Within the limits the same store expands.
	got, err := ExpandWith(context.Background(), []string{"@s3://okay/small.txt", "s3://okay/keys/"}, open, Policy{Limits: Limits{Listed: 6}})
	if want := []string{"s3://okay/v/a.mp4", "s3://okay/keys/a.mp4"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("ExpandWith = %q, %v; want %q", got, err, want)
	}
}

// TestExpandRefusesCredentials: the local CLI's Expand, with no policy,
// still refuses a URI carrying an access key and secret, in the inputs or
// in a manifest, without repeating them.
func TestExpandRefusesCredentials(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(manifest, []byte("/v/a.mp4\ns3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/b.mp4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/a.mp4", "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/cams/", "@" + manifest} {
		got, err := Expand(context.Background(), []string{in}, noStorage)
		if !errors.Is(err, storage.ErrCredentials) {
			t.Fatalf("Expand(%q) = %q, %v; want ErrCredentials", in, got, err)
		}
		if strings.Contains(err.Error(), "AKIAEXAMPLE") || strings.Contains(err.Error(), "wJalrXUtnFEMI") {
			t.Fatalf("Expand(%q): error echoes the credentials: %v", in, err)
		}
	}
}

// TestNamesUniqueByConstruction: a generated suffix must not take the name
// another input has by itself, whatever the order, and stays within the
// length a name may have.
func TestNamesUniqueByConstruction(t *testing.T) {
	long := strings.Repeat("a", bus.MaxNameLen+10)
	for _, inputs := range [][]string{
		{"dup1/cam.mp4", "dup2/cam.mp4", "cam-2.mp4"},
		{"cam-2.mp4", "dup1/cam.mp4", "dup2/cam.mp4"},
		{"a/x.mp4", "b/x.mp4", "c/x.mp4", "x-2.mp4", "x-3.avi"},
		{"a/" + long + ".mp4", "b/" + long + ".mp4", "c/" + long + ".mkv"},
	} {
		names := Names(inputs)
		seen := map[string]string{}
		for i, n := range names {
			if err := bus.ValidName("video", n); err != nil {
				t.Errorf("%v: name %d: %v", inputs, i, err)
			}
			if prev, dup := seen[n]; dup {
				t.Errorf("%v: %s and %s are both named %q", inputs, prev, inputs[i], n)
			}
			seen[n] = inputs[i]
		}
	}
	if got := Names([]string{"dup1/cam.mp4", "dup2/cam.mp4", "cam-2.mp4"}); got[0] != "cam" || got[2] != "cam-2" {
		t.Errorf("names %v: an input keeps its own name when it is the first with it", got)
	}
}
