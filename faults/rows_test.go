package faults

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/clustertest"
	"github.com/vidpipe/vidpipe/internal/poll"
	"github.com/vidpipe/vidpipe/workers"
)

// endTimeout bounds a job's run after its fault: a job that does not end
// within it is a finding (it hangs), not a slow machine.
const endTimeout = 3 * time.Minute

// matrix is every row, in the README's order.
func matrix() []*row {
	return []*row{
		{name: "worker-sigkill-x3", fault: "worker SIGKILL ×3 in one job", body: workerKills},
		{name: "ingest-sigkill", fault: "ingest SIGKILL mid-video", body: ingestKill},
		{name: "ingest-sigterm-x2", fault: "ingest SIGTERM twice in a row (rolling restart)", body: ingestRollingRestart},
		{name: "coordinator-sigkill-x2", fault: "coordinator SIGKILL ×2 in one job", body: coordinatorKills},
		{name: "nats-sigterm", fault: "nats-server restart (SIGTERM), same store", body: natsRestart(syscall.SIGTERM)},
		{name: "nats-sigkill", fault: "nats-server restart (SIGKILL), same store", body: natsRestart(syscall.SIGKILL)},
		{name: "r3-node-kill", fault: "R3 cluster: a follower node SIGKILLed and back, then the node leading VIDPIPE_RESULTS and holding the coordinator's connection SIGKILLed", body: r3NodeKill},
		{name: "r3-ten-jobs", fault: "R3 cluster: 10 jobs submitted at once", body: r3TenJobs},
		{name: "s3-outage", fault: "S3 unavailable for 15 s (versitygw stopped), then back", body: s3Outage},
		{name: "slow-inference", fault: "inference longer than the ack wait (1 s ack wait, batches of 8 at 640)", body: slowInference},
		{name: "poison-frame", fault: "a poison frame: undecodable bytes published under a frame's id before ingest publishes the real one", body: poisonFrame},
		{name: "poison-video", fault: "a poison video (random bytes as .mp4) beside a good one", body: poisonVideo},
		{name: "max-ack-pending", fault: "MaxAckPending full (2 in flight, 3 workers of batch 4)", body: maxAckPending},
		{name: "no-workers", fault: "a job with no workers for 65 s (past the ingest ack wait), then one", body: noWorkers},
		{name: "ten-jobs-cancel", fault: "10 jobs at once, 3 cancelled mid-way, 1 resubmitted with its idempotency key", body: tenJobsCancel},
	}
}

// wantState fails the row unless the job ended in want.
func wantState(t *testing.T, r *row, rec *jobs.Record, want bus.JobState) {
	t.Helper()
	if rec.State != want {
		r.errorf(t, "job %s: %s (%s), want %s", rec.ID, rec.State, rec.Error, want)
	}
}

func workerKills(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 2, 20)
	c.Ingest("ingest-1")
	ws := []*clustertest.Proc{c.Worker("worker-1"), c.Worker("worker-2"), c.Worker("worker-3")}
	c.WaitWorkers(cl, 3)
	start := time.Now()
	id := submit(t, cl, "wk3", "v", "")
	for i, frac := range []float64{0.15, 0.35, 0.55} {
		reach(t, c, cl, r, id, total(counts), frac)
		r.at(fmt.Sprintf("SIGKILL %d", i+1))
		ws[i].Kill(t, syscall.SIGKILL)
		ws = append(ws, c.Worker(fmt.Sprintf("worker-%d", i+4)))
	}
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

func ingestKill(t *testing.T, r *row) {
	// A short frames queue keeps ingest mid-video while the worker works.
	c, cl := newCluster(t, r, 1, "--frames-waiting", "16")
	counts := clips(c, "v", 1, 30)
	in := c.Ingest("ingest-1")
	c.Worker("worker-1")
	c.WaitWorkers(cl, 1)
	start := time.Now()
	id := submit(t, cl, "ik", "v", "")
	reach(t, c, cl, r, id, total(counts), 0.15)
	r.at("SIGKILL of ingest")
	in.Kill(t, syscall.SIGKILL)
	c.Ingest("ingest-2")
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

func ingestRollingRestart(t *testing.T, r *row) {
	// One video through a rolling restart of a one-process deployment (a
	// new process up, then the old one stopped) done twice: the video is
	// handed back twice while it waits on backpressure.
	c, cl := newCluster(t, r, 1, "--frames-waiting", "16")
	counts := clips(c, "v", 1, 30)
	old := c.Ingest("ingest-1")
	c.Worker("worker-1")
	c.WaitWorkers(cl, 1)
	start := time.Now()
	id := submit(t, cl, "ir", "v", "")
	r.at("ingest-1 taking the video")
	c.WaitLogged(old, "msg=ingesting job=ir", time.Minute)
	reach(t, c, cl, r, id, total(counts), 0.1)
	for i := range 2 {
		next := c.Ingest(fmt.Sprintf("ingest-%d", i+2))
		r.at(fmt.Sprintf("ingest-%d ready", i+2))
		c.WaitLogged(next, "ingest pool ready", time.Minute)
		r.at(fmt.Sprintf("SIGTERM of ingest-%d", i+1))
		old.Kill(t, syscall.SIGTERM)
		r.at(fmt.Sprintf("ingest-%d taking the video over", i+2))
		c.WaitLogged(next, "msg=ingesting job=ir", endTimeout)
		old = next
	}
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

func coordinatorKills(t *testing.T, r *row) {
	// One worker over 1,200 frames: the job must outlast a coordinator's
	// restart and replay, or the second kill would find it finished (two
	// workers on 400 frames did, on a quiet machine).
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 4, 30)
	c.Ingest("ingest-1")
	c.Worker("worker-1")
	c.WaitWorkers(cl, 1)
	start := time.Now()
	id := submit(t, cl, "ck2", "v", "")
	procs := findProcs(c, "coordinator")
	for i, frac := range []float64{0.25, 0.55} {
		reach(t, c, cl, r, id, total(counts), frac)
		r.at(fmt.Sprintf("SIGKILL %d of the coordinator", i+1))
		procs[len(procs)-1].Kill(t, syscall.SIGKILL)
		procs = append(procs, c.Coordinator("coordinator"))
	}
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
	// The rate must span the whole job, not the time since the last start.
	measured := float64(r.tally.Lines) / r.seconds
	r.note("fps recorded %.1f, %.1f from submit to end", rec.Progress.FPS, measured)
	if rec.Progress.FPS > 3*measured {
		r.errorf(t, "the record says %.1f frames/s; the job ran %d frames in %.1f s (%.1f/s) from submit to end", rec.Progress.FPS, r.tally.Lines, r.seconds, measured)
	}
}

// findProcs returns the cluster's processes whose name starts with prefix.
func findProcs(c *clustertest.Cluster, prefix string) []*clustertest.Proc {
	var out []*clustertest.Proc
	for _, p := range c.Procs() {
		if strings.HasPrefix(p.Name, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func natsRestart(sig syscall.Signal) func(*testing.T, *row) {
	return func(t *testing.T, r *row) {
		c, cl := newCluster(t, r, 1)
		counts := clips(c, "v", 2, 10)
		c.Ingest("ingest-1")
		c.Worker("worker-1")
		c.Worker("worker-2")
		c.WaitWorkers(cl, 2)
		start := time.Now()
		id := submit(t, cl, "nr", "v", "")
		reach(t, c, cl, r, id, total(counts), 0.3)
		r.at(fmt.Sprintf("nats-server %v and restart", sig))
		c.Nodes[0].Restart(c, sig)
		rec := finish(t, c, cl, r, id, start, endTimeout, counts)
		wantState(t, r, rec, bus.JobSucceeded)
		// The workers listing comes from a bucket the restart may lose.
		r.at("GET /v1/workers after the restart")
		var live []workers.Heartbeat
		if err := cl.Workers(context.Background(), &live); err != nil {
			r.note("GET /v1/workers after the restart: %v", err)
			r.errorf(t, "workers after the nats-server restart: %v", err)
		}
	}
}

// leader is the node leading stream's raft group.
func leader(t *testing.T, c *clustertest.Cluster, stream string) *clustertest.Node {
	t.Helper()
	_, js := c.Admin()
	var name string
	poll.Until(t, time.Minute, stream+" has a leader", func() (bool, error) {
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
		if info.Cluster != nil {
			name = info.Cluster.Leader
		}
		return name != "", nil
	})
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("%s led by %q, not a node of the cluster", stream, name)
	return nil
}

func r3NodeKill(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 3, "--replicas", "3")
	// Long enough that the leader's kill is still mid-job on an idle
	// machine too (one worker ran 900 frames at 68 frames/s), even after
	// the coordinator waited two heartbeats for a consumer the first kill
	// took with it.
	counts := clips(c, "v", 5, 30)
	c.Ingest("ingest-1")
	c.Worker("worker-1")
	c.WaitWorkers(cl, 1)
	start := time.Now()
	id := submit(t, cl, "r3k", "v", "")
	reach(t, c, cl, r, id, total(counts), 0.15)
	lead := leader(t, c, bus.ResultsStream)
	var follower *clustertest.Node
	for _, n := range c.Nodes {
		if n != lead {
			follower = n
			break
		}
	}
	r.at("SIGKILL of follower " + follower.Name)
	follower.Proc.Kill(t, syscall.SIGKILL)
	r.at("restart of follower " + follower.Name)
	follower.Start(c)
	// R3 survives one node down at a time: the follower must have caught
	// up before the leader goes.
	follower.WaitHealthy(c, 2*time.Minute)
	reach(t, c, cl, r, id, total(counts), 0.5)
	// The hardest node to lose: the one leading the results stream and
	// holding the coordinator's connection, whose follower must move.
	r.at("moving the results leader to the coordinator's node")
	var target *clustertest.Node
	poll.Until(t, time.Minute, "the coordinator's node leads "+bus.ResultsStream, func() (bool, error) {
		n, err := c.ConnectedNode("vidpipe-coordinator")
		if err != nil {
			return false, err
		}
		target = n
		if leader(t, c, bus.ResultsStream) == n {
			return true, nil
		}
		return false, c.MoveLeader(bus.ResultsStream, n)
	})
	lead = target
	r.at("SIGKILL of the results leader " + lead.Name)
	lead.Proc.Kill(t, syscall.SIGKILL)
	r.note("killed %s, leading %s and holding the coordinator's connection", lead.Name, bus.ResultsStream)
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

// submitMany posts n jobs at once over prefix, named <name>01...; keys are
// <name>-k01... It returns the job ids in order.
func submitMany(t *testing.T, cl *api.Client, name, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec, created, err := cl.Submit(context.Background(), jobs.Spec{
				Name: fmt.Sprintf("%s%02d", name, i+1), Inputs: []string{"s3://videos/" + prefix + "/"},
				Output: fmt.Sprintf("s3://results/%s%02d", name, i+1), Annotate: new(false),
				IdempotencyKey: fmt.Sprintf("%s-k%02d", name, i+1),
			})
			if err == nil && !created {
				err = errors.New("not created")
			}
			ids[i], errs[i] = rec.ID, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("submit %d jobs at once: %v", n, err)
	}
	return ids
}

func r3TenJobs(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 3, "--replicas", "3")
	counts := clips(c, "v", 1, 2)
	c.Ingest("ingest-1", "--concurrency", "2")
	c.Worker("worker-1")
	c.Worker("worker-2")
	c.WaitWorkers(cl, 2)
	start := time.Now()
	ids := submitMany(t, cl, "rt", "v", 10)
	for _, id := range ids {
		rec := finish(t, c, cl, r, id, start, endTimeout, counts)
		wantState(t, r, rec, bus.JobSucceeded)
	}
}

func s3Outage(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 2, 20)
	c.Ingest("ingest-1")
	c.Worker("worker-1")
	c.WaitWorkers(cl, 1)
	start := time.Now()
	id := submit(t, cl, "s3o", "v", "")
	reach(t, c, cl, r, id, total(counts), 0.1)
	r.at("S3 outage")
	c.S3.Stop()
	down := time.Now()
	// The outage lasts 15 s by the clock; meanwhile the API must answer.
	poll.Until(t, time.Minute, "15 s of S3 outage with the API answering", func() (bool, error) {
		rec, err := cl.Get(context.Background(), id)
		if err != nil {
			return false, err
		}
		r.last = describe(rec)
		return time.Since(down) >= 15*time.Second, nil
	})
	r.at("S3 back")
	c.S3.Restart()
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

func slowInference(t *testing.T, r *row) {
	// A second's ack wait against batches of 8 frames at 640 on one thread:
	// only the workers' progress notices keep the frames theirs.
	const ackWait = time.Second
	c, cl := newCluster(t, r, 1, "--imgsz", "640", "--ack-wait", ackWait.String())
	counts := clips(c, "v", 1, 3)
	c.Ingest("ingest-1")
	c.Worker("worker-1", "--imgsz", "640", "--batch", "8")
	c.Worker("worker-2", "--imgsz", "640", "--batch", "8")
	c.WaitWorkers(cl, 2)
	start := time.Now()
	id := submit(t, cl, "si", "v", "")
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
	if rec.Stats == nil {
		t.Fatal("no job statistics")
	}
	batch := time.Duration(rec.Stats.StagesMS.Infer.Mean * rec.Stats.BatchMean * float64(time.Millisecond))
	r.note("a batch took %.1f s on average, %d redelivered results dropped", batch.Seconds(), rec.Stats.DuplicatesDropped)
	if batch <= ackWait {
		r.errorf(t, "a batch took %v, not longer than the %v ack wait: the row does not test what it says", batch, ackWait)
	}
	if rec.Stats.DuplicatesDropped != 0 {
		r.errorf(t, "%d results came twice: frames were redelivered while their worker still ran them", rec.Stats.DuplicatesDropped)
	}
}

func poisonFrame(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 1, 3)
	c.Ingest("ingest-1")
	const job, video, seq = "pf", "cam1", 5
	// The bad frame takes the id of a real one first, so the stream drops
	// ingest's as a duplicate: that frame can never be analysed.
	r.at("publishing the poison frame")
	_, js := c.Admin()
	msg := &nats.Msg{Subject: bus.FrameSubject(job, video), Data: []byte("not a frame"), Header: nats.Header{}}
	ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(bus.MsgID(job, video, seq)))
	if err != nil || ack.Duplicate {
		t.Fatalf("publish the poison frame: %+v, %v", ack, err)
	}
	start := time.Now()
	id := submit(t, cl, job, "v", "")
	// Workers start once ingest has published the whole clip, so the poison
	// frame's result cannot come before the video has begun.
	waitStream(t, c, r, bus.FramesStream, "every frame published", func(n uint64) bool { return n >= uint64(counts[video]) })
	c.Worker("worker-1")
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobFailed)
	if r.tally.Failed != 1 {
		r.errorf(t, "%d frames recorded failed, want the poison one", r.tally.Failed)
	}
	if v := rec.Videos[0]; v.State != "partial" || !strings.Contains(v.Error, fmt.Sprintf("frame #%d:", seq)) {
		r.errorf(t, "video %s: %s (%s), want partial naming published frame #%d", v.Name, v.State, v.Error, seq)
	} else {
		r.note("video partial: %q", v.Error)
	}
}

func poisonVideo(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 1, 3)
	junk := make([]byte, 64<<10)
	_, _ = rand.Read(junk)
	c.Put("videos", "v/junk.mp4", junk)
	counts["junk"] = 0
	c.Ingest("ingest-1")
	c.Worker("worker-1")
	c.WaitWorkers(cl, 1)
	start := time.Now()
	id := submit(t, cl, "pv", "v", "")
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobFailed)
	for _, v := range rec.Videos {
		switch {
		case v.Name == "junk" && (v.State != "failed" || v.Error == ""):
			r.errorf(t, "poison video: %s (%q), want failed with the reason", v.State, v.Error)
		case v.Name == "junk":
			r.note("junk: %q", v.Error)
		case v.State != "succeeded":
			r.errorf(t, "video %s beside the poison one: %s (%s)", v.Name, v.State, v.Error)
		}
	}
}

func maxAckPending(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 1, 6)
	// As an operator would with `nats consumer edit`: the coordinator sets
	// the consumer up at start and leaves it until its next start.
	r.at("lowering MaxAckPending")
	const limit = 2
	_, js := c.Admin()
	ctx := context.Background()
	cons, err := js.Consumer(ctx, bus.FramesStream, bus.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxAckPending = limit
	if _, err := js.UpdateConsumer(ctx, bus.FramesStream, cfg); err != nil {
		t.Fatalf("lower max ack pending: %v", err)
	}
	c.Ingest("ingest-1")
	for i := 1; i <= 3; i++ {
		c.Worker(fmt.Sprintf("worker-%d", i), "--batch", "4")
	}
	c.WaitWorkers(cl, 3)
	start := time.Now()
	id := submit(t, cl, "map", "v", "")
	r.at("ack pending at its limit")
	poll.Until(t, 2*time.Minute, "ack pending at its limit", func() (bool, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err
		}
		return info.NumAckPending >= limit, fmt.Errorf("%d ack pending", info.NumAckPending)
	})
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

func noWorkers(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 1, 8)
	in := c.Ingest("ingest-1")
	start := time.Now()
	id := submit(t, cl, "nw", "v", "")
	limit := bus.DefaultStreamOptions().MaxFramesWaiting
	waitStream(t, c, r, bus.FramesStream, "frames stream full", func(n uint64) bool { return n >= uint64(limit) })
	// Ingest holds the video, held back, for longer than its task's ack
	// wait: only its progress notices keep the task from going elsewhere.
	hold := bus.DefaultStreamOptions().IngestAckWait + 5*time.Second
	r.at("no worker for longer than the ingest ack wait")
	_, js := c.Admin()
	poll.Until(t, hold+time.Minute, fmt.Sprintf("%v with no worker", hold), func() (bool, error) {
		rec, err := cl.Get(context.Background(), id)
		if err != nil {
			return false, err
		}
		r.last = describe(rec)
		if rec.State.Final() {
			t.Fatalf("job with no workers ended: %s", describe(rec))
		}
		return time.Since(start) >= hold, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, bus.VideosStream, bus.IngestConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || !in.Logged("msg=ingesting job=nw") {
		r.errorf(t, "the video task was redelivered (%d) while ingest held it", info.NumRedelivered)
	}
	r.note("%.0f s with no worker", time.Since(start).Seconds())
	c.Worker("worker-1")
	rec := finish(t, c, cl, r, id, start, endTimeout, counts)
	wantState(t, r, rec, bus.JobSucceeded)
}

func tenJobsCancel(t *testing.T, r *row) {
	c, cl := newCluster(t, r, 1)
	counts := clips(c, "v", 1, 6)
	c.Ingest("ingest-1", "--concurrency", "2")
	c.Worker("worker-1")
	c.Worker("worker-2")
	c.WaitWorkers(cl, 2)
	start := time.Now()
	ids := submitMany(t, cl, "tj", "v", 10)
	// Each cancelled mid-way through its own video: picked while it has
	// frames done and not all of them.
	cancelled := map[string]bool{}
	r.at("cancelling 3 jobs mid-way")
	poll.Until(t, 3*time.Minute, "3 jobs cancelled mid-way", func() (bool, error) {
		list, err := cl.List(context.Background())
		if err != nil {
			return false, err
		}
		for _, j := range list {
			if len(cancelled) == 3 || cancelled[j.ID] || j.ID == ids[0] || j.State.Final() || j.Progress.Done == 0 || j.Progress.Done >= j.Progress.Total {
				continue
			}
			rec, err := cl.Cancel(context.Background(), j.ID)
			var se *api.StatusError
			if errors.As(err, &se) && se.Code == 409 {
				continue // it finished meanwhile
			}
			if err != nil {
				return false, err
			}
			cancelled[j.ID] = true
			r.note("%s cancelled at %d/%d frames", j.ID, j.Progress.Done, j.Progress.Total)
			_ = rec
		}
		return len(cancelled) == 3, fmt.Errorf("%d cancelled", len(cancelled))
	})
	r.at("resubmitting with an idempotency key")
	again, created, err := cl.Submit(context.Background(), jobs.Spec{
		Name: "tj01", Inputs: []string{"s3://videos/v/"}, Output: "s3://results/tj01", Annotate: new(false), IdempotencyKey: "tj-k01",
	})
	if err != nil || created || again.ID != ids[0] {
		r.errorf(t, "resubmit with key tj-k01: id %q created %v (%v), want %s again", again.ID, created, err, ids[0])
	}
	for _, id := range ids {
		if cancelled[id] {
			rec := waitJob(t, c, cl, r, id, "cancelled "+id, endTimeout, func(rec *jobs.Record) bool { return rec.State.Final() })
			r.states = append(r.states, string(rec.State))
			wantState(t, r, rec, bus.JobCancelled)
			continue
		}
		rec := finish(t, c, cl, r, id, start, endTimeout, counts)
		wantState(t, r, rec, bus.JobSucceeded)
	}
	list, err := cl.List(context.Background())
	if err != nil || len(list) != 10 {
		r.errorf(t, "jobs listed: %d (%v), want 10", len(list), err)
	}
}
