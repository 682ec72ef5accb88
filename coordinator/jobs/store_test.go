package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// TestBriefsReadOnlyChangedRecords: listing jobs reads a record whole only
// when it changed since the last listing, and lists the same lines as the
// records themselves.
func TestBriefsReadOnlyChangedRecords(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx := context.Background()
	store, err := OpenStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := store.Briefs(ctx); err != nil || len(b) != 0 {
		t.Fatalf("empty bucket: %v, %v", b, err)
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		rec := &Record{ID: id, State: bus.JobSucceeded, Created: t0.Add(time.Duration(i) * time.Minute), Videos: make([]Video, i+1)}
		if err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	list := func(want ...string) int64 {
		t.Helper()
		before := store.fullReads.Load()
		b, err := store.Briefs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range b {
			got = append(got, x.ID)
			r, err := store.Get(ctx, x.ID)
			if err != nil {
				t.Fatal(err)
			}
			if x != r.Brief() {
				t.Errorf("brief %+v, record says %+v", x, r.Brief())
			}
		}
		if len(got) != len(want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("listed %v, want %v (newest first)", got, want)
			}
		}
		return store.fullReads.Load() - before - int64(len(b)) // less the checks' Gets
	}
	if n := list("c", "b", "a"); n != 3 {
		t.Errorf("first listing read %d records, want 3", n)
	}
	if n := list("c", "b", "a"); n != 0 {
		t.Errorf("second listing, nothing changed, read %d records, want 0", n)
	}
	if _, err := store.Update(ctx, "b", func(r *Record) error { r.State = bus.JobFailed; r.Error = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	if n := list("c", "b", "a"); n != 1 {
		t.Errorf("listing after one update read %d records, want 1", n)
	}
	kv, err := js.KeyValue(ctx, bus.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if n := list("b", "a"); n != 0 {
		t.Errorf("listing after a delete read %d records, want 0", n)
	}
}

// TestStoreRereadsLaggingReplica: a replica that has not applied a record's
// creation answers "not found", or an older revision; the store, knowing
// the record exists at a later revision, reads again until it gets it,
// rather than failing the job with "job not found". The lagging replica is
// played by the bucket itself: the entry is removed under the store and
// put back once the store has been refused.
func TestStoreRereadsLaggingReplica(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	ctx := context.Background()
	store, err := OpenStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bus.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{ID: "j1", State: bus.JobQueued}
	if err := store.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	type got struct {
		r   *Record
		err error
	}
	res := make(chan got, 1)
	go func() {
		r, err := store.Get(ctx, "j1")
		res <- got{r, err}
	}()
	poll.Until(t, 10*time.Second, "the store to be refused once", poll.True(func() bool { return store.staleReads.Load() > 0 }))
	if _, err := kv.Put(ctx, "j1", entry.Value()); err != nil {
		t.Fatal(err)
	}
	g := <-res
	if g.err != nil || g.r.ID != "j1" {
		t.Fatalf("Get after the replica caught up: %+v, %v", g.r, g.err)
	}
	// A record never seen is not waited for.
	if _, err := store.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown record: %v", err)
	}
}
