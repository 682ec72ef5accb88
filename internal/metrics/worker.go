package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Worker holds one detector worker's instruments, labelled {worker=name}.
// Its methods are safe on a nil *Worker, so a worker without metrics needs
// no checks.
type Worker struct {
	frames, failed prometheus.Counter
	saturated      prometheus.Counter
	inference      prometheus.Observer
	batch          prometheus.Observer
}

// NewWorker registers the instruments of the worker called name in reg:
//
//	vidpipe_worker_frames_total{worker}         results published (failed ones included)
//	vidpipe_worker_failed_frames_total{worker}  error results published (poison frames)
//	vidpipe_worker_inference_seconds{worker}    model run time per batch (histogram)
//	vidpipe_worker_batch_size{worker}           frames per model run (histogram)
//	vidpipe_worker_saturated_frames_total{worker}  frames whose every candidate row passed the threshold
//
// Several workers of one process register in the same registry under their
// own names; registering one name twice is an error.
func NewWorker(reg prometheus.Registerer, name string) (*Worker, error) {
	labels := prometheus.Labels{"worker": name}
	frames := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "worker", Name: "frames_total", ConstLabels: labels,
		Help: "Frame results published by the worker, error results included.",
	})
	failed := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "worker", Name: "failed_frames_total", ConstLabels: labels,
		Help: "Error results published by the worker for frames that could not be analysed.",
	})
	inference := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "worker", Name: "inference_seconds", ConstLabels: labels,
		Help:    "Model run time per batch.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 14), // 2 ms to 16 s
	})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "worker", Name: "batch_size", ConstLabels: labels,
		Help:    "Frames per model run.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 8), // 1 to 128
	})
	saturated := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "worker", Name: "saturated_frames_total", ConstLabels: labels,
		Help: "Frames whose every device-selected candidate row passed the confidence threshold: some detections may be missing; raise --candidates.",
	})
	for _, c := range []prometheus.Collector{frames, failed, inference, batch, saturated} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register worker %s metrics: %w", name, err)
		}
	}
	return &Worker{frames: frames, failed: failed, saturated: saturated, inference: inference, batch: batch}, nil
}

// Published counts one published result; failed marks an error result.
func (w *Worker) Published(failed bool) {
	if w == nil {
		return
	}
	w.frames.Inc()
	if failed {
		w.failed.Inc()
	}
}

// Saturated counts a frame whose candidate rows all passed the threshold.
func (w *Worker) Saturated() {
	if w == nil {
		return
	}
	w.saturated.Inc()
}

// Batch records one model run over size frames that took d.
func (w *Worker) Batch(size int, d time.Duration) {
	if w == nil {
		return
	}
	w.batch.Observe(float64(size))
	w.inference.Observe(d.Seconds())
}

// ConsumerInfo is what the pending gauge needs of a consumer;
// jetstream.Consumer has it.
type ConsumerInfo interface {
	Info(ctx context.Context) (*jetstream.ConsumerInfo, error)
}

// RegisterPending registers vidpipe_frames_pending: the frames waiting for a
// worker (the consumer's NumPending) plus those handed out and not yet acked
// (NumAckPending), the lag KEDA scales on; and vidpipe_frames_ack_pending,
// the second part alone, which shows MaxAckPending filling up. They are read
// from the consumer at scrape time, each read bounded by timeout, so they are
// never stale; a failed read drops them from that scrape and logs the error.
// Register them once per process.
func RegisterPending(reg prometheus.Registerer, cons ConsumerInfo, timeout time.Duration) error {
	c := &pendingCollector{
		cons:    cons,
		timeout: timeout,
		desc: prometheus.NewDesc(Namespace+"_frames_pending",
			"Frames waiting for a worker or delivered and not yet acked (consumer NumPending + NumAckPending).", nil, nil),
		ackDesc: prometheus.NewDesc(Namespace+"_frames_ack_pending",
			"Frames delivered to workers and not yet acked (consumer NumAckPending, bounded by MaxAckPending).", nil, nil),
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("register frames pending metric: %w", err)
	}
	return nil
}

type pendingCollector struct {
	cons          ConsumerInfo
	timeout       time.Duration
	desc, ackDesc *prometheus.Desc
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.ackDesc }

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	info, err := c.cons.Info(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("read consumer info: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(info.NumPending)+float64(info.NumAckPending))
	ch <- prometheus.MustNewConstMetric(c.ackDesc, prometheus.GaugeValue, float64(info.NumAckPending))
}
