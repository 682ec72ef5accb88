package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vidpipe/vidpipe/internal/s3test"
)

// testS3Options keep multipart uploads in play at test sizes and retries
// quick.
func testS3Options(endpoint string) Options {
	return Options{
		S3Endpoint:           endpoint,
		S3PartSize:           5 << 20,
		S3MultipartThreshold: 5 << 20,
		S3Concurrency:        2,
		S3RetryMaxBackoff:    200 * time.Millisecond,
	}
}

// newS3Bucket starts versitygw, creates bucket name and opens it through the
// default credential chain, as production does.
func newS3Bucket(t *testing.T, name string) (*S3Bucket, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket(t, name)
	b, err := NewS3(context.Background(), name, testS3Options(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, srv
}

func TestS3Acceptance(t *testing.T) {
	b, _ := newS3Bucket(t, "acceptance")
	AcceptanceTest(t, b)
}

func TestS3ListPages(t *testing.T) {
	ctx := context.Background()
	b, _ := newS3Bucket(t, "pages")
	b.pageSize = 2
	var want []string
	for i := range 7 {
		k := fmt.Sprintf("p/%02d", i)
		want = append(want, k)
		mustPut(t, ctx, b, k, []byte(k))
	}
	if got := mustList(t, ctx, b, "p/"); !slices.Equal(got, want) {
		t.Fatalf("list over pages of 2: %q, want %q", got, want)
	}
}

func TestS3BadCredentials(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.CreateBucket(t, "private")
	s3test.SetCredentialsEnv(t, srv.AccessKey, "not-the-secret", srv.Region)
	b, prefix, err := Open(ctx, "s3://private/videos/a.mp4", testS3Options(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Head(ctx, prefix)
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "s3://private/videos/a.mp4") || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("head with a wrong secret: %v; want access denied naming the URI", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("error leaks the secret: %v", err)
	}
	err = b.Put(ctx, prefix, strings.NewReader("x"))
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "s3://private/videos/a.mp4") {
		t.Fatalf("put with a wrong secret: %v", err)
	}
	// An unknown access key is refused the same way.
	s3test.SetCredentialsEnv(t, "nobody", "nothing", srv.Region)
	b, _, err = Open(ctx, "s3://private", testS3Options(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	err = b.List(ctx, "", func(string) error { return nil })
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "s3://private") {
		t.Fatalf("list with an unknown key: %v", err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	b, err := NewS3(ctx, "no-such-bucket", testS3Options(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["get"] = b.Get(ctx, "k")
	_, checks["head"] = b.Head(ctx, "k")
	checks["put"] = b.Put(ctx, "k", strings.NewReader("x"))
	checks["delete"] = b.Delete(ctx, "k")
	checks["list"] = b.List(ctx, "k", func(string) error { return nil })
	for op, err := range checks {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "s3://no-such-bucket/k") {
			t.Errorf("%s in a missing bucket: %v; want ErrNotFound naming s3://no-such-bucket/k", op, err)
		}
	}
}

// Two 503s are absorbed by the standard retryer; the third attempt succeeds.
func TestS3RetriesTransientErrors(t *testing.T) {
	ctx := context.Background()
	direct, srv := newS3Bucket(t, "flaky")
	mustPut(t, ctx, direct, "obj", []byte("payload"))
	proxy := s3test.NewFaultProxy(srv.Endpoint)
	defer proxy.Close()
	b, err := NewS3(ctx, "flaky", testS3Options(proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	proxy.FailNext(2, http.StatusServiceUnavailable)
	if got := mustGet(t, ctx, b, "obj"); string(got) != "payload" {
		t.Fatalf("get after two 503s: %q", got)
	}
	if proxy.Requests() != 3 || proxy.Failures() != 2 {
		t.Fatalf("get: %d requests, %d failed; want 3 and 2", proxy.Requests(), proxy.Failures())
	}
	// A retried upload must resend the whole body.
	proxy.FailNext(2, http.StatusServiceUnavailable)
	if err := b.Put(ctx, "obj2", struct{ io.Reader }{strings.NewReader("second payload")}); err != nil {
		t.Fatalf("put after two 503s: %v", err)
	}
	if got := mustGet(t, ctx, direct, "obj2"); string(got) != "second payload" {
		t.Fatalf("object after retried put: %q", got)
	}
}

// A 500 that does not go away fails after exactly three attempts, with the
// URI in the error.
func TestS3PersistentServerError(t *testing.T) {
	ctx := context.Background()
	direct, srv := newS3Bucket(t, "broken")
	mustPut(t, ctx, direct, "videos/a.mp4", []byte("x"))
	proxy := s3test.NewFaultProxy(srv.Endpoint)
	defer proxy.Close()
	b, err := NewS3(ctx, "broken", testS3Options(proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	proxy.FailNext(-1, http.StatusInternalServerError)
	_, err = b.Get(ctx, "videos/a.mp4")
	if err == nil || !strings.Contains(err.Error(), "s3://broken/videos/a.mp4") || errors.Is(err, ErrNotFound) {
		t.Fatalf("get with persistent 500: %v; want an error naming s3://broken/videos/a.mp4", err)
	}
	if proxy.Failures() != maxAttempts {
		t.Fatalf("persistent 500: %d attempts, want %d", proxy.Failures(), maxAttempts)
	}
	t.Logf("error: %v", err)
}

// When a part upload keeps failing, the multipart upload is aborted: no parts
// are left behind on the server.
func TestS3AbortsFailedMultipartUpload(t *testing.T) {
	ctx := context.Background()
	_, srv := newS3Bucket(t, "multipart")
	proxy := s3test.NewFaultProxy(srv.Endpoint)
	defer proxy.Close()
	b, err := NewS3(ctx, "multipart", testS3Options(proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	isUploadPart := func(r *http.Request) bool {
		return r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
	}
	proxy.FailNextIf(-1, http.StatusInternalServerError, isUploadPart)
	err = b.Put(ctx, "big", bytes.NewReader(randomBytes(12<<20, 3)))
	if err == nil || !strings.Contains(err.Error(), "s3://multipart/big") {
		t.Fatalf("put with failing parts: %v; want an error naming s3://multipart/big", err)
	}
	proxy.FailNext(0, 0)
	out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: new("multipart")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after a failed put", len(out.Uploads))
	}
	if _, err := b.Head(ctx, "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed put left an object: %v", err)
	}
}
