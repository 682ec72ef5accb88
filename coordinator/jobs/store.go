package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// Store errors.
var (
	// ErrNotFound: no job has that id.
	ErrNotFound = errors.New("job not found")
	// ErrExists: a job with that id exists already.
	ErrExists = errors.New("job exists")
)

// Store keeps job records in the jobs KV bucket. Every change is a
// compare-and-set on the entry's revision, retried on conflict, so two
// coordinators (or a coordinator and its API) never lose each other's
// updates.
type Store struct {
	kv jetstream.KeyValue
	// fullReads counts records read whole (tests check listings with it).
	fullReads atomic.Int64
	// staleReads counts reads answered older than known, then retried.
	staleReads atomic.Int64

	mu sync.Mutex
	// briefs are the job lines of the last listing, each with the revision
	// it was read at: a listing reads again only the records that changed.
	briefs map[string]revBrief

	// written is the last revision this store wrote or read per record. On
	// a replicated bucket a read may be answered by a replica that lags
	// (KV gets are direct gets, served by any replica): a record read
	// older than that, or not found, is read again until it catches up.
	wmu     sync.Mutex
	written map[string]uint64
}

// Stale reads of a record known to exist are retried with backoff, up to
// staleReadFor in all: a lagging replica catches up in milliseconds, a
// replica that stays behind longer is a real fault, reported.
const (
	staleReadFor     = 10 * time.Second
	staleReadBackoff = 20 * time.Millisecond
)

type revBrief struct {
	rev   uint64
	brief Brief
}

// OpenStore opens the jobs bucket (bus.Setup creates it).
func OpenStore(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, bus.JobsBucket)
	if err != nil {
		return nil, fmt.Errorf("open kv %s: %w", bus.JobsBucket, err)
	}
	return &Store{kv: kv, briefs: map[string]revBrief{}, written: map[string]uint64{}}, nil
}

// Create stores a new record; ErrExists if the id is taken.
func (s *Store) Create(ctx context.Context, r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, r.ID, b)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("job %s: %w", r.ID, ErrExists)
		}
		return fmt.Errorf("store job %s: %w", r.ID, err)
	}
	s.saw(r.ID, rev)
	return nil
}

// saw notes that record id exists at revision rev at least.
func (s *Store) saw(id string, rev uint64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if rev > s.written[id] {
		s.written[id] = rev
	}
}

func (s *Store) known(id string) uint64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.written[id]
}

// Get reads one record.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	r, _, err := s.get(ctx, id)
	return r, err
}

func (s *Store) get(ctx context.Context, id string) (*Record, uint64, error) {
	if err := bus.ValidName("job", id); err != nil {
		return nil, 0, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	e, err := s.read(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, fmt.Errorf("job %s: %w", id, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("read job %s: %w", id, err)
	}
	s.saw(id, e.Revision())
	s.fullReads.Add(1)
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("read job %s: %w", id, err)
	}
	return &r, e.Revision(), nil
}

// read gets the record's entry, reading again while a replica answers
// with less than this store has already seen of it.
func (s *Store) read(ctx context.Context, id string) (jetstream.KeyValueEntry, error) {
	deadline := time.Now().Add(staleReadFor)
	wait := staleReadBackoff
	for {
		e, err := s.kv.Get(ctx, id)
		want := s.known(id)
		switch {
		case err == nil && e.Revision() >= want:
			return e, nil
		case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, err
		case want == 0:
			return e, err // never seen: not found is the answer
		case time.Now().After(deadline):
			if err == nil {
				return nil, fmt.Errorf("revision %d read, %d written: replicas lag for %v", e.Revision(), want, staleReadFor)
			}
			return nil, fmt.Errorf("revision %d written, not found for %v: %w", want, staleReadFor, err)
		}
		s.staleReads.Add(1)
		bus.Sleep(ctx, wait)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait = min(2*wait, time.Second)
	}
}

// errUnchanged lets an Update function say there is nothing to write.
var errUnchanged = errors.New("unchanged")

// Update applies fn to the current record and stores the result,
// re-reading and re-applying fn when another writer got there first. fn
// returning errUnchanged skips the write; any other error aborts.
func (s *Store) Update(ctx context.Context, id string, fn func(*Record) error) (*Record, error) {
	for attempt := 0; ; attempt++ {
		r, rev, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			if errors.Is(err, errUnchanged) {
				return r, nil
			}
			return r, err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		nrev, err := s.kv.Update(ctx, id, b, rev)
		if err == nil {
			s.saw(id, nrev)
			return r, nil
		}
		if attempt >= 20 || !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("update job %s: %w", id, err)
		}
	}
}

// List returns every record, newest first.
func (s *Store) List(ctx context.Context) ([]*Record, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer lister.Stop()
	var out []*Record
	for key := range lister.Keys() {
		r, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Record) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Briefs returns every job's line, newest first. It lists the keys with
// their revisions only and reads a record whole only when it changed since
// the last listing, so a metrics scrape or a GET /v1/jobs costs a read per
// running job, not per job ever kept.
func (s *Store) Briefs(ctx context.Context) ([]Brief, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer w.Stop()
	revs := map[string]uint64{}
	for listed := false; !listed; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list jobs: the key watch ended early")
			}
			if e == nil {
				listed = true // the initial values are all delivered
				break
			}
			revs[e.Key()] = e.Revision()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Brief, 0, len(revs))
	for key, rev := range revs {
		if c, ok := s.briefs[key]; ok && c.rev >= rev {
			out = append(out, c.brief)
			continue
		}
		r, rrev, err := s.get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		s.briefs[key] = revBrief{rev: rrev, brief: r.Brief()}
		out = append(out, r.Brief())
	}
	for key := range s.briefs {
		if _, ok := revs[key]; !ok {
			delete(s.briefs, key) // expired or deleted
		}
	}
	slices.SortFunc(out, func(a, b Brief) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Follow calls fn with the job's record at every change until the job has
// ended, and returns the final record.
func (s *Store) Follow(ctx context.Context, id string, fn func(*Record)) (*Record, error) {
	w, err := s.kv.Watch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("follow job %s: %w", id, err)
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("follow job %s: the watch ended", id)
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var r Record
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				return nil, fmt.Errorf("read job %s: %w", id, err)
			}
			if fn != nil {
				fn(&r)
			}
			if r.State.Final() {
				return &r, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
