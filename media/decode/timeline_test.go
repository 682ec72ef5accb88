package decode

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFPSAcrossJump samples two TS files concatenated byte for byte: the
// second half's timestamps jump back 2 s, and FPS sampling goes on through
// the media-time clock instead of waiting for the old timestamps to return.
func TestFPSAcrossJump(t *testing.T) {
	dir := t.TempDir()
	var joined []byte
	for i, start := range []string{"0", "5"} {
		p := filepath.Join(dir, []string{"a.ts", "b.ts"}[i])
		if err := ffmpeg("-ss", start, "-t", "2", "-i", clips["vtest.avi"], "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", p); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	src := filepath.Join(dir, "joined.ts")
	if err := os.WriteFile(src, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	if pts := ffprobeFrames(t, src); len(pts) != 40 || pts[20] >= pts[19] {
		t.Fatalf("setup: timestamps %v, want 40 jumping back at frame 20", pts)
	}
	recs, st, _ := decodeAll(t, src, nil, Options{FPS: 2, Size: 32}, 0)
	// 10 fps, 2 per second: frames 0, 5, 10, ... 35 across the 4 s shown.
	var idx []int
	for _, r := range recs {
		idx = append(idx, r.Index)
	}
	if len(recs) != 8 || st.Decoded != 40 {
		t.Fatalf("kept frames %v of %d decoded, want every 5th of 40", idx, st.Decoded)
	}
	for i, r := range recs {
		if r.Index != 5*i {
			t.Errorf("kept frames %v, want every 5th", idx)
			break
		}
	}
}
