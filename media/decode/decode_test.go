package decode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"os"
	"testing"
)

// TestDecodeMatchesFFprobe checks frame counts and timestamps against
// ffprobe's decode of the same files.
func TestDecodeMatchesFFprobe(t *testing.T) {
	tests := []struct {
		clip          string
		width, height int
		rotation      int
		estimated     int // frames ffprobe reports without a timestamp
	}{
		{"h264.mp4", 768, 576, 0, 0},
		{"faststart.mp4", 768, 576, 0, 0},
		{"mjpeg.avi", 768, 576, 0, 0},
		{"vfr.mp4", 768, 576, 0, 0},
		{"odd10.mkv", 321, 239, 0, 0},
		{"rot90.mp4", 576, 768, 90, 0},
		{"rot180.mp4", 768, 576, 180, 0},
		{"rot270.mp4", 576, 768, 270, 0},
		{"tiny.ts", 64, 48, 0, 0},
		{"tree.avi", 320, 240, 0, 0},
		// Most packets lack a pts; the last frame has no timestamp at all.
		{"Megamind_bugy.avi", 720, 528, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			path := clips[tt.clip]
			recs, st, info := decodeAll(t, path, nil, Options{Size: 64}, 0)
			want := ffprobeFrames(t, path)
			if n := ffprobeCount(t, path); n != len(want) {
				t.Fatalf("ffprobe disagrees with itself: %d counted, %d listed", n, len(want))
			}
			if len(recs) != len(want) {
				t.Fatalf("decoded %d frames, ffprobe %d", len(recs), len(want))
			}
			if info.Width != tt.width || info.Height != tt.height || info.Rotation != tt.rotation {
				t.Errorf("info %dx%d rotation %d, want %dx%d rotation %d", info.Width, info.Height, info.Rotation, tt.width, tt.height, tt.rotation)
			}
			estimated := 0
			for i, r := range recs {
				if r.Index != i {
					t.Fatalf("frame %d has Index %d", i, r.Index)
				}
				if r.Width != tt.width || r.Height != tt.height {
					t.Errorf("frame %d is %dx%d, want %dx%d", i, r.Width, r.Height, tt.width, tt.height)
				}
				if math.IsNaN(r.PTS) || math.IsInf(r.PTS, 0) {
					t.Fatalf("frame %d: PTS %v", i, r.PTS)
				}
				if i > 0 && r.PTS <= recs[i-1].PTS {
					t.Errorf("frame %d: PTS %.6f not after %.6f", i, r.PTS, recs[i-1].PTS)
				}
				if math.IsNaN(want[i]) {
					estimated++
					if !r.Estimated {
						t.Errorf("frame %d: ffprobe has no timestamp but Estimated is false", i)
					}
					continue
				}
				if r.Estimated {
					t.Errorf("frame %d: Estimated, ffprobe says %.6f", i, want[i])
				}
				if math.Abs(r.PTS-want[i]) > 1e-6 {
					t.Errorf("frame %d: PTS %.7f, ffprobe %.6f", i, r.PTS, want[i])
				}
			}
			if estimated != tt.estimated || st.EstimatedPTS != estimated {
				t.Errorf("%d estimated timestamps, Stats.EstimatedPTS %d, want %d", estimated, st.EstimatedPTS, tt.estimated)
			}
			if st.Decoded != len(recs) || st.Kept != len(recs) || st.Damaged() {
				t.Errorf("stats %+v for %d clean frames", st, len(recs))
			}
		})
	}
}

// chunkyReader hides bytes.Reader's Size method and returns short reads, as
// a network reader may.
type chunkyReader struct{ r *bytes.Reader }

func (c *chunkyReader) Read(b []byte) (int, error) {
	if len(b) > 1000 {
		b = b[:1000]
	}
	return c.r.Read(b)
}

func (c *chunkyReader) Seek(off int64, whence int) (int64, error) { return c.r.Seek(off, whence) }

// TestReaderPaths checks that a file path, an in-memory reader and a
// short-reading reader without Size give identical frames, including for an
// MP4 whose moov atom sits at the end.
func TestReaderPaths(t *testing.T) {
	for _, clip := range []string{"h264.mp4", "mjpeg.avi"} {
		t.Run(clip, func(t *testing.T) {
			path := clips[clip]
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			type frameSum struct {
				index int
				pts   float64
				sum   [32]byte
			}
			sums := func(r io.ReadSeeker) []frameSum {
				recs, _, _ := decodeAll(t, path, r, Options{Size: 320}, 1000)
				var out []frameSum
				for _, rec := range recs {
					out = append(out, frameSum{rec.Index, rec.PTS, sha256.Sum256(rec.Pixels)})
				}
				return out
			}
			want := sums(nil)
			for name, r := range map[string]io.ReadSeeker{
				"bytes":  bytes.NewReader(data),
				"chunky": &chunkyReader{bytes.NewReader(data)},
			} {
				got := sums(r)
				if len(got) != len(want) {
					t.Fatalf("%s reader: %d frames, file path %d", name, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s reader: frame %d differs from the file path's", name, i)
					}
				}
			}
		})
	}
}

func TestCloseTwiceAndNextAfterClose(t *testing.T) {
	d, err := Open(context.Background(), clips["tiny.mp4"], nil, Options{Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := d.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
}

// TestEOFIsSticky checks that Next keeps returning io.EOF at the end.
func TestEOFIsSticky(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, clips["tiny.mp4"], nil, Options{Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := 0
	for ; ; n++ {
		if _, err := d.Next(ctx); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next: %v", err)
			}
			break
		}
	}
	if n != 5 {
		t.Errorf("tiny.mp4 gave %d frames, want 5", n)
	}
	if _, err := d.Next(ctx); err != io.EOF {
		t.Fatalf("Next after EOF: %v, want io.EOF", err)
	}
}
