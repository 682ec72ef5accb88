package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/clustertest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

func TestMain(m *testing.M) {
	code := m.Run()
	clustertest.RemoveBuilds()
	os.Exit(code)
}

// imgsz is the matrix's model input: the smallest built-in size the cache
// holds, so a row's time goes to its fault, not to inference.
const imgsz = 128

// row is one line of the matrix: a fault and what the outputs hold after it.
type row struct {
	name, fault string
	// known, when set, is why the row cannot reach 0 lost and 0 duplicated;
	// the test then records the figures without failing on them.
	known string
	body  func(*testing.T, *row)

	videos  []clustertest.Tally
	states  []string // final job states, one per job
	tally   clustertest.Tally
	seconds float64
	// stage is what the row was doing, and last what the job looked like,
	// so a row that fails says where.
	stage, last string
	failed      bool
	reason      string // the first error, when the row fails on one
	notes       []string
}

func (r *row) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// errorf fails the row, keeping the first reason for the table.
func (r *row) errorf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if r.reason == "" {
		r.reason = msg
	}
	t.Error(msg)
}

// at names the step the row is at.
func (r *row) at(stage string) { r.stage = stage }

// TestFaults runs every row, one at a time, each on its own cluster. With
// VIDPIPE_FAULTS_TABLE=path it writes the matrix there as a markdown table.
func TestFaults(t *testing.T) {
	var done []*row
	for _, r := range matrix() {
		t.Run(r.name, func(t *testing.T) {
			done = append(done, r)
			t.Cleanup(func() { r.failed = t.Failed() })
			r.body(t, r)
			check(t, r)
		})
	}
	if path := os.Getenv("VIDPIPE_FAULTS_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(table(done)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// table is the matrix as markdown.
func table(rows []*row) string {
	var b strings.Builder
	b.WriteString("| Fault | Job state | Frames expected | In outputs | Failed (recorded) | Lost | Duplicated | Seconds | Result |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		result := "ok"
		switch {
		case r.failed && r.reason != "":
			reason := r.reason
			if len(reason) > 240 {
				reason = reason[:240] + "…"
			}
			result = "**FAIL**: " + reason
		case r.failed:
			result = "**FAIL** at " + r.stage
			if r.last != "" {
				result += " (last seen: " + r.last + ")"
			}
		case r.known != "":
			result = "known: " + r.known
		}
		if len(r.notes) > 0 {
			result += "; " + strings.Join(r.notes, "; ")
		}
		secs := "–"
		if r.seconds > 0 {
			secs = fmt.Sprintf("%.0f", r.seconds)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %s | %s |\n", r.fault, states(r.states),
			r.tally.Expected, r.tally.Lines, r.tally.Failed, r.tally.Lost, r.tally.Duplicated, secs, strings.ReplaceAll(result, "|", "/"))
	}
	return b.String()
}

// states summarises job states: "SUCCEEDED", or "7 SUCCEEDED, 3 CANCELLED".
func states(ss []string) string {
	if len(ss) == 0 {
		return "–"
	}
	n := map[string]int{}
	var order []string
	for _, s := range ss {
		if n[s] == 0 {
			order = append(order, s)
		}
		n[s]++
	}
	if len(order) == 1 && n[order[0]] == 1 {
		return order[0]
	}
	slices.Sort(order)
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
	}
	return strings.Join(parts, ", ")
}

// newCluster deploys nats-server(s), versitygw and a coordinator, with the
// matrix's model size; coordArgs add to the coordinator's flags.
func newCluster(t *testing.T, r *row, nodes int, coordArgs ...string) (*clustertest.Cluster, *api.Client) {
	t.Helper()
	r.at("starting the cluster")
	c := clustertest.Start(t, clustertest.Options{Nodes: nodes, Imgsz: imgsz})
	c.Coordinator("coordinator", coordArgs...)
	return c, c.Client()
}

// clips uploads n clips of seconds each, 320x240, under s3://videos/<prefix>/:
// cuts of vtest.avi (79 s) starting 0, 15 or 30 s in, in turn.
func clips(c *clustertest.Cluster, prefix string, n int, seconds float64) map[string]int {
	counts := map[string]int{}
	for i := range n {
		cl := c.UploadClip(prefix, fmt.Sprintf("cam%d", i+1), clustertest.ClipOptions{Start: float64(i % 3 * 15), Seconds: seconds, Scale: "320:-2"})
		counts[cl.Name] = cl.Frames
	}
	return counts
}

func total(counts map[string]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

// submit posts a job over everything under s3://videos/<prefix>/ without
// annotated videos (the matrix counts detections).
func submit(t *testing.T, cl *api.Client, name, prefix, key string) string {
	t.Helper()
	rec, created, err := cl.Submit(context.Background(), jobs.Spec{
		Name: name, Inputs: []string{"s3://videos/" + prefix + "/"}, Output: "s3://results/" + name,
		Annotate: new(false), IdempotencyKey: key,
	})
	if err != nil || !created {
		t.Fatalf("submit %s: created %v, %v", name, created, err)
	}
	return rec.ID
}

// describe is a job's state for the table's "last seen".
func describe(r *jobs.Record) string {
	s := fmt.Sprintf("%s %d/%d", r.State, r.Progress.Done, r.Progress.Total)
	if r.Error != "" {
		e := r.Error
		if len(e) > 160 {
			e = e[:160] + "…"
		}
		s += ": " + e
	}
	return s
}

// waitJob waits until cond holds, remembering the job as last seen.
func waitJob(t *testing.T, c *clustertest.Cluster, cl *api.Client, r *row, id, what string, timeout time.Duration, cond func(*jobs.Record) bool) *jobs.Record {
	t.Helper()
	r.at(what)
	return c.WaitJob(cl, id, what, timeout, func(rec *jobs.Record) bool {
		r.last = describe(rec)
		return cond(rec)
	})
}

// reach waits until the job has frac of total frames done, failing if it
// ends first: the fault would then not be mid-job.
func reach(t *testing.T, c *clustertest.Cluster, cl *api.Client, r *row, id string, total int, frac float64) *jobs.Record {
	t.Helper()
	rec := waitJob(t, c, cl, r, id, fmt.Sprintf("%.0f%% done", 100*frac), 3*time.Minute, func(rec *jobs.Record) bool {
		return rec.Progress.Done >= int(frac*float64(total)) || rec.State.Final()
	})
	if rec.State.Final() {
		t.Fatalf("job %s ended (%s) before %.0f%%: the fault would not be mid-job; make the clips longer", id, rec.State, 100*frac)
	}
	return rec
}

// finish waits for the job's end and records its state and outputs.
func finish(t *testing.T, c *clustertest.Cluster, cl *api.Client, r *row, id string, start time.Time, timeout time.Duration, counts map[string]int) *jobs.Record {
	t.Helper()
	rec := waitJob(t, c, cl, r, id, "the end", timeout, func(rec *jobs.Record) bool { return rec.State.Final() })
	r.seconds = time.Since(start).Seconds()
	r.states = append(r.states, string(rec.State))
	r.at("counting the outputs")
	ts := c.Count(rec, counts)
	for _, v := range ts {
		t.Logf("%s: %s", id, v)
	}
	if rec.Stats != nil && rec.Stats.DuplicatesDropped > 0 {
		r.note("%s: %d redelivered results dropped", id, rec.Stats.DuplicatesDropped)
	}
	r.videos = append(r.videos, ts...)
	r.tally = clustertest.Sum(r.videos)
	r.at("checking the outcome")
	for _, v := range rec.Videos {
		if v.State == jobs.VideoQueued || v.State == jobs.VideoRunning {
			r.errorf(t, "job %s is %s, its video %s still %s", id, rec.State, v.Name, v.State)
		}
	}
	return rec
}

// check fails the row on loss or duplication unless it is known, and on
// frames out of order.
func check(t *testing.T, r *row) {
	t.Helper()
	if r.known == "" && (r.tally.Lost != 0 || r.tally.Duplicated != 0) {
		r.errorf(t, "%d frames lost, %d duplicated, want 0 and 0", r.tally.Lost, r.tally.Duplicated)
	}
	for _, v := range r.videos {
		if v.Unordered != 0 {
			r.errorf(t, "video %s", v)
		}
	}
}

// waitStream waits until cond holds on a stream's state.
func waitStream(t *testing.T, c *clustertest.Cluster, r *row, stream, what string, cond func(msgs uint64) bool) {
	t.Helper()
	r.at(what)
	_, js := c.Admin()
	poll.Until(t, 3*time.Minute, what, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return false, err
		}
		return cond(info.State.Msgs), fmt.Errorf("%d messages", info.State.Msgs)
	})
}
