package ingest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
)

// TestEndEventCarriesTruncation ingests an MP4 cut cleanly after 45 of its
// 90 packets and checks that the end event says so: the decoder's count of
// what the container declared must reach the coordinator, not stay behind.
func TestEndEventCarriesTruncation(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx := context.Background()
	dir := t.TempDir()
	full := filepath.Join(dir, "full.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-t", "9",
		"-pix_fmt", "yuv420p", "-movflags", "+faststart", "-y", full).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s (run scripts/setup.sh)", err, out)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pos,size", "-of", "csv=p=0", full).Output()
	if err != nil {
		t.Fatal(err)
	}
	packets := strings.Fields(string(out))
	if len(packets) != 90 {
		t.Fatalf("%d packets, want 90", len(packets))
	}
	pos, size, _ := strings.Cut(packets[44], ",")
	p, _ := strconv.Atoi(pos)
	s, _ := strconv.Atoi(size)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.mp4")
	if err := os.WriteFile(cut, b[:p+s], 0o644); err != nil {
		t.Fatal(err)
	}

	in := New(js, Options{})
	if err := in.Ingest(ctx, "job1", Video{Name: "cut", Source: cut}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, bus.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.EventSubject("job1", "cut"))
	if err != nil {
		t.Fatal(err)
	}
	var e bus.Event
	if err := bus.DecodeEvent(m.Data, &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != bus.VideoEnded || e.Frames != 45 || !e.Truncated || e.Expected != 90 || e.Missing != 45 {
		t.Fatalf("end event %+v, want 45 frames, truncated, 45 of 90 missing", e)
	}
}
