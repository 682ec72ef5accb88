package api

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// serve runs NewServer(h, t) on a loopback port and returns its address.
func serve(t *testing.T, h http.Handler, to Timeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, to)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// guard bounds a read that the server is expected to end; it is a guard
// against a hang, far above the timeouts under test, not a measurement.
const guard = 20 * time.Second

// closedByServer reads from conn until the server closes it, and fails the
// test if the guard deadline comes first.
func closedByServer(t *testing.T, conn net.Conn, r io.Reader, what string) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(guard)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the server still holds the connection after %s", what, guard)
	}
	if err != nil {
		t.Fatalf("%s: %v, want the server to close the connection", what, err)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestServerClosesIdleKeepAlive: a keep-alive connection left idle after a
// request is closed by the server once the idle timeout passes.
func TestServerClosesIdleKeepAlive(t *testing.T) {
	addr := serve(t, newHandler(t), Timeouts{Idle: 200 * time.Millisecond})
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "GET /v1/jobs HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close || !strings.Contains(string(body), `"jobs"`) {
		t.Fatalf("first request: %d close=%v %q %v; want a kept-alive 200", resp.StatusCode, resp.Close, body, err)
	}
	closedByServer(t, conn, br, "idle keep-alive connection")
}

// TestServerClosesSlowHeaders: a client that never finishes its headers
// (slowloris) is cut off after the header timeout.
func TestServerClosesSlowHeaders(t *testing.T) {
	addr := serve(t, newHandler(t), Timeouts{ReadHeader: 200 * time.Millisecond})
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "GET /v1/jobs HTTP/1.1\r\nHost: api\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, conn, conn, "unfinished headers")
}

// TestServerClosesSlowBody: a submission whose body never arrives in full
// is cut off after the read timeout, with a 400 if the handler saw it.
func TestServerClosesSlowBody(t *testing.T) {
	addr := serve(t, newHandler(t), Timeouts{Read: 300 * time.Millisecond})
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "POST /v1/jobs HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer "+token+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inputs\": ["); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if err := conn.SetReadDeadline(time.Now().Add(guard)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("unfinished body: no answer and no close after %s", guard)
	case err == nil:
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("unfinished body: status %d, want 400", resp.StatusCode)
		}
	}
	closedByServer(t, conn, br, "unfinished body")
}

func TestNewServerDefaults(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), Timeouts{Idle: time.Second})
	def := DefaultTimeouts()
	if srv.ReadHeaderTimeout != def.ReadHeader || srv.ReadTimeout != def.Read || srv.WriteTimeout != def.Write || srv.IdleTimeout != time.Second {
		t.Fatalf("timeouts %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	for _, d := range []time.Duration{def.ReadHeader, def.Read, def.Write, def.Idle} {
		if d <= 0 {
			t.Fatalf("a default timeout is off: %+v", def)
		}
	}
}
