package metrics

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/internal/metrics/metricstest"
	"github.com/vidpipe/vidpipe/internal/poll"
)

// TestNATSState scrapes the connection state of a real client while its
// server is up and after the server is gone.
func TestNATSState(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reg := NewRegistry()
	if err := RegisterNATS(reg, nc); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(Handler(reg, nil, nil))
	defer web.Close()
	if got, _ := metricstest.Value(metricstest.Scrape(t, web.URL+"/metrics"), "vidpipe_nats_connected", nil); got != 1 {
		t.Fatalf("connected = %v with the server up", got)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	poll.Until(t, 30*time.Second, "client sees the server gone", poll.True(func() bool { return !nc.IsConnected() }))
	if got, ok := metricstest.Value(metricstest.Scrape(t, web.URL+"/metrics"), "vidpipe_nats_connected", nil); !ok || got != 0 {
		t.Fatalf("connected = %v (present %v) with the server gone", got, ok)
	}
	if err := RegisterNATS(reg, nc); err == nil {
		t.Fatal("registering twice succeeded")
	}
}
