package jobs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// TestReplicatedJobsRecordsRead submits jobs at once on a 3-node cluster
// with every stream and bucket at three replicas, each coordinator
// connected to its own node: a record read right after it is created, or
// updated, may be answered by a replica that has not applied the write
// yet. Every job must still be dispatched and finish. In process the
// replicas rarely lag long enough for the old reads to fail here (the
// process-level fault matrix runs the standalone cluster); the test keeps
// the replicated path exercised end to end.
func TestReplicatedJobsRecordsRead(t *testing.T) {
	urls := bustest.StartCluster(t).URLs()
	o := bus.DefaultStreamOptions()
	o.Replicas = 3
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	connect := func(u string) jetstream.JetStream {
		nc, err := nats.Connect(u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	first := connect(urls[0])
	poll.Until(t, 60*time.Second, "the cluster to set up the streams", func() (bool, error) {
		// Requests sent before the cluster has a meta leader go unanswered.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := bus.Setup(actx, first, o)
		return err == nil, err
	})
	var svcs []*Service
	out := t.TempDir()
	for _, u := range urls {
		svc, _ := newService(t, connect(u), out)
		svcs = append(svcs, svc)
	}
	const jobs = 12
	var wg sync.WaitGroup
	ids := make([]string, jobs)
	for i := range jobs {
		wg.Go(func() {
			rec, _, err := svcs[i%len(svcs)].Submit(ctx, Spec{Inputs: []string{fmt.Sprintf("/v/%d.mp4", i)}})
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
				return
			}
			ids[i] = rec.ID
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	tasks := takeTasks(t, first, jobs)
	for _, task := range tasks {
		playVideo(t, first, task, 2)
	}
	for i, id := range ids {
		r := waitFor(t, svcs[i%len(svcs)], id, "the job to finish", func(r *Record) bool { return r.State.Final() })
		if r.State != bus.JobSucceeded || !r.Dispatched {
			t.Errorf("job %s: %s, dispatched %v, error %q", id, r.State, r.Dispatched, r.Error)
		}
	}
}
