package storage

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// IsTransient reports whether err is an outage that may pass: the store
// refused or dropped the connection, timed out, or answered 5xx (after the
// SDK's own few attempts). Missing objects, refused credentials and bad keys
// are not: trying again changes nothing. Nor is a short read: a truncated
// object reads short every time.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrBadKey) ||
		errors.Is(err, ErrBadURI) || errors.Is(err, ErrBadRange) || errors.Is(err, ErrExists) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	if code := statusCode(err); code >= 500 || code == 429 {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// RetryPolicy bounds Retry.
type RetryPolicy struct {
	// For is how long to keep trying in all; First is the first wait,
	// doubled up to Max.
	For, First, Max time.Duration
	Logger          *slog.Logger
}

// DefaultRetry rides out a store restarting or failing over (a few
// minutes), waiting at most 15 s between tries.
func DefaultRetry() RetryPolicy {
	return RetryPolicy{For: 3 * time.Minute, First: time.Second, Max: 15 * time.Second}
}

// Retry runs fn until it succeeds, fails with an error that is not
// IsTransient, ctx ends, or p.For has passed; then it returns fn's last
// error. Every retry is logged with what is being done.
func Retry(ctx context.Context, p RetryPolicy, what string, fn func() error) error {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	deadline := time.Now().Add(p.For)
	wait := p.First
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsTransient(err) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		p.Logger.Warn("storage unavailable; retrying", "what", what, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, p.Max)
	}
}
