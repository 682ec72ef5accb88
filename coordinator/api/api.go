// Package api is the coordinator's HTTP/JSON job API: submit, list, inspect
// and cancel jobs, and list the workers, behind a bearer token.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// Options configure the API.
type Options struct {
	// Token is the bearer token every /v1 request must carry.
	Token string
	// Workers lists the worker pool for GET /v1/workers.
	Workers func(ctx context.Context) (any, error)
	Logger  *slog.Logger
}

// Handler serves /v1/jobs and /v1/workers.
func Handler(svc *jobs.Service, opts Options) (http.Handler, error) {
	if opts.Token == "" {
		return nil, errors.New("api: an empty token would let anyone in")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", h.submit)
	mux.HandleFunc("GET /v1/jobs", h.list)
	mux.HandleFunc("GET /v1/jobs/{id}", h.get)
	mux.HandleFunc("DELETE /v1/jobs/{id}", h.cancel)
	mux.HandleFunc("GET /v1/workers", h.workers)
	return h.authenticate(mux), nil
}

type handler struct {
	svc  *jobs.Service
	opts Options
}

// authenticate refuses requests without the bearer token, comparing in
// constant time.
func (h *handler) authenticate(next http.Handler) http.Handler {
	want := []byte("Bearer " + h.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vidpipe"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	var spec jobs.Spec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: body: %v", jobs.ErrBadSpec, err))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: body: more than one JSON value", jobs.ErrBadSpec))
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if spec.IdempotencyKey != "" && spec.IdempotencyKey != key {
			writeError(w, http.StatusBadRequest, fmt.Errorf("%w: the Idempotency-Key header and idempotency_key differ", jobs.ErrBadSpec))
			return
		}
		spec.IdempotencyKey = key
	}
	rec, created, err := h.svc.Submit(r.Context(), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+rec.ID)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, rec)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	list, err := h.svc.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []jobs.Brief{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": list})
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	rec, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	rec, err := h.svc.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *handler) workers(w http.ResponseWriter, r *http.Request) {
	if h.opts.Workers == nil {
		writeJSON(w, http.StatusOK, map[string]any{"workers": []any{}})
		return
	}
	list, err := h.opts.Workers(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"workers": list})
}

// fail maps the service's errors to statuses; anything unexpected is a 500
// that is logged with the request.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, jobs.ErrBadSpec):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, jobs.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, jobs.ErrExists), errors.Is(err, jobs.ErrFinished):
		writeError(w, http.StatusConflict, err)
	default:
		h.opts.Logger.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err)
	}
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, Error{Error: strings.TrimSpace(err.Error())})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
