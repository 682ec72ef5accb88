package workers

import (
	"fmt"
	"math"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/model/detect"
)

// thresholds are the NMS settings a frame's headers may override; the rest
// of the worker's NMSOptions (classes, agnostic, multi-label, candidates)
// apply to every frame.
type thresholds struct {
	conf   float32
	iou    float64
	maxDet int
}

func thresholdsOf(o detect.NMSOptions) thresholds {
	return thresholds{conf: o.Conf, iou: o.IoU, maxDet: o.MaxDet}
}

// frameThresholds returns base with the frame's threshold headers applied.
// A header that is present but does not hold a valid value is an error
// naming the header and the value: the frame is poison, since running it
// with other thresholds than its job asked for would be a silent lie.
func frameThresholds(h nats.Header, base thresholds) (thresholds, error) {
	t := base
	if vs, ok := h[bus.HeaderConf]; ok {
		v, err := headerFloat(bus.HeaderConf, vs, 32)
		if err != nil {
			return t, err
		}
		t.conf = float32(v)
	}
	if vs, ok := h[bus.HeaderIoU]; ok {
		v, err := headerFloat(bus.HeaderIoU, vs, 64)
		if err != nil {
			return t, err
		}
		t.iou = v
	}
	if vs, ok := h[bus.HeaderMaxDet]; ok {
		v, err := headerValue(bus.HeaderMaxDet, vs)
		if err != nil {
			return t, err
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 || n > bus.MaxDet {
			return t, fmt.Errorf("frame header %s %q: want a whole number in [1, %d]", bus.HeaderMaxDet, v, bus.MaxDet)
		}
		t.maxDet = int(n)
	}
	return t, nil
}

func headerFloat(name string, vs []string, bits int) (float64, error) {
	v, err := headerValue(name, vs)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(v, bits)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, fmt.Errorf("frame header %s %q: want a number in [0, 1]", name, v)
	}
	return f, nil
}

// headerValue returns a header's one value: a header given twice is as
// unclear as one that does not parse.
func headerValue(name string, vs []string) (string, error) {
	if len(vs) != 1 {
		return "", fmt.Errorf("frame header %s %q: given %d times, want once", name, vs, len(vs))
	}
	return vs[0], nil
}
