package metrics

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterNATS exposes the state of a process's NATS connection, read at
// scrape time:
//
//	vidpipe_nats_connected         1 while connected, 0 while reconnecting
//	vidpipe_nats_reconnects_total  reconnections since the process started
func RegisterNATS(reg prometheus.Registerer, nc *nats.Conn) error {
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "nats", Name: "connected",
		Help: "1 while the NATS connection is up, 0 while it reconnects.",
	}, func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	})
	reconnects := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "nats", Name: "reconnects_total",
		Help: "Reconnections to NATS since the process started.",
	}, func() float64 { return float64(nc.Stats().Reconnects) })
	for _, c := range []prometheus.Collector{connected, reconnects} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register nats metrics: %w", err)
		}
	}
	return nil
}
