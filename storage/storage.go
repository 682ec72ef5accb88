// Package storage reads and writes objects in S3 buckets or local directories
// through one context-first Bucket interface, so every stage of vidpipe can take
// its inputs and write its outputs by URI.
package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
)

// Sentinel errors. Backends wrap them with the operation and the object's URI,
// so errors.Is works across backends and the message says what failed.
var (
	// ErrNotFound means the object, or the bucket holding it, does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means PutIfAbsent found the object already there.
	ErrExists = errors.New("already exists")
	// ErrBadKey means a key failed ValidKey; nothing was sent or touched.
	ErrBadKey = errors.New("invalid key")
	// ErrBadURI means a URI could not be parsed or names an unsupported scheme.
	ErrBadURI = errors.New("invalid uri")
	// ErrCredentials means a URI carries user info (s3://KEY:SECRET@bucket);
	// it comes with ErrBadURI and the message never repeats the URI.
	ErrCredentials = errors.New("credentials in uri")
	// ErrAccessDenied means the store refused the credentials or the request.
	ErrAccessDenied = errors.New("access denied")
	// ErrBadRange means a negative offset or a length below -1.
	ErrBadRange = errors.New("invalid range")
)

// Attributes are an object's metadata.
type Attributes struct {
	Size         int64
	LastModified time.Time
}

// Bucket is a flat namespace of objects addressed by keys that pass ValidKey.
//
// Behaviour every backend shares (AcceptanceTest checks it):
//   - Put overwrites atomically: readers see the old or the new object, never
//     a mix or a partial one.
//   - GetRange with length -1 reads to the end; a range past the end is cut at
//     the end, and an offset at or past the end yields an empty body.
//   - List is recursive, in byte order of keys, and prefix is a plain string
//     prefix ("a/b" matches "a/b/c" and "a/bc").
//   - Delete of a missing key returns nil, as S3 does; a retried delete whose
//     first response was lost must not fail.
type Bucket interface {
	// Get opens the whole object for reading.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes from off; length -1 means to the end.
	GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// Put writes the object, replacing any previous one.
	Put(ctx context.Context, key string, r io.Reader) error
	// PutIfAbsent writes the object only if no object has the key, and returns
	// an error wrapping ErrExists otherwise.
	PutIfAbsent(ctx context.Context, key string, r io.Reader) error
	// Head returns the object's attributes.
	Head(ctx context.Context, key string) (Attributes, error)
	// List calls fn for every key starting with prefix, sorted; an error from fn
	// stops the listing and is returned as is.
	List(ctx context.Context, prefix string, fn func(key string) error) error
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Name is the bucket's URI root ("s3://bucket", "file:///abs/dir"). It never
	// holds credentials, so it is safe in logs and errors.
	Name() string
	// Close releases the bucket's resources.
	Close() error
}

// URI returns the URI of key inside b, as used in errors and logs.
func URI(b Bucket, key string) string { return joinURI(b.Name(), key) }

func joinURI(root, key string) string {
	if key == "" {
		return root
	}
	return strings.TrimSuffix(root, "/") + "/" + key
}

// JoinKey joins a prefix returned by Open with a relative key; an empty prefix
// leaves the key as it is.
func JoinKey(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return strings.TrimSuffix(prefix, "/") + "/" + key
}
