package storage

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestTransientOutage stops versitygw: a put fails as transient (connection
// refused), Retry rides out the outage once the server is back on the same
// port, and errors a retry cannot fix are not transient.
func TestTransientOutage(t *testing.T) {
	b, srv := newS3Bucket(t, "outage")
	ctx := context.Background()
	srv.Stop()
	put := func() error { return b.Put(ctx, "a/obj.txt", strings.NewReader("hello")) }
	err := put()
	if err == nil || !IsTransient(err) {
		t.Fatalf("put with the store down: %v, want a transient error", err)
	}
	restarted := false
	p := RetryPolicy{For: time.Minute, First: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	err = Retry(ctx, p, "put a/obj.txt", func() error {
		err := put()
		if err != nil && !restarted {
			srv.Restart() // the outage ends while Retry waits
			restarted = true
		}
		return err
	})
	if err != nil || !restarted {
		t.Fatalf("Retry across the outage: %v (restarted %v)", err, restarted)
	}
	rc, err := b.Get(ctx, "a/obj.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "hello" {
		t.Fatalf("object after the outage: %q", got)
	}
	_, err = b.Get(ctx, "missing")
	if err == nil || IsTransient(err) {
		t.Fatalf("missing object: %v, want a permanent error", err)
	}
	calls := 0
	if err := Retry(ctx, p, "get missing", func() error { calls++; _, err := b.Head(ctx, "missing"); return err }); err == nil || calls != 1 {
		t.Fatalf("Retry of a permanent error: %v after %d calls, want one call", err, calls)
	}
}
