package annotate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/internal/peakrss"
)

// wsReport is what TestWorkingSetHelper prints for its parent.
type wsReport struct {
	Plan  Plan  `json:"plan"`
	Delta int64 `json:"delta"` // peak RSS during Write over the peak before it, bytes
	Err   string
}

// TestWorkingSetHelper is the child process of TestWorkingSet: it annotates
// the clip VIDPIPE_WS_CLIP with VIDPIPE_WS_THREADS threads on a budget of
// VIDPIPE_WS_BUDGET bytes and reports the peak its annotation added.
func TestWorkingSetHelper(t *testing.T) {
	src := os.Getenv("VIDPIPE_WS_CLIP")
	if src == "" {
		t.Skip("child of TestWorkingSet")
	}
	threads, _ := strconv.Atoi(os.Getenv("VIDPIPE_WS_THREADS"))
	budget, _ := strconv.ParseInt(os.Getenv("VIDPIPE_WS_BUDGET"), 10, 64)
	before, err := peakrss.Self()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "annotated.mp4")
	boxes := testBoxes(640, 480)
	st, err := Write(context.Background(), src, nil, dst, func(int) ([]Box, bool) { return boxes, true },
		Options{Threads: threads, Limiter: NewLimiter(budget, 1), Preview: filepath.Join(filepath.Dir(dst), "preview.png")})
	after, rerr := peakrss.Self()
	if rerr != nil {
		t.Fatal(rerr)
	}
	rep := wsReport{Plan: st.Plan, Delta: after - before}
	if err != nil {
		rep.Err = err.Error()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("REPORT %s\n", b)
}

// TestWorkingSet measures the annotation working set in child processes at
// sizes from VGA to 8192x8192, with each encoder profile, and checks that
// WorkingSet, which the budget charges, bounds every measurement and is
// not loose by more than half: the table in its log is where the
// coefficients of budget.go come from.
func TestWorkingSet(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes up to 8192x8192 pictures")
	}
	dir := t.TempDir()
	const frames = 20 // more than libx264 holds: lookahead 10, 3 B-frames, threads
	type config struct {
		name    string
		threads int
		low     bool
	}
	configs := []config{{"veryfast 1 thread", 1, false}, {"veryfast 2 threads", 2, false}, {"low-memory", 1, true}}
	t.Logf("%-10s %-9s %-19s %9s %9s %9s", "input", "output", "encoder", "measured", "estimate", "MB/MP out")
	for _, size := range [][2]int{{640, 480}, {1920, 1080}, {3840, 2160}, {8192, 8192}} {
		w, h := size[0], size[1]
		src := lavfiClip(t, dir, w, h, frames)
		for _, c := range configs {
			if w == 8192 && c.threads > 1 {
				continue // two threads' decode of 64 MP pictures is the same per-pixel cost, 1 GB more
			}
			// Threads pins decoder and encoder; the budget is what makes
			// plan pick this profile and no other.
			budget := int64(1 << 40)
			ow, oh := evenSize(boundedSize(w, h, DefaultMaxOutputPixels))
			if c.low {
				budget = WorkingSet(w, h, ow, oh, c.threads, 1, true)
			}
			rep := runWorkingSet(t, src, c.threads, budget)
			if rep.Err != "" {
				t.Fatalf("%dx%d %s: %s", w, h, c.name, rep.Err)
			}
			p := rep.Plan
			if p.LowMemory != c.low || p.EncodeThreads != c.threads {
				t.Fatalf("%dx%d %s: plan %+v", w, h, c.name, p)
			}
			mp := float64(p.OutW*p.OutH) / 1e6
			t.Logf("%-10s %-9s %-19s %6d MB %6d MB %9.1f", fmt.Sprintf("%dx%d", w, h), fmt.Sprintf("%dx%d", p.OutW, p.OutH), c.name,
				rep.Delta>>20, p.WorkingSet>>20, float64(rep.Delta)/1e6/mp)
			if rep.Delta > p.WorkingSet {
				t.Errorf("%dx%d %s: measured %d MB over the estimate of %d MB", w, h, c.name, rep.Delta>>20, p.WorkingSet>>20)
			}
			if slack := p.WorkingSet - rep.Delta; slack > p.WorkingSet/2 && slack > 64<<20 {
				t.Errorf("%dx%d %s: estimate %d MB, measured only %d MB", w, h, c.name, p.WorkingSet>>20, rep.Delta>>20)
			}
		}
	}
}

func runWorkingSet(t *testing.T, src string, threads int, budget int64) wsReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkingSetHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VIDPIPE_WS_CLIP="+src, "VIDPIPE_WS_THREADS="+strconv.Itoa(threads),
		"VIDPIPE_WS_BUDGET="+strconv.FormatInt(budget, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("annotate %s in a child: %v\n%s", src, err, out[max(0, len(out)-2000):])
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "REPORT "); ok {
			var rep wsReport
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
	}
	t.Fatalf("no report from the child:\n%s", out)
	return wsReport{}
}
