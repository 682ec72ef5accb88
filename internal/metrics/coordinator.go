package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JobCounter reports how many jobs are in each state (queued, running,
// done...). It is called at scrape time with a context bounded by the
// coordinator's scrape timeout.
type JobCounter func(ctx context.Context) (map[string]int, error)

// Coordinator holds the coordinator's instruments. Its methods are safe on a
// nil *Coordinator.
type Coordinator struct {
	results prometheus.Counter
	fps     *prometheus.GaugeVec
}

// NewCoordinator registers the coordinator's instruments in reg:
//
//	vidpipe_coordinator_results_total            frame results consumed (duplicates dropped)
//	vidpipe_coordinator_jobs{state}              jobs per state, from jobs at scrape time
//	vidpipe_coordinator_frames_per_second{job}   a running job's recent rate, set with SetJobFPS
//
// jobs may be nil, leaving the jobs gauge out; each call is bounded by
// timeout, and a failing call drops the gauge from that scrape.
func NewCoordinator(reg prometheus.Registerer, jobs JobCounter, timeout time.Duration) (*Coordinator, error) {
	c := &Coordinator{
		results: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "coordinator", Name: "results_total",
			Help: "Frame results the coordinator kept (repeats of a frame are not counted).",
		}),
		fps: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "coordinator", Name: "frames_per_second",
			Help: "Frames per second analysed for a running job, over its recent window.",
		}, []string{"job"}),
	}
	cs := []prometheus.Collector{c.results, c.fps}
	if jobs != nil {
		cs = append(cs, &jobsCollector{
			jobs: jobs, timeout: timeout,
			desc: prometheus.NewDesc(Namespace+"_coordinator_jobs", "Jobs per state.", []string{"state"}, nil),
		})
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register coordinator metrics: %w", err)
		}
	}
	return c, nil
}

// AddResults counts n kept results.
func (c *Coordinator) AddResults(n int) {
	if c == nil {
		return
	}
	c.results.Add(float64(n))
}

// SetJobFPS sets a running job's rate.
func (c *Coordinator) SetJobFPS(job string, fps float64) {
	if c == nil {
		return
	}
	c.fps.WithLabelValues(job).Set(fps)
}

// ForgetJob removes a finished job's rate, so finished jobs do not pile up
// as series.
func (c *Coordinator) ForgetJob(job string) {
	if c == nil {
		return
	}
	c.fps.DeleteLabelValues(job)
}

type jobsCollector struct {
	jobs    JobCounter
	timeout time.Duration
	desc    *prometheus.Desc
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.jobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("count jobs: %w", err))
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
