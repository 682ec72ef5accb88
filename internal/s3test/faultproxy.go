package s3test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// FaultProxy is a reverse proxy in front of an S3 endpoint that can answer
// with injected errors, to show how clients retry and report.
type FaultProxy struct {
	URL string // use as the S3 endpoint

	srv      *httptest.Server
	mu       sync.Mutex
	failLeft int // requests still to fail; negative: all of them
	status   int
	match    func(*http.Request) bool // nil: every request
	requests atomic.Int64
	failures atomic.Int64
}

// NewFaultProxy proxies to target ("http://127.0.0.1:PORT"). Close it when
// done.
func NewFaultProxy(target string) *FaultProxy {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		panic(fmt.Sprintf("s3test: bad proxy target %q", target)) // a test bug, not input
	}
	p := &FaultProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			// SigV4 signs the Host header: keep the one the client signed.
			pr.Out.Host = pr.In.Host
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if status := p.take(r); status != 0 {
			p.failures.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			writeS3Error(w, r, status)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p
}

// FailNext makes the next n requests fail with status; n < 0 fails every
// request until the next call, n == 0 stops failing.
func (p *FaultProxy) FailNext(n, status int) { p.FailNextIf(n, status, nil) }

// FailNextIf is FailNext counting only requests for which match is true; the
// others pass. For example, failing UploadPart alone shows that a multipart
// upload is aborted.
func (p *FaultProxy) FailNextIf(n, status int, match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failLeft, p.status, p.match = n, status, match
}

func (p *FaultProxy) take(r *http.Request) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failLeft == 0 || (p.match != nil && !p.match(r)) {
		return 0
	}
	if p.failLeft > 0 {
		p.failLeft--
	}
	return p.status
}

// Requests counts the requests received, failed or passed on.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Failures counts the requests answered with an injected error.
func (p *FaultProxy) Failures() int64 { return p.failures.Load() }

// Close stops the proxy.
func (p *FaultProxy) Close() { p.srv.Close() }

// writeS3Error answers as S3 does, so the SDK parses a code and a message.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int) {
	code := map[int]string{
		http.StatusInternalServerError: "InternalError",
		http.StatusServiceUnavailable:  "ServiceUnavailable",
		http.StatusForbidden:           "AccessDenied",
		http.StatusNotFound:            "NoSuchKey",
	}[status]
	if code == "" {
		code = http.StatusText(status)
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by s3test.FaultProxy</Message></Error>`, code)
}
