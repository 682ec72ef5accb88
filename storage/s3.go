package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

const (
	minPartSize = 5 << 20
	// maxAttempts is the standard retryer's attempt count, set explicitly
	// because RELIABILITY.md promises exactly this.
	maxAttempts = 3
)

// S3Bucket is a Bucket in an S3 or S3-compatible store.
type S3Bucket struct {
	client *s3.Client
	tm     *transfermanager.Client
	bucket string
	name   string
	log    *slog.Logger
	// pageSize is ListObjectsV2's MaxKeys; 0 lets the server pick (1000).
	// Tests shrink it to cross page boundaries cheaply.
	pageSize int32
}

// NewS3 opens bucket with credentials and region from AWS's default chain
// (environment, shared files, IMDS). It sends no request: a missing bucket or
// bad credentials show on the first call, with the URI in the error.
func NewS3(ctx context.Context, bucket string, opts Options) (*S3Bucket, error) {
	name := "s3://" + bucket
	if err := validBucket(bucket); err != nil {
		return nil, fmt.Errorf("open %q: %w: %w", name, ErrBadURI, err)
	}
	if opts.S3PartSize != 0 && opts.S3PartSize < minPartSize {
		return nil, fmt.Errorf("open %s: part size %d below S3's minimum %d", name, opts.S3PartSize, minPartSize)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				if opts.S3RetryMaxBackoff > 0 {
					o.MaxBackoff = opts.S3RetryMaxBackoff
				}
			})
		}),
		// Retries only: request/response logging could carry signatures or
		// object bodies.
		config.WithClientLogMode(aws.LogRetries),
		config.WithLogger(slogAdapter{log}),
	}
	if opts.S3Region != "" {
		load = append(load, config.WithRegion(opts.S3Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("open %s: load aws config: %w", name, err)
	}
	endpoint := opts.S3Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	if endpoint == "" {
		endpoint = aws.ToString(cfg.BaseEndpoint)
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("open %s: s3 endpoint must be http(s)://host[:port] without credentials", name)
		}
	}
	if cfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("open %s: no AWS region: set AWS_REGION or the S3 region option", name)
		}
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.S3Endpoint)
		}
		o.UsePathStyle = opts.S3PathStyle || (endpoint != "" && !opts.S3VirtualHost)
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		if opts.S3PartSize > 0 {
			o.PartSizeBytes = opts.S3PartSize
		}
		if opts.S3MultipartThreshold > 0 {
			o.MultipartUploadThreshold = opts.S3MultipartThreshold
		}
		o.Concurrency = 4
		if opts.S3Concurrency > 0 {
			o.Concurrency = opts.S3Concurrency
		}
		// Abort a failed multipart upload even when ctx is what failed, so no
		// orphaned parts are left billing storage.
		o.FailTimeout = 30 * time.Second
	})
	return &S3Bucket{client: client, tm: tm, bucket: bucket, name: name, log: log}, nil
}

// Name returns "s3://bucket".
func (b *S3Bucket) Name() string { return b.name }

// Close releases nothing: the SDK's HTTP client is shared and idle connections
// time out on their own.
func (b *S3Bucket) Close() error { return nil }

func (b *S3Bucket) uri(key string) string { return joinURI(b.name, key) }

// Get opens the whole object.
func (b *S3Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", b.name, err)
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", b.uri(key), classify(err))
	}
	return &bodyReader{rc: out.Body, uri: b.uri(key)}, nil
}

// GetRange opens length bytes from off (length -1: to the end).
func (b *S3Bucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", b.name, err)
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: %w: offset %d, length %d", b.uri(key), ErrBadRange, off, length)
	}
	if length == 0 {
		// HTTP ranges cannot be empty; still report a missing object.
		if _, err := b.Head(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-"
	if length > 0 {
		rng += strconv.FormatInt(off+length-1, 10)
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key, Range: &rng})
	if err != nil {
		if statusCode(err) == 416 {
			// An offset at or past the end: empty, as on the filesystem.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, fmt.Errorf("get %s: %w", b.uri(key), classify(err))
	}
	return &bodyReader{rc: out.Body, uri: b.uri(key)}, nil
}

// Put uploads r, in parts from the multipart threshold on; a failed multipart
// upload is aborted.
func (b *S3Bucket) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("put %s: %w", b.name, err)
	}
	_, err := b.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &b.bucket, Key: &key, Body: r})
	if err != nil {
		return fmt.Errorf("put %s: %w", b.uri(key), classify(err))
	}
	return nil
}

// PutIfAbsent uploads r with If-None-Match: *, so of two writers exactly one
// wins. If the winning request's response is lost and the retryer sends it
// again, the retry reports ErrExists although this call wrote the object;
// callers that need to tell apart compare contents.
func (b *S3Bucket) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("put %s: %w", b.name, err)
	}
	_, err := b.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: &b.bucket, Key: &key, Body: r, IfNoneMatch: aws.String("*"),
	})
	if err != nil {
		if statusCode(err) == 412 {
			return fmt.Errorf("put %s: %w", b.uri(key), ErrExists)
		}
		return fmt.Errorf("put %s: %w", b.uri(key), classify(err))
	}
	return nil
}

// Head returns the object's size and modification time.
func (b *S3Bucket) Head(ctx context.Context, key string) (Attributes, error) {
	if err := ValidKey(key); err != nil {
		return Attributes{}, fmt.Errorf("head %s: %w", b.name, err)
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return Attributes{}, fmt.Errorf("head %s: %w", b.uri(key), classify(err))
	}
	return Attributes{Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified)}, nil
}

// List calls fn for each key under prefix in S3's byte order. Keys that fail
// ValidKey (written by other tools) are skipped with a warning, since every
// other method would refuse them.
func (b *S3Bucket) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := validPrefix(prefix); err != nil {
		return fmt.Errorf("list %s: %w", b.name, err)
	}
	in := &s3.ListObjectsV2Input{Bucket: &b.bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if b.pageSize > 0 {
		in.MaxKeys = &b.pageSize
	}
	p := s3.NewListObjectsV2Paginator(b.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", b.uri(prefix), classify(err))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if err := ValidKey(key); err != nil {
				b.log.Warn("skipping object with invalid key", "bucket", b.name, "err", err)
				continue
			}
			if err := fn(key); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the object; S3 reports success for a missing key.
func (b *S3Bucket) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("delete %s: %w", b.name, err)
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		if statusCode(err) == 404 && errorCode(err) != "NoSuchBucket" {
			return nil
		}
		return fmt.Errorf("delete %s: %w", b.uri(key), classify(err))
	}
	return nil
}

// classify maps an SDK error onto the package's sentinels, keeping the S3
// error code for the message. Other errors (5xx after retries, network,
// context) pass through whole.
func classify(err error) error {
	if authCodes[errorCode(err)] {
		return fmt.Errorf("%w (%s)", ErrAccessDenied, errorCode(err))
	}
	switch statusCode(err) {
	case 404:
		return fmt.Errorf("%w (%s)", ErrNotFound, errorCode(err))
	case 401, 403:
		return fmt.Errorf("%w (%s)", ErrAccessDenied, errorCode(err))
	}
	return err
}

// authCodes are S3 error codes that mean the credentials were refused,
// whatever the status. versitygw answers an unknown access key with 404
// XAdminUserNotFound, which must not read as a missing object.
var authCodes = map[string]bool{
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"XAdminUserNotFound":    true,
}

func statusCode(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "status " + strconv.Itoa(statusCode(err))
}

// bodyReader names the object in read errors, which the SDK reports bare.
type bodyReader struct {
	rc  io.ReadCloser
	uri string
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s: %w", r.uri, err)
	}
	return n, err
}

func (r *bodyReader) Close() error { return r.rc.Close() }

// slogAdapter sends the SDK's retry notices to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(c logging.Classification, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if c == logging.Warn {
		a.l.Warn("s3 sdk", "msg", msg)
		return
	}
	a.l.Debug("s3 sdk", "msg", msg)
}
