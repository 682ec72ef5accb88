package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// progress shows a job's frames done against the total: a bar with rate and
// ETA on a terminal, a structured log line every few seconds otherwise.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	logger   *slog.Logger
	start    time.Time
	last     time.Time
	videos   map[string]coordinator.Progress
	finished bool
	// server is the job service's own rate and ETA, from its record: a
	// watcher that joins mid-job must not reckon them from when it started.
	server *jobs.Progress
}

func newProgress(w *os.File, logger *slog.Logger) *progress {
	return &progress{
		w: w, tty: term.IsTerminal(int(w.Fd())), logger: logger,
		start: time.Now(), videos: map[string]coordinator.Progress{},
	}
}

func (p *progress) update(v coordinator.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.videos[v.Video] = v
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.render(now)
}

// fromServer takes the rate and ETA of the job's record.
func (p *progress) fromServer(sp jobs.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.server = &sp
}

// totals sums done frames and the best known total: exact for videos ingest
// has finished, the container's estimate for the others.
func (p *progress) totals() (done, total int, exact bool) {
	exact = true
	for _, v := range p.videos {
		done += v.Done
		switch {
		case v.Ended:
			total += v.Total
		case v.Estimate > 0:
			total += int(v.Estimate)
			exact = false
		default:
			exact = false
		}
	}
	return done, max(total, done), exact
}

func (p *progress) render(now time.Time) {
	done, total, exact := p.totals()
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	eta := "?"
	switch {
	case p.server != nil:
		rate = p.server.FPS
		if p.server.ETASeconds != nil {
			eta = time.Duration(*p.server.ETASeconds * float64(time.Second)).Round(time.Second).String()
		}
	case rate > 0 && total >= done:
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	approx := ""
	if !exact {
		approx = "~"
	}
	if !p.tty {
		p.logger.Info("progress", "frames_done", done, "frames_total", approx+fmt.Sprint(total), "fps", fmt.Sprintf("%.1f", rate), "eta", eta)
		return
	}
	const width = 30
	filled := 0
	if total > 0 {
		filled = width * done / total
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	fmt.Fprintf(p.w, "\r%s %d/%s%d frames  %.1f fps  ETA %s  ", bar, done, approx, total, rate, eta)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	p.render(time.Now())
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// printSummary prints one row per video and where the outputs are.
func printSummary(w io.Writer, s *coordinator.Summary, out string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIDEO\tSTATUS\tFRAMES\tFPS\tINFER P50 MS\tERROR")
	for _, v := range s.Videos {
		msg := v.Error
		if v.AnnotateError != "" {
			msg = strings.TrimPrefix(msg+"; ", "; ") + "no annotated.mp4: " + v.AnnotateError
		}
		if len(msg) > 100 {
			msg = msg[:97] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%s\n", v.Video, v.Status, v.Stats.Frames, v.Stats.FPS, v.Stats.StagesMS.Infer.P50, msg)
	}
	tw.Flush()
	fmt.Fprintf(w, "job %s: %s, %d frames in %.1fs (%.1f fps); outputs in %s\n", s.Job, s.Status, s.Frames, s.WallSeconds, s.FPS, out)
}
