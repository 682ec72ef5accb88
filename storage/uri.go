package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options configures Open. The zero value uses AWS's default credential and
// region chain against AWS S3.
type Options struct {
	// S3Endpoint is the base URL of an S3-compatible store such as versitygw
	// ("http://127.0.0.1:7070"). Empty means AWS, or AWS_ENDPOINT_URL_S3 /
	// AWS_ENDPOINT_URL when set.
	S3Endpoint string
	// S3Region overrides the region from the default chain; with an endpoint
	// and no region anywhere, "us-east-1" is used.
	S3Region string
	// S3PathStyle addresses buckets as endpoint/bucket. It is on whenever an
	// endpoint is set, unless S3VirtualHost is set.
	S3PathStyle bool
	// S3VirtualHost forces bucket.endpoint addressing with a custom endpoint.
	S3VirtualHost bool
	// S3PartSize is the multipart part size in bytes (default 8 MiB, at least
	// 5 MiB as S3 requires).
	S3PartSize int64
	// S3MultipartThreshold is the object size from which Put uses a multipart
	// upload (default 16 MiB).
	S3MultipartThreshold int64
	// S3Concurrency is the number of parts uploaded at once (default 4). Put
	// buffers up to S3PartSize*(S3Concurrency+1) bytes.
	S3Concurrency int
	// S3RetryMaxBackoff caps the wait between the SDK's attempts (default 20s).
	S3RetryMaxBackoff time.Duration
	// Logger receives retry notices; request bodies and signatures are never
	// logged. Nil discards.
	Logger *slog.Logger
}

// ParseURI splits a storage URI. "s3://bucket/a/b" gives ("s3", "bucket",
// "a/b"); "file:///abs/dir" and plain local paths give ("file", "", "/abs/dir"),
// the path made absolute and clean. The S3 prefix passes ValidKey (a trailing
// '/' is dropped); URIs carrying credentials are refused without echoing them.
func ParseURI(s string) (scheme, bucket, prefix string, err error) {
	if s == "" {
		return "", "", "", fmt.Errorf("%w: empty", ErrBadURI)
	}
	i := strings.Index(s, "://")
	if i < 0 || !isScheme(s[:i]) {
		if strings.ContainsRune(s, 0) {
			return "", "", "", fmt.Errorf("%w %q: NUL in path", ErrBadURI, s)
		}
		abs, err := filepath.Abs(s)
		if err != nil {
			return "", "", "", fmt.Errorf("%w %q: %w", ErrBadURI, s, err)
		}
		return "file", "", abs, nil
	}
	// User info is refused for every scheme, before anything that could
	// quote the URI: the message must not carry an access key or secret.
	if authority, _, _ := strings.Cut(s[i+3:], "/"); strings.Contains(authority, "@") {
		return "", "", "", fmt.Errorf("%w: %w: pass credentials through the environment, not in the uri", ErrBadURI, ErrCredentials)
	}
	switch strings.ToLower(s[:i]) {
	case "s3":
		return parseS3(s, s[i+3:])
	case "file":
		return parseFile(s)
	default:
		return "", "", "", fmt.Errorf("%w: unsupported scheme %q (want s3:// or file://)", ErrBadURI, s[:i])
	}
}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

func parseS3(s, rest string) (string, string, string, error) {
	bucket, prefix, _ := strings.Cut(rest, "/")
	if strings.Contains(bucket, ":") {
		// Never echo what may be an access key and secret.
		return "", "", "", fmt.Errorf("%w: s3 uri with a port or credentials; name the endpoint with --s3-endpoint and pass credentials through the environment", ErrBadURI)
	}
	if err := validBucket(bucket); err != nil {
		return "", "", "", fmt.Errorf("%w %q: %w", ErrBadURI, s, err)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix != "" {
		if reason := keyProblem(prefix); reason != "" {
			return "", "", "", fmt.Errorf("%w %s: key prefix: %s", ErrBadURI, quoteKey(s), reason)
		}
	}
	return "s3", bucket, prefix, nil
}

// validBucket follows S3's naming rules, with '_' allowed for older buckets
// and S3-compatible stores.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name must have 3 to 63 characters")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && ((c != '.' && c != '-' && c != '_') || i == 0 || i == len(b)-1) {
			return fmt.Errorf("bucket name must be lowercase letters, digits, '.', '-' or '_', starting and ending alphanumeric")
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket name must not contain \"..\"")
	}
	return nil
}

func parseFile(s string) (string, string, string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: %w", ErrBadURI, err)
	}
	if u.User != nil {
		return "", "", "", fmt.Errorf("%w: %w: file uri with user info", ErrBadURI, ErrCredentials)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", "", "", fmt.Errorf("%w %q: file uri with host %q (want file:///abs/path)", ErrBadURI, s, u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", fmt.Errorf("%w %q: file uri with query or fragment", ErrBadURI, s)
	}
	if !filepath.IsAbs(u.Path) || strings.ContainsRune(u.Path, 0) {
		return "", "", "", fmt.Errorf("%w %q: file uri path must be absolute", ErrBadURI, s)
	}
	return "file", "", filepath.Clean(u.Path), nil
}

// Open opens the bucket holding uri and returns it with the key prefix that
// uri names inside it, so that URI(b, prefix) names uri again:
//
//	s3://bucket/videos     -> bucket s3://bucket, prefix "videos"
//	/data/in/a.mp4 (file)  -> bucket file:///data/in, prefix "a.mp4"
//	/data/out/job1 (dir)   -> bucket file:///data/out/job1, prefix ""
//	/data/new/job2 (absent, /data exists) -> bucket file:///data, prefix "new/job2"
//
// A local bucket is rooted at the deepest existing directory so that outputs
// can go to folders that do not exist yet, while keys still cannot leave it.
func Open(ctx context.Context, uri string, opts Options) (Bucket, string, error) {
	scheme, bucket, prefix, err := ParseURI(uri)
	if err != nil {
		return nil, "", fmt.Errorf("open: %w", err)
	}
	if scheme == "s3" {
		b, err := NewS3(ctx, bucket, opts)
		if err != nil {
			return nil, "", err
		}
		return b, prefix, nil
	}
	root, rel, err := existingRoot(prefix)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", joinURI("file://", prefix), err)
	}
	if rel != "" {
		if err := ValidKey(rel); err != nil {
			return nil, "", fmt.Errorf("open %s: %w", joinURI("file://", prefix), err)
		}
	}
	b, err := NewFS(root)
	if err != nil {
		return nil, "", err
	}
	return b, rel, nil
}

// existingRoot walks up from path to the deepest existing directory and
// returns it with the rest of path as a slash-separated key.
func existingRoot(path string) (root, rel string, err error) {
	dir := path
	for {
		fi, err := os.Stat(dir)
		switch {
		case err == nil && fi.IsDir():
			r, err := filepath.Rel(dir, path)
			if err != nil {
				return "", "", err
			}
			if r == "." {
				r = ""
			}
			return dir, filepath.ToSlash(r), nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", fmt.Errorf("no existing directory above it: %w", ErrNotFound)
		}
		dir = parent
	}
}
