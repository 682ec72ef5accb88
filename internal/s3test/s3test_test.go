package s3test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

func TestStartServesS3(t *testing.T) {
	srv := Start(t)
	srv.CreateBucket(t, "bkt1")
	ctx := context.Background()
	c := srv.Client()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: new("bkt1"), Key: new("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(out.Buckets) != 1 || *out.Buckets[0].Name != "bkt1" {
		t.Fatalf("list buckets: %+v, %v", out, err)
	}
}

func TestFaultProxy(t *testing.T) {
	srv := Start(t)
	srv.CreateBucket(t, "bkt1")
	p := NewFaultProxy(srv.Endpoint)
	defer p.Close()
	via := *srv
	via.Endpoint = p.URL
	c := via.Client()
	ctx := context.Background()
	// Signed requests pass through the proxy unchanged.
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: new("bkt1")}); err != nil {
		t.Fatalf("head bucket through the proxy: %v", err)
	}
	// Injected errors parse as S3 errors, and the count is exact.
	p.FailNext(5, http.StatusInternalServerError)
	_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: new("bkt1")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InternalError" {
		t.Fatalf("injected 500: %v", err)
	}
	if p.Failures() != 1 || p.Requests() != 2 {
		t.Fatalf("%d failures of %d requests, want 1 of 2", p.Failures(), p.Requests())
	}
	// FailNextIf leaves other requests alone.
	p.FailNextIf(-1, http.StatusServiceUnavailable, func(r *http.Request) bool { return r.Method == http.MethodPut })
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: new("bkt1")}); err != nil {
		t.Fatalf("head bucket while PUTs fail: %v", err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: new("bkt1"), Key: new("k"), Body: strings.NewReader("v")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("injected 503: %v", err)
	}
}

func TestBinaryHonoursEnv(t *testing.T) {
	t.Setenv("VERSITYGW", "/nonexistent/versitygw")
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "/nonexistent/versitygw") {
		t.Fatalf("Binary with a missing $VERSITYGW: %v", err)
	}
}

// TestStopRestart: a stopped server refuses connections, and the restarted
// one answers on the same endpoint with the same objects.
func TestStopRestart(t *testing.T) {
	srv := Start(t)
	srv.CreateBucket(t, "bkt1")
	c := srv.Client()
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: new("bkt1"), Key: new("k"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: new("bkt1")}); err == nil {
		t.Fatal("head bucket of a stopped server succeeded")
	}
	srv.Restart()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: new("bkt1"), Key: new("k")})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "kept" {
		t.Errorf("object after restart: %q, want %q", b, "kept")
	}
}
