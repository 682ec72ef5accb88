package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// StatusError is a response other than 2xx.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Client calls the job API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the API at base (http://host:8080).
func NewClient(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api url %q: want http(s)://host[:port]", base)
	}
	return &Client{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// Submit posts a job spec; it returns the job and whether it is new.
func (c *Client) Submit(ctx context.Context, spec jobs.Spec) (*jobs.Record, bool, error) {
	var rec jobs.Record
	status, err := c.do(ctx, http.MethodPost, "/v1/jobs", spec, &rec)
	return &rec, status == http.StatusCreated, err
}

// List returns every job, newest first.
func (c *Client) List(ctx context.Context) ([]jobs.Brief, error) {
	var out struct {
		Jobs []jobs.Brief `json:"jobs"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs", nil, &out)
	return out.Jobs, err
}

// Get returns one job.
func (c *Client) Get(ctx context.Context, id string) (*jobs.Record, error) {
	var rec jobs.Record
	_, err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &rec)
	return &rec, err
}

// Cancel cancels one job.
func (c *Client) Cancel(ctx context.Context, id string) (*jobs.Record, error) {
	var rec jobs.Record
	_, err := c.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, &rec)
	return &rec, err
}

// Workers decodes GET /v1/workers into out (a pointer to a slice).
func (c *Client) Workers(ctx context.Context, out any) error {
	var body struct {
		Workers json.RawMessage `json:"workers"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/workers", nil, &body); err != nil {
		return err
	}
	return json.Unmarshal(body.Workers, out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return resp.StatusCode, &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return resp.StatusCode, nil
}
