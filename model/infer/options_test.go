package infer

import (
	"errors"
	"os"
	"runtime"
	"testing"
)

func TestResolve(t *testing.T) {
	dynamic := &layout{h: 8, w: 8, outputs: []outputLayout{{name: "out", perItem: 10}}}
	fixed := &layout{h: 8, w: 8, fixedBatch: 4, outputs: []outputLayout{{name: "out", perItem: 10}}}
	tests := []struct {
		name    string
		opts    Options
		l       *layout
		want    config
		wantErr error
	}{
		{name: "defaults", l: dynamic,
			want: config{threads: runtime.NumCPU(), device: Device{Kind: CPU}, maxBatch: 1, library: LibraryPath()}},
		{name: "all set", l: dynamic, opts: Options{Threads: 3, Device: "cuda:1", MaxBatch: 16, LibraryPath: "/x.so"},
			want: config{threads: 3, device: Device{Kind: CUDA, Ordinal: 1}, maxBatch: 16, library: "/x.so"}},
		{name: "fixed default", l: fixed, opts: Options{Threads: 1},
			want: config{threads: 1, maxBatch: 4, library: LibraryPath()}},
		{name: "fixed capped", l: fixed, opts: Options{Threads: 1, MaxBatch: 9},
			want: config{threads: 1, maxBatch: 4, library: LibraryPath()}},
		{name: "fixed smaller", l: fixed, opts: Options{Threads: 1, MaxBatch: 3},
			want: config{threads: 1, maxBatch: 3, library: LibraryPath()}},
		{name: "output too big", l: &layout{h: 1, w: 1, outputs: []outputLayout{{name: "out", perItem: 1 << 28}}},
			opts: Options{MaxBatch: 5}, wantErr: ErrBadOptions},
		{name: "bad device", l: dynamic, opts: Options{Device: "cuda:x"}, wantErr: ErrBadDevice},
		{name: "negative threads", l: dynamic, opts: Options{Threads: -1}, wantErr: ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.resolve(tt.l)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("resolve = %+v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("resolve = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestThreadsReachORT checks that Options.Threads reaches ONNX Runtime by
// counting OS threads: a session's intra-op pool starts Threads-1 of them.
func TestThreadsReachORT(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc/self/task to count threads:", err)
	}
	model := newTestModel(dynamicBatch, 8, 8, 4).bytes()
	if err := Init(LibraryPath()); err != nil {
		t.Fatal(err)
	}
	grown := func(threads int) int {
		before := osThreads(t)
		s := openTest(t, model, "threads.onnx", Options{Threads: threads})
		after := osThreads(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return after - before
	}
	// The Go runtime may start a thread of its own meanwhile, hence >= and <.
	if n := grown(5); n < 4 {
		t.Errorf("Threads 5 started %d OS threads, want at least 4", n)
	}
	if n := grown(1); n >= 4 {
		t.Errorf("Threads 1 started %d OS threads, want fewer than 4", n)
	}
}

func osThreads(t *testing.T) int {
	t.Helper()
	e, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}
