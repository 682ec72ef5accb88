package infer

import (
	"fmt"
	"runtime"

	ort "github.com/yalue/onnxruntime_go"
)

// config is Options resolved against a model.
type config struct {
	threads  int
	device   Device
	maxBatch int
	library  string
	fp32     bool
}

// resolve fills in defaults and checks o against the model layout l.
func (o Options) resolve(l *layout) (config, error) {
	c := config{threads: o.Threads, maxBatch: o.MaxBatch, library: o.LibraryPath, fp32: o.FP32}
	var err error
	if c.device, err = ParseDevice(o.Device); err != nil {
		return config{}, err
	}
	if c.threads < 0 {
		return config{}, fmt.Errorf("%w: threads %d is negative", ErrBadOptions, c.threads)
	}
	if c.threads == 0 {
		c.threads = runtime.NumCPU()
	}
	if c.library == "" {
		c.library = LibraryPath()
	}
	switch {
	case c.maxBatch < 0:
		return config{}, fmt.Errorf("%w: max batch %d is negative", ErrBadOptions, c.maxBatch)
	case c.maxBatch == 0 && l.fixedBatch > 0:
		c.maxBatch = l.fixedBatch
	case c.maxBatch == 0:
		c.maxBatch = 1
	case l.fixedBatch > 0 && c.maxBatch > l.fixedBatch:
		// The model cannot take more; smaller batches are padded up to it.
		c.maxBatch = l.fixedBatch
	}
	if c.maxBatch > maxElements/l.inputPerItem() {
		return config{}, fmt.Errorf("%w: max batch %d of %dx%d images is over %d input elements",
			ErrBadOptions, c.maxBatch, l.h, l.w, maxElements)
	}
	for _, out := range l.outputs {
		if out.perItem > 0 && c.maxBatch > maxElements/out.perItem {
			return config{}, fmt.Errorf("%w: max batch %d is over %d elements for output %q",
				ErrBadOptions, c.maxBatch, maxElements, out.name)
		}
	}
	return c, nil
}

// newSessionOptions turns c into ONNX Runtime session options. The caller
// destroys them once the session is created.
func newSessionOptions(c config) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create session options: %w", err)
	}
	err = so.SetIntraOpNumThreads(c.threads)
	// Inter-op threads only serve parallel execution mode; YOLO-style graphs
	// are chains that gain nothing from it, so keep the default sequential
	// mode and no extra pool.
	if err == nil {
		err = so.SetInterOpNumThreads(1)
	}
	if err == nil {
		err = so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll)
	}
	if err != nil {
		so.Destroy()
		return nil, fmt.Errorf("set session options: %w", err)
	}
	if c.device.Kind == CUDA {
		if err := appendCUDA(so, c.device, c.fp32); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}
