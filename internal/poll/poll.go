// Package poll is the tests' one way to wait for what another goroutine or
// process makes true: a condition checked until it holds or a deadline
// passes, never a fixed sleep standing in for synchronisation.
package poll

import (
	"testing"
	"time"
)

// interval caps the pause between checks; the first checks come sooner, so
// a condition that is nearly true costs little.
const interval = 100 * time.Millisecond

// Until checks cond until it reports done, failing tb once timeout has
// passed. what names the awaited condition and the last error cond gave
// says how far it got, so a timeout reads as a finding, not a hang.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() (done bool, err error)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		done, err := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				tb.Fatalf("%s: not after %v (last: %v)", what, timeout, err)
			}
			tb.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(pause)
		pause = min(2*pause, interval)
	}
}

// True adapts a condition without an error for Until.
func True(cond func() bool) func() (bool, error) {
	return func() (bool, error) { return cond(), nil }
}
