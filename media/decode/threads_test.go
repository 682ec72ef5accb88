package decode

import (
	"runtime"
	"testing"
)

// TestFrameThreads: explicit counts stand; automatic threading keeps
// FFmpeg's count for ordinary pictures and holds at most about
// threadFramesBytes of 64 MP ones.
func TestFrameThreads(t *testing.T) {
	if got := FrameThreads(5, 8192, 8192); got != 5 {
		t.Errorf("explicit 5 threads became %d", got)
	}
	if got := FrameThreads(0, 1920, 1080); runtime.NumCPU() < 16 && got != 0 {
		t.Errorf("1080p: %d threads, want FFmpeg's automatic count", got)
	}
	got := FrameThreads(0, 8192, 8192)
	if got != 1 {
		t.Errorf("8192x8192: %d threads, want 1", got)
	}
	if n := FrameThreads(0, 3840, 2160); n != 0 && int64(n)*2*PictureBytes(3840, 2160) > threadFramesBytes {
		t.Errorf("4K: %d threads hold over %d bytes", n, threadFramesBytes)
	}
}
