package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/storage"
)

// FuzzManifest expands a fuzzed manifest, read from a bucket as the job
// service reads them, under a policy that serves one bucket. Whatever its
// bytes: an error names the manifest; a success lists at most MaxVideos
// inputs, each a line of the manifest or a video key listed in the served
// bucket; and the foreign bucket is never opened, listed or returned.
func FuzzManifest(f *testing.F) {
	dir := f.TempDir()
	buckets := map[string]*storage.FSBucket{}
	for _, name := range []string{"okay", "secret"} {
		if err := os.MkdirAll(filepath.Join(dir, name, "cams"), 0o755); err != nil {
			f.Fatal(err)
		}
		for _, k := range []string{"cams/a.mp4", "cams/b.MKV", "cams/notes.txt", "cams/c.mxf"} {
			if err := os.WriteFile(filepath.Join(dir, name, k), []byte("x"), 0o644); err != nil {
				f.Fatal(err)
			}
		}
		b, err := storage.NewFS(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { b.Close() })
		buckets[name] = b
	}
	okay := buckets["okay"]
	var opened []string
	open := func(ctx context.Context, uri string) (storage.Bucket, string, error) {
		opened = append(opened, uri)
		_, bucket, key, err := storage.ParseURI(uri)
		if err != nil {
			return nil, "", err
		}
		b := buckets[bucket]
		if b == nil {
			return nil, "", fmt.Errorf("open %s: no such bucket", uri)
		}
		return b, key, nil
	}
	policy := Policy{Allow: func(loc string) error {
		if !IsRemote(loc) {
			return nil
		}
		_, b, _, err := storage.ParseURI(loc)
		if err != nil {
			return err
		}
		if b != "okay" {
			return fmt.Errorf("bucket %q is not served", b)
		}
		return nil
	}}

	f.Add([]byte("# cameras\ns3://okay/cams/a.mp4\n\n  /data/b.avi  \n"))
	f.Add([]byte("s3://okay/cams/\n"))
	f.Add([]byte("s3://okay/a.mp4\ns3://secret/cams/\n"))
	f.Add([]byte("@s3://okay/m.txt\n"))
	f.Add([]byte("s3://AKIA:secret@okay/a.mp4\n"))
	f.Add([]byte("s3://okay/nothing-here/\r\n# only a comment\r\n"))
	f.Add([]byte(strings.Repeat("s3://okay/cams/\n", 20)))
	f.Add([]byte("\xff\xfe/x.mp4\n\x00\n"))

	manifest := filepath.Join(dir, "okay", "m.txt")
	const uri = "s3://okay/m.txt"
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := os.WriteFile(manifest, body, 0o644); err != nil {
			t.Fatal(err)
		}
		opened = opened[:0]
		out, err := ExpandWith(context.Background(), []string{"@" + uri}, open, policy)
		for _, u := range opened {
			if strings.HasPrefix(u, "s3://secret") {
				t.Fatalf("opened %s", u)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), uri) {
				t.Fatalf("error does not name the manifest: %v", err)
			}
			return
		}
		if len(out) == 0 || len(out) > MaxVideos {
			t.Fatalf("%d inputs", len(out))
		}
		lines := map[string]bool{}
		for l := range strings.Lines(string(body)) {
			lines[strings.TrimSpace(l)] = true
		}
		for _, in := range out {
			listed := strings.HasPrefix(in, okay.Name()+"/")
			switch {
			case strings.HasPrefix(in, "s3://secret") || strings.HasPrefix(in, "@"):
				t.Fatalf("input %q", in)
			case listed && !strings.HasPrefix(in, okay.Name()+"/cams/"):
				t.Fatalf("listed %q outside a prefix the manifest names", in)
			case !listed && !lines[in]:
				t.Fatalf("input %q is no line of the manifest", in)
			case strings.HasPrefix(in, "#") || in == "":
				t.Fatalf("comment or blank line %q taken as an input", in)
			}
		}
	})
}
