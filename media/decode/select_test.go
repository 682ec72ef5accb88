package decode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestEvery(t *testing.T) {
	for _, every := range []int{1, 3, 7, 100} {
		t.Run(fmt.Sprint(every), func(t *testing.T) {
			recs, st, _ := decodeAll(t, clips["h264.mp4"], nil, Options{Every: every, Size: 32}, 0)
			want := (20 + every - 1) / every
			if len(recs) != want || st.Kept != want || st.Decoded != 20 {
				t.Fatalf("kept %d (stats kept %d, decoded %d), want %d of 20", len(recs), st.Kept, st.Decoded, want)
			}
			for i, r := range recs {
				if r.Index != i*every {
					t.Errorf("kept frame %d has Index %d, want %d", i, r.Index, i*every)
				}
			}
		})
	}
}

// TestFPS checks FPS sampling against its definition: the first frame of
// every non-empty 1/FPS slot after the first frame, using ffprobe's
// timestamps.
func TestFPS(t *testing.T) {
	tests := []struct {
		clip string
		fps  float64
		want int // kept frames, when known independently; -1 to skip
	}{
		{"h264.mp4", 2, 4},  // 10 fps for 2 s: 0, 0.5, 1.0, 1.5
		{"h264.mp4", 5, 10}, // every other frame
		{"h264.mp4", 30, 20},
		{"vfr.mp4", 1, -1},
		{"vfr.mp4", 2.5, -1},
		{"vfr.mp4", 10, 16},
		{"Megamind_bugy.avi", 7, -1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%g", tt.clip, tt.fps), func(t *testing.T) {
			path := clips[tt.clip]
			recs, _, _ := decodeAll(t, path, nil, Options{FPS: tt.fps, Size: 32}, 0)
			all, _, _ := decodeAll(t, path, nil, Options{Size: 32}, 0)
			var want []int
			last := int64(-1)
			for _, r := range all {
				slot := int64(math.Floor((r.PTS-all[0].PTS)*tt.fps + 1e-6))
				if slot > last {
					want = append(want, r.Index)
					last = slot
				}
			}
			if tt.want >= 0 && len(want) != tt.want {
				t.Fatalf("test expectation: definition gives %d frames, table says %d", len(want), tt.want)
			}
			if len(recs) != len(want) {
				t.Fatalf("kept %d frames, want %d", len(recs), len(want))
			}
			for i := range recs {
				if recs[i].Index != want[i] {
					t.Errorf("kept frame %d has Index %d, want %d", i, recs[i].Index, want[i])
				}
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"every and fps": {Every: 2, FPS: 1},
		"negative fps":  {FPS: -1},
		"nan fps":       {FPS: math.NaN()},
		"negative size": {Size: -1},
		"huge size":     {Size: 100000},
		"negative max":  {MaxPixels: -5},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(context.Background(), clips["tiny.mp4"], nil, o)
			if !errors.Is(err, ErrBadOptions) {
				t.Fatalf("Open: %v, want ErrBadOptions", err)
			}
		})
	}
}
