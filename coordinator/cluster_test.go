package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// TestFollowerSurvivesResultsLeaderKill kills, as SIGKILL does, the cluster
// node that leads the results stream and holds the coordinator's
// connection, mid-job, on an R3 cluster, while the coordinator runs several
// jobs: every job finishes with every frame once.
//
// The survivors count the dead node online for minutes, so for a few
// seconds after the kill the consumers the followers re-create can be
// placed on it (the stall at 499/600: the client library's ordered
// consumer retried that one consumer forever inside Next). With one
// follower per job, some are.
func TestFollowerSurvivesResultsLeaderKill(t *testing.T) {
	cluster := bustest.StartCluster(t)
	nodes, urls := cluster.Nodes, cluster.URLs()
	o := bus.DefaultStreamOptions()
	o.Replicas = 3
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	connect := func(servers ...string) (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(strings.Join(servers, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	anc, admin := connect(urls...)
	poll.Until(t, 60*time.Second, "the cluster to set up the streams", func() (bool, error) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := bus.Setup(actx, admin, o)
		return err == nil, err
	})
	// The node to kill leads the results stream but not the meta group:
	// a new meta leader would count only the peers that answer it.
	var victim string
	poll.Until(t, 60*time.Second, "a results leader that does not lead the meta group", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := admin.Stream(rctx, bus.ResultsStream)
		if err != nil {
			return false, err
		}
		info, err := st.Info(rctx)
		if err != nil {
			return false, err
		}
		if info.Cluster == nil || nodes[info.Cluster.Leader] == nil {
			return false, fmt.Errorf("results stream leader %+v", info.Cluster)
		}
		victim = info.Cluster.Leader
		if !nodes[victim].JetStreamIsLeader() {
			return true, nil
		}
		for name, srv := range nodes {
			if !srv.JetStreamIsLeader() {
				return false, stepDown(anc, bus.ResultsStream, name)
			}
		}
		return false, nil
	})
	var others []string
	for name, n := range nodes {
		if name != victim {
			others = append(others, n.ClientURL())
		}
	}
	// The coordinator's connection is on the victim first.
	_, cjs := connect(append([]string{nodes[victim].ClientURL()}, others...)...)
	_, pjs := connect(others...)

	const jobs, n = 6, 40
	store := func(subject, id string, data []byte) {
		t.Helper()
		poll.Until(t, 60*time.Second, "stored: "+id, func() (bool, error) {
			_, err := pjs.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, jetstream.WithMsgID(id))
			return err == nil, err
		})
	}
	results := func(job string, from, to int) {
		t.Helper()
		for seq := from; seq < to; seq++ {
			b, _ := bus.EncodeResult(&bus.Result{Job: job, Video: "v", Seq: seq, Index: seq, Worker: "w1", Detections: []bus.Detection{}})
			store(bus.ResultSubject(job, "v"), bus.MsgID(job, "v", seq), b)
		}
	}
	event := func(e bus.Event) {
		t.Helper()
		b, _ := bus.EncodeEvent(&e)
		store(bus.EventSubject(e.Job, e.Video), bus.EventMsgID(e.Job, e.Video, e.Type), b)
	}
	type outcome struct {
		sum *Summary
		err error
	}
	var (
		done [jobs]atomic.Int64
		res  [jobs]outcome
		wg   sync.WaitGroup
	)
	job := func(i int) string { return fmt.Sprintf("job%d", i) }
	// How the followers recovered shows with -v, or when the test fails.
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	for i := range jobs {
		event(bus.Event{Type: bus.VideoStarted, Job: job(i), Video: "v", FramesEstimate: n})
		results(job(i), 0, n/2)
		c := New(cjs, Options{Out: folder(t, t.TempDir()), FollowIdle: time.Second, Logger: log,
			OnProgress: func(p Progress) { done[i].Store(int64(p.Done)) }})
		wg.Go(func() {
			sum, err := c.RunJob(ctx, Job{ID: job(i), Videos: []VideoSpec{{"v", "v.mp4"}}})
			res[i] = outcome{sum, err}
		})
	}
	applied := func() string {
		var s []string
		for i := range jobs {
			s = append(s, fmt.Sprintf("%s %d/%d", job(i), done[i].Load(), n))
		}
		return strings.Join(s, ", ")
	}
	poll.Until(t, 60*time.Second, "the first halves applied", func() (bool, error) {
		for i := range jobs {
			if done[i].Load() != n/2 {
				return false, fmt.Errorf("%s", applied())
			}
		}
		return true, nil
	})
	cluster.Kill(victim)
	for i := range jobs {
		results(job(i), n/2, n)
		event(bus.Event{Type: bus.VideoEnded, Job: job(i), Video: "v", Frames: n, Decoded: n})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		t.Fatalf("not every job finished after the leader was killed: %s", applied())
	}
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("%s: %v", job(i), r.err)
		}
		if v := r.sum.Videos[0]; v.Status != Succeeded || v.Stats.Frames != n || v.Stats.DuplicatesDropped != 0 {
			t.Fatalf("%s: video %+v", job(i), v)
		}
	}
}

// stepDown asks stream's leader to hand over to node, as `nats stream
// cluster step-down --preferred` does.
func stepDown(nc *nats.Conn, stream, node string) error {
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": node}})
	msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
	if err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	var resp struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("step down %s to %s: %s", stream, node, resp.Error.Description)
	}
	return nil
}
