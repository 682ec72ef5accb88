package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/bustest"
)

const token = "s3cret-token"

// start serves the API on a real job service over an embedded JetStream.
func start(t *testing.T) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(newHandler(t))
	t.Cleanup(srv.Close)
	cl, err := NewClient(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cl
}

// newHandler is the API on a real job service over an embedded JetStream.
func newHandler(t *testing.T) http.Handler {
	t.Helper()
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	store, err := jobs.OpenStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	svc := jobs.New(js, store, jobs.Options{Out: t.TempDir(), Model: jobs.Model{Path: "m.onnx", SHA256: "abc", Input: 64}, LocalInputs: true})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); svc.Wait() })
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := Handler(svc, Options{Token: token, Workers: func(context.Context) (any, error) {
		return []map[string]any{{"name": "w1"}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// call makes a raw request and returns the status and the error message.
func call(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e Error
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

func TestAPIErrors(t *testing.T) {
	srv, _ := start(t)
	bearer := "Bearer " + token
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		reason                         string
	}{
		{"no token", "GET", "/v1/jobs", "", "", 401, "bearer token"},
		{"wrong token", "GET", "/v1/jobs", "Bearer nope", "", 401, "bearer token"},
		{"token without Bearer", "GET", "/v1/jobs", token, "", 401, "bearer token"},
		{"no token on submit", "POST", "/v1/jobs", "", `{"inputs":["/a.mp4"]}`, 401, "bearer token"},
		{"not JSON", "POST", "/v1/jobs", bearer, `inputs=a`, 400, "body"},
		{"unknown field", "POST", "/v1/jobs", bearer, `{"inputs":["/a.mp4"],"treshold":0.5}`, 400, `unknown field "treshold"`},
		{"two values", "POST", "/v1/jobs", bearer, `{"inputs":["/a.mp4"]}{}`, 400, "more than one"},
		{"no inputs", "POST", "/v1/jobs", bearer, `{}`, 400, "inputs: at least one"},
		{"conf out of range", "POST", "/v1/jobs", bearer, `{"inputs":["/a.mp4"],"conf":2}`, 400, "conf: 2 is outside"},
		{"wrong type", "POST", "/v1/jobs", bearer, `{"inputs":"/a.mp4"}`, 400, "cannot unmarshal"},
		{"unknown job", "GET", "/v1/jobs/nope", bearer, "", 404, "job not found"},
		{"cancel unknown job", "DELETE", "/v1/jobs/nope", bearer, "", 404, "job not found"},
		{"bad job id", "GET", "/v1/jobs/..", bearer, "", 404, ""},
		{"method", "PUT", "/v1/jobs", bearer, "", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, reason := call(t, tc.method, srv.URL+tc.path, tc.auth, tc.body)
			if status != tc.status || !strings.Contains(reason, tc.reason) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tc.method, tc.path, status, reason, tc.status, tc.reason)
			}
		})
	}
}

func TestAPIJobLifecycle(t *testing.T) {
	_, cl := start(t)
	ctx := context.Background()
	spec := jobs.Spec{Inputs: []string{"/v/a.mp4", "/v/b.mp4"}, IdempotencyKey: "k1"}
	rec, created, err := cl.Submit(ctx, spec)
	if err != nil || !created || rec.ID == "" || len(rec.Videos) != 2 {
		t.Fatalf("submit: %+v created %v err %v", rec, created, err)
	}
	again, created, err := cl.Submit(ctx, spec)
	if err != nil || created || again.ID != rec.ID {
		t.Fatalf("idempotent resubmit: %s created %v err %v", again.ID, created, err)
	}
	list, err := cl.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != rec.ID || list[0].Videos != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	got, err := cl.Get(ctx, rec.ID)
	if err != nil || got.ID != rec.ID || got.State.Final() {
		t.Fatalf("get: %+v %v", got, err)
	}
	cancelled, err := cl.Cancel(ctx, rec.ID)
	if err != nil || cancelled.State != bus.JobCancelled {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	var se *StatusError
	if _, err := cl.Cancel(ctx, rec.ID); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("second cancel: %v, want 409", err)
	}
	var ws []map[string]any
	if err := cl.Workers(ctx, &ws); err != nil || len(ws) != 1 || ws[0]["name"] != "w1" {
		t.Fatalf("workers: %v %v", ws, err)
	}
}

func TestHandlerNeedsToken(t *testing.T) {
	if _, err := Handler(nil, Options{}); err == nil {
		t.Fatal("an API without a token started")
	}
}

// TestAPINeverEchoesCoordinatorFiles: a coordinator started with
// --local-inputs answers 400 to a manifest on its own host, reads nothing
// of it, and keeps no job.
func TestAPINeverEchoesCoordinatorFiles(t *testing.T) {
	srv, cl := start(t)
	conf := filepath.Join(t.TempDir(), "some.conf")
	if err := os.WriteFile(conf, []byte("/srv/line-one.mp4\npassword=hunter2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(jobs.Spec{Inputs: []string{"@" + conf}})
	if err != nil {
		t.Fatal(err)
	}
	status, reason := call(t, "POST", srv.URL+"/v1/jobs", "Bearer "+token, string(body))
	if status != http.StatusBadRequest || !strings.Contains(reason, "s3://") {
		t.Fatalf("submit: %d %q, want 400 saying manifests are s3:// objects", status, reason)
	}
	if strings.Contains(reason, "line-one") || strings.Contains(reason, "hunter2") {
		t.Fatalf("the 400 echoes the file: %q", reason)
	}
	if list, err := cl.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("jobs: %+v %v", list, err)
	}
}
