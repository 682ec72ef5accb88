package decode

import (
	"context"
	"testing"
)

// TestExactAddsNoAllocation checks the hot path: once the first frame has
// set the converters up, the exact preprocessing, rotating or not, costs no
// Go allocation a frame beyond what decoding itself costs (the fast path's
// count, a handful for the Frame and the context hook).
func TestExactAddsNoAllocation(t *testing.T) {
	for _, clip := range []string{"vtest.avi", "rot90.mp4", "hd1080.mp4"} {
		t.Run(clip, func(t *testing.T) {
			// A malloc elsewhere in the process can land inside the few
			// frames a short clip gives, so the counts are taken up to
			// three times: an allocation the exact path makes per frame
			// shows in every attempt.
			var allocs [2]float64
			for range 3 {
				allocs = [2]float64{}
				for i, pre := range []Preprocess{PreprocessExact, PreprocessFast} {
					allocs[i] = nextAllocs(t, clips[clip], pre)
				}
				if allocs[0] <= allocs[1] {
					return
				}
			}
			t.Errorf("Next allocates %v times a frame with exact preprocessing, %v with fast", allocs[0], allocs[1])
		})
	}
}

// nextAllocs is the allocations of one Next after the first frame.
func nextAllocs(t *testing.T, path string, pre Preprocess) float64 {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, path, nil, Options{Size: 640, Threads: 1, Preprocess: pre})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Next(ctx); err != nil {
		t.Fatal(err)
	}
	return testing.AllocsPerRun(5, func() {
		if _, err := d.Next(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParsePreprocess(t *testing.T) {
	for s, want := range map[string]Preprocess{"": PreprocessExact, "exact": PreprocessExact, "fast": PreprocessFast} {
		if got, err := ParsePreprocess(s); err != nil || got != want {
			t.Errorf("ParsePreprocess(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParsePreprocess("cv2"); err == nil {
		t.Error("ParsePreprocess accepts cv2")
	}
	if _, err := Open(context.Background(), clips["tiny.mp4"], nil, Options{Preprocess: Preprocess(7)}); err == nil {
		t.Error("Open accepts preprocess 7")
	}
}

// TestCodedSize reads the decoder's coded size, the size cv2.VideoCapture
// converts at, through go-astiav's CodecContext.
func TestCodedSize(t *testing.T) {
	for clip, want := range map[string][2]int{"odd422.mkv": {336, 240}, "hd1080.mp4": {1920, 1088}, "vtest.avi": {768, 576}} {
		ctx := context.Background()
		// One letterboxer: d.lb is the boxer that converted.
		d, err := Open(ctx, clips[clip], nil, Options{Size: 64, Letterboxers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Next(ctx); err != nil {
			t.Fatal(err)
		}
		w, h, ok := codedSize(d.cc)
		if !ok || w != want[0] || h != want[1] {
			t.Errorf("%s: coded size %dx%d (ok %v), want %dx%d", clip, w, h, ok, want[0], want[1])
		}
		if e := d.lb.(*exactBoxer); e.convW != want[0] || e.convH != want[1] {
			t.Errorf("%s: converted at %dx%d, want the coded %dx%d", clip, e.convW, e.convH, want[0], want[1])
		}
		d.Close()
	}
}
