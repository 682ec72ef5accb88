package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in                     string
		scheme, bucket, prefix string
		bad                    bool
	}{
		{in: "s3://bucket", scheme: "s3", bucket: "bucket"},
		{in: "s3://bucket/", scheme: "s3", bucket: "bucket"},
		{in: "s3://my.bucket-1/videos/a.mp4", scheme: "s3", bucket: "my.bucket-1", prefix: "videos/a.mp4"},
		{in: "S3://bucket/out/", scheme: "s3", bucket: "bucket", prefix: "out"},
		{in: "file:///data/in", scheme: "file", prefix: "/data/in"},
		{in: "file://localhost/data/a%20b", scheme: "file", prefix: "/data/a b"},
		{in: "file:///data/x/../y/", scheme: "file", prefix: "/data/y"},
		{in: "/abs/path.mp4", scheme: "file", prefix: "/abs/path.mp4"},
		{in: "rel/dir", scheme: "file", prefix: filepath.Join(wd, "rel/dir")},
		{in: "", bad: true},
		{in: "s3://", bad: true},
		{in: "s3://ab", bad: true},
		{in: "s3://Bucket/x", bad: true},
		{in: "s3://-bucket/x", bad: true},
		{in: "s3://bucket/../x", bad: true},
		{in: "s3://bucket//x", bad: true},
		{in: "s3://bucket/a\\b", bad: true},
		{in: "s3://AKIA:secret@bucket/x", bad: true},
		{in: "file://host/x", bad: true},
		{in: "file://relative", bad: true},
		{in: "file:///x?y=1", bad: true},
		{in: "http://169.254.169.254/latest/meta-data", bad: true},
		{in: "gs://bucket/x", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			scheme, bucket, prefix, err := ParseURI(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrBadURI) {
					t.Fatalf("ParseURI(%q) = %q %q %q, %v; want ErrBadURI", tc.in, scheme, bucket, prefix, err)
				}
				return
			}
			if err != nil || scheme != tc.scheme || bucket != tc.bucket || prefix != tc.prefix {
				t.Fatalf("ParseURI(%q) = %q %q %q, %v; want %q %q %q", tc.in, scheme, bucket, prefix, err, tc.scheme, tc.bucket, tc.prefix)
			}
		})
	}
}

// TestParseURIRefusesCredentials: user info is refused as ErrCredentials
// for every scheme, and the message carries none of it, so nothing that
// quotes the error (a 400, a log, a job record) can leak it.
func TestParseURIRefusesCredentials(t *testing.T) {
	for _, in := range []string{
		"s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/x",
		"S3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/x",
		"s3://AKIAEXAMPLE@bucket",
		"s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket",
		"http://AKIAEXAMPLE:wJalrXUtnFEMI@169.254.169.254/latest",
		"https://AKIAEXAMPLE:wJalrXUtnFEMI@bucket.s3.amazonaws.com/x",
		"gs://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/x",
		"file://AKIAEXAMPLE:wJalrXUtnFEMI@localhost/x",
	} {
		_, _, _, err := ParseURI(in)
		if !errors.Is(err, ErrBadURI) || !errors.Is(err, ErrCredentials) {
			t.Errorf("ParseURI(%q) = %v; want ErrBadURI and ErrCredentials", in, err)
		}
		if err != nil && (strings.Contains(err.Error(), "AKIAEXAMPLE") || strings.Contains(err.Error(), "wJalrXUtnFEMI")) {
			t.Errorf("ParseURI(%q): error %q echoes credentials", in, err)
		}
	}
	// An '@' in a key is not user info.
	if _, b, k, err := ParseURI("s3://bucket/a@b.mp4"); err != nil || b != "bucket" || k != "a@b.mp4" {
		t.Fatalf("key with '@': %q %q %v", b, k, err)
	}
}

func TestOpenLocal(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in", "a.mp4"), []byte("video"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, uri, root, prefix string
	}{
		{"existing file", filepath.Join(dir, "in", "a.mp4"), filepath.Join(dir, "in"), "a.mp4"},
		{"existing dir", "file://" + filepath.Join(dir, "in"), filepath.Join(dir, "in"), ""},
		{"missing dirs", filepath.Join(dir, "out", "job1"), dir, "out/job1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, prefix, err := Open(ctx, tc.uri, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Name() != "file://"+tc.root || prefix != tc.prefix {
				t.Fatalf("Open(%s) = %s, %q; want file://%s, %q", tc.uri, b.Name(), prefix, tc.root, tc.prefix)
			}
			if got := URI(b, prefix); got != "file://"+strings.TrimPrefix(tc.uri, "file://") {
				t.Errorf("URI(b, prefix) = %s, want %s", got, tc.uri)
			}
		})
	}
	// The prefix from Open addresses the object the URI named.
	b, prefix, err := Open(ctx, filepath.Join(dir, "in", "a.mp4"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	attrs, err := b.Head(ctx, prefix)
	if err != nil || attrs.Size != 5 {
		t.Fatalf("head %s: %+v, %v", URI(b, prefix), attrs, err)
	}
	// Outputs can go to folders that do not exist yet.
	out, oprefix, err := Open(ctx, filepath.Join(dir, "out", "job1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Put(ctx, JoinKey(oprefix, "result.json"), strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "out", "job1", "result.json")); err != nil || string(data) != "{}" {
		t.Fatalf("output file: %q, %v", data, err)
	}
}

func TestOpenS3SendsNothing(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b, prefix, err := Open(context.Background(), "s3://bucket/videos/", Options{S3Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "s3://bucket" || prefix != "videos" {
		t.Fatalf("Open = %s, %q", b.Name(), prefix)
	}
	if _, _, err := Open(context.Background(), "s3://bucket/x", Options{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("open without region or endpoint: %v, want a region error", err)
	}
	if _, _, err := Open(context.Background(), "s3://bucket/x", Options{S3Endpoint: "http://user:pw@host"}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("endpoint with credentials: %v", err)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://bucket/a/b", "file:///x/y", "/abs", "rel", "s3://a:b@c/d", "file://h/x", "s3://bucket/../x", "x://", "://", "s3:///"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scheme, bucket, prefix, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("ParseURI(%q): error %v is not ErrBadURI", s, err)
			}
			// User info in an authority must never reach an error message.
			if i := strings.Index(s, "://"); i >= 0 && isScheme(s[:i]) {
				authority, _, _ := strings.Cut(s[i+3:], "/")
				if at := strings.LastIndexByte(authority, '@'); at >= 4 && strings.Contains(err.Error(), authority[:at]) {
					t.Fatalf("ParseURI(%q): error %q echoes user info", s, err)
				}
			}
			return
		}
		switch scheme {
		case "s3":
			if validBucket(bucket) != nil || (prefix != "" && ValidKey(prefix) != nil) {
				t.Fatalf("ParseURI(%q) accepted bucket %q prefix %q", s, bucket, prefix)
			}
		case "file":
			if bucket != "" || !filepath.IsAbs(prefix) || filepath.Clean(prefix) != prefix {
				t.Fatalf("ParseURI(%q) = file %q %q", s, bucket, prefix)
			}
		default:
			t.Fatalf("ParseURI(%q) = scheme %q", s, scheme)
		}
	})
}
