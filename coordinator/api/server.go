package api

import (
	"net/http"
	"time"
)

// Timeouts bound how long one client may hold a connection of the API, so
// that idle, slow or stalled clients cannot pin connections and goroutines.
// Every endpoint answers with one bounded JSON document (or a metrics page),
// none streams, so a write deadline is safe.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included.
	Read time.Duration
	// Write bounds the time from the end of the request headers to the end
	// of the response: a submission's manifest work included.
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next
	// request.
	Idle time.Duration
}

// DefaultTimeouts are the coordinator's.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 2 * time.Minute, Idle: 60 * time.Second}
}

// NewServer returns a server for h with the timeouts; zero fields take
// DefaultTimeouts' values, so no timeout is ever left off.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	def := DefaultTimeouts()
	for _, f := range []struct{ v, d *time.Duration }{
		{&t.ReadHeader, &def.ReadHeader}, {&t.Read, &def.Read}, {&t.Write, &def.Write}, {&t.Idle, &def.Idle},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
	}
}
