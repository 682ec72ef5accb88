package poll

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	Until(t, 10*time.Second, "three increments", True(func() bool { return n.Load() == 3 }))
}

func TestUntilFailsWithTheLastError(t *testing.T) {
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Until(ft, 20*time.Millisecond, "never", func() (bool, error) { return false, errors.New("still 2 of 3") })
	}()
	<-done
	if ft.msg != "never: not after 20ms (last: still 2 of 3)" {
		t.Fatalf("message %q", ft.msg)
	}
}

// fakeTB records Fatalf and ends only the goroutine Until runs in, so the
// failure can be checked.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
