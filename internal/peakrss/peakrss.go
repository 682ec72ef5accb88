// Package peakrss reads the process's peak resident set, so tests can bound
// the memory a hostile input costs in a child process. A child's rusage is
// no use for that: Go starts children with vfork, and Linux carries the
// parent's peak across the exec into the child's ru_maxrss.
package peakrss

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrUnavailable means /proc/self/status has no VmHWM line (not Linux).
var ErrUnavailable = errors.New("peak rss unavailable")

// Self returns this process's peak resident set (VmHWM) in bytes.
func Self() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read peak rss: %w: %w", err, ErrUnavailable)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status: %w", ErrUnavailable)
}
