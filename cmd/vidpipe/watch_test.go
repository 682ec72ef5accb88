package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// TestWatchShowsTheServersRate: `status --watch` joins a job that has run
// for a while; the rate and ETA it shows are the service's, from the
// record, not frames done divided by the moments since watching began.
// The records are served as the API serves them: first mid-job, then done.
func TestWatchShowsTheServersRate(t *testing.T) {
	eta := 8.0
	started := time.Now().Add(-8 * time.Second).UTC()
	running := jobs.Record{
		ID: "j1", State: bus.JobRunning, Started: &started,
		Videos:   []jobs.Video{{Name: "clip", State: jobs.VideoRunning, Progress: jobs.Progress{Done: 100, Total: 200, Percent: 50}}},
		Progress: jobs.Progress{Done: 100, Total: 200, Percent: 50, FPS: 12.5, ETASeconds: &eta},
	}
	done := running
	done.State = bus.JobSucceeded
	done.Videos = []jobs.Video{{Name: "clip", State: "succeeded", Progress: jobs.Progress{Done: 200, Total: 200, Exact: true, Percent: 100}}}
	done.Progress = jobs.Progress{Done: 200, Total: 200, Exact: true, Percent: 100, FPS: 12.5}
	var (
		mu    sync.Mutex
		gets  int
		cycle = []jobs.Record{running, done}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/jobs/j1" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		rec := cycle[min(gets, len(cycle)-1)]
		gets++
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(rec)
	}))
	defer srv.Close()
	cl, err := api.NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var lmu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, nil))
	if err := watchJob(context.Background(), cl, "j1", 100*time.Millisecond, logger); err != nil {
		t.Fatal(err)
	}
	lmu.Lock()
	defer lmu.Unlock()
	first, _, _ := strings.Cut(logs.String(), "\n")
	if !strings.Contains(first, "frames_done=100") || !strings.Contains(first, "fps=12.5") || !strings.Contains(first, "eta=8s") {
		t.Errorf("first progress line %q: want the server's 12.5 frames/s and 8s ETA at 100 frames done", first)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
