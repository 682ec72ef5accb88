package infer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// Session runs one model on one device. It owns one input buffer and one
// buffer per output, sized for MaxBatch and allocated on first use; each
// batch size gets its own ONNX Runtime I/O binding over prefixes of those
// buffers, so a steady-state Run allocates nothing.
//
// A Session is not safe for concurrent use: Input and Run of different
// goroutines would share the same buffers. Calls are serialised internally
// only so that Close cannot free buffers under a running Run.
type Session struct {
	mu       sync.Mutex
	name     string
	layout   *layout
	device   Device
	maxBatch int
	sess     *ort.DynamicAdvancedSession

	// Allocated on the first Input or Run, for the largest physical batch:
	// in, or in8 for a model that takes uint8 bytes.
	in   []float32
	in8  []byte
	outs [][]float32
	host hostMemory // where in, in8 and outs live
	// bound[p] runs physical batch size p (b, or the model's fixed batch).
	bound []*binding
	// views[b] is what Run(ctx, b) returns.
	views  [][]Output
	closed bool
}

// binding is an I/O binding for one physical batch size. The tensors are
// views of the Session's buffers, input first.
//
// Why bindings on one DynamicAdvancedSession: an AdvancedSession per batch
// size would also run without allocating, but each is a whole ONNX Runtime
// session (its own copy of the weights, graph optimisation at load, its own
// thread pool); DynamicAdvancedSession.Run shares one session but allocates
// four small slices per call. A binding is a few small C objects, and
// RunWithBinding allocates nothing. Its one cost: onnxruntime_go passes no
// RunOptions to it, so a run cannot be terminated once started.
type binding struct {
	io      *ort.IoBinding
	tensors []ort.Value
}

// OpenFile reads the model at path and opens it as Open does.
func OpenFile(ctx context.Context, path string, opts Options) (*Session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The path error would repeat the path; keep only its cause.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	return Open(ctx, b, path, opts)
}

// Open checks that model (an ONNX file's bytes, named name in errors)
// has one float input [N,3,H,W] (or letterboxed bytes, UINT8 [N,H,W,3])
// and float outputs whose first dimension is
// the batch, then creates an ONNX Runtime session for it. FLOAT16 input and
// outputs are converted at the session boundary: callers see float32. N may
// be symbolic (any batch up to opts.MaxBatch) or fixed (smaller batches are
// padded with zeros); symbolic H and W run at opts.ImgSize. ONNX Runtime is
// initialised on first use from opts.LibraryPath.
func Open(ctx context.Context, model []byte, name string, opts Options) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open model %s: %w", name, err)
	}
	m, err := onnx.Decode(model)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w: %w", name, ErrBadModel, err)
	}
	if opts.ImgSize < 0 {
		return nil, fmt.Errorf("open model %s: %w: input size %d is negative", name, ErrBadOptions, opts.ImgSize)
	}
	l, err := inspect(m, name, opts.ImgSize)
	if err != nil {
		return nil, err
	}
	if castBoundary(m, l) {
		model = onnx.Encode(m)
	}
	cfg, err := opts.resolve(l)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", name, err)
	}
	if err := Init(cfg.library); err != nil {
		return nil, fmt.Errorf("open model %s: %w", name, err)
	}
	so, err := newSessionOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", name, err)
	}
	defer so.Destroy()

	outNames := make([]string, len(l.outputs))
	for i, o := range l.outputs {
		outNames[i] = o.bind
	}
	// Session creation cannot be interrupted; check once more before it.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open model %s: %w", name, err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{l.bindInput}, outNames, so)
	if err != nil {
		if cfg.device.Kind == CUDA {
			// On a GPU the cause may as well be the device as the model.
			return nil, fmt.Errorf("open model %s on %s: %w", name, cfg.device, err)
		}
		return nil, fmt.Errorf("open model %s: %w: %w", name, ErrBadModel, err)
	}
	if err := probeOutputs(sess, l, cfg.maxBatch); err != nil {
		sess.Destroy()
		return nil, fmt.Errorf("open model %s: %w: %w", name, ErrBadModel, err)
	}
	s := &Session{
		name:     name,
		layout:   l,
		device:   cfg.device,
		maxBatch: cfg.maxBatch,
		sess:     sess,
		bound:    make([]*binding, max(cfg.maxBatch, l.fixedBatch)+1),
		views:    make([][]Output, cfg.maxBatch+1),
		host:     hostMemory{pinned: cfg.device.Kind == CUDA && !opts.Pageable && cudartOnce()},
	}
	slog.Debug("onnx session open", "model", name, "input", l.input, "height", l.h, "width", l.w, "float16", l.bindInput != l.input, "uint8", l.u8,
		"fixed_batch", l.fixedBatch, "max_batch", cfg.maxBatch, "device", cfg.device.String(), "threads", cfg.threads)
	return s, nil
}

// Pinned reports whether the session's input and output buffers are
// pinned host memory: on CUDA, unless Options.Pageable, where the CUDA
// runtime allows it.
func (s *Session) Pinned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host.pinned
}

// InputName is the name of the model's image input.
func (s *Session) InputName() string { return s.layout.input }

// InputSize is the height and width of the model's input images.
func (s *Session) InputSize() (h, w int) { return s.layout.h, s.layout.w }

// OutputNames are the model's outputs, in the order Run returns them.
func (s *Session) OutputNames() []string {
	names := make([]string, len(s.layout.outputs))
	for i, o := range s.layout.outputs {
		names[i] = o.name
	}
	return names
}

// OutputDims are the shapes of the outputs, in OutputNames order, without
// the batch dimension: declared in the model or, where the model names them
// symbolically, learned by a probe run when the session opened.
func (s *Session) OutputDims() [][]int64 {
	dims := make([][]int64, len(s.layout.outputs))
	for i, o := range s.layout.outputs {
		dims[i] = slices.Clone(o.dims[1:])
	}
	return dims
}

// MaxBatch is the largest batch Input and Run accept.
func (s *Session) MaxBatch() int { return s.maxBatch }

// Device is the device the session runs on.
func (s *Session) Device() Device { return s.device }

// Input returns the input buffer for a batch of the given size, batch*3*H*W
// floats laid out NCHW, for the caller to fill before Run. The same memory
// is returned every time, for every batch size. A model that takes bytes
// (Bytes) has no float input: use InputBytes.
func (s *Session) Input(batch int) ([]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.layout.u8 {
		return nil, fmt.Errorf("run model %s: %w: input %q is UINT8 [N,H,W,3]: fill InputBytes", s.name, ErrBadInput, s.layout.input)
	}
	if err := s.prepare(batch); err != nil {
		return nil, err
	}
	return s.in[:batch*s.layout.inputPerItem()], nil
}

// Bytes reports whether the model takes letterboxed uint8 RGB [N,H,W,3]
// (InputBytes) rather than floats (Input).
func (s *Session) Bytes() bool { return s.layout.u8 }

// InputBytes returns the input buffer of a model that takes bytes, for a
// batch of the given size: batch*H*W*3 bytes, packed RGB as frames travel.
func (s *Session) InputBytes(batch int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.layout.u8 {
		return nil, fmt.Errorf("run model %s: %w: input %q is float [N,3,H,W]: fill Input", s.name, ErrBadInput, s.layout.input)
	}
	if err := s.prepare(batch); err != nil {
		return nil, err
	}
	return s.in8[:batch*s.layout.inputPerItem()], nil
}

// Run runs the model on the first batch images of the input buffer and
// returns the outputs, in OutputNames order, as views that stay valid until
// the next Run or Close. ctx is checked before the run starts: ONNX Runtime
// cannot interrupt a bound run once it has started.
func (s *Session) Run(ctx context.Context, batch int) ([]Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.prepare(batch); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run model %s: %w", s.name, err)
	}
	p := s.physical(batch)
	if p > batch {
		// Padding of a fixed-batch model: zero it so stale images cost no
		// surprises (NaNs, say) and results do not depend on history.
		per := s.layout.inputPerItem()
		if s.layout.u8 {
			clear(s.in8[batch*per : p*per])
		} else {
			clear(s.in[batch*per : p*per])
		}
	}
	b := s.bound[p]
	if s.device.Kind != CPU {
		// ONNX Runtime copies a host input to the device when it is bound,
		// not when the model runs: bind it again, so the copy holds the
		// images written since. (On the CPU the bound tensor is read in
		// place.) Found on an H200, where every batch ran on stale input.
		if err := b.io.BindInput(s.layout.bindInput, b.tensors[0]); err != nil {
			return nil, fmt.Errorf("run model %s on %s: bind input: %w", s.name, s.device, err)
		}
	}
	if err := s.sess.RunWithBinding(b.io); err != nil {
		return nil, fmt.Errorf("run model %s on %s: %w", s.name, s.device, err)
	}
	return s.views[batch], nil
}

// physical is the batch size the model actually runs for a batch of b.
func (s *Session) physical(b int) int {
	if s.layout.fixedBatch > 0 {
		return s.layout.fixedBatch
	}
	return b
}

// prepare checks batch and makes the buffers, binding and views for it on
// first use. The caller holds s.mu.
func (s *Session) prepare(batch int) error {
	if s.closed {
		return fmt.Errorf("run model %s: %w", s.name, ErrClosed)
	}
	if batch < 1 || batch > s.maxBatch {
		return fmt.Errorf("run model %s: %w: batch %d, want 1..%d", s.name, ErrBatch, batch, s.maxBatch)
	}
	if s.views[batch] != nil {
		return nil
	}
	l := s.layout
	if s.outs == nil {
		n := max(s.maxBatch, l.fixedBatch)
		if l.u8 {
			s.in8 = s.host.bytes(n * l.inputPerItem())
		} else {
			s.in = s.host.floats(n * l.inputPerItem())
		}
		s.outs = make([][]float32, len(l.outputs))
		for i, o := range l.outputs {
			s.outs[i] = s.host.floats(n * o.perItem)
		}
	}
	p := s.physical(batch)
	if s.bound[p] == nil {
		b, err := s.bind(p)
		if err != nil {
			return fmt.Errorf("run model %s: bind batch %d: %w", s.name, p, err)
		}
		s.bound[p] = b
	}
	views := make([]Output, len(l.outputs))
	for i, o := range l.outputs {
		shape := append([]int64(nil), o.dims...)
		shape[0] = int64(batch)
		views[i] = Output{Name: o.name, Shape: shape, Data: s.outs[i][:batch*o.perItem]}
	}
	s.views[batch] = views
	return nil
}

// bind creates the I/O binding for physical batch size p over prefixes of
// the session's buffers.
func (s *Session) bind(p int) (_ *binding, err error) {
	l := s.layout
	b := &binding{}
	defer func() {
		if err != nil {
			b.destroy()
		}
	}()
	if b.io, err = s.sess.CreateIoBinding(); err != nil {
		return nil, err
	}
	var in ort.Value
	if l.u8 {
		in, err = ort.NewTensor(ort.NewShape(int64(p), int64(l.h), int64(l.w), 3), s.in8[:p*l.inputPerItem()])
	} else {
		in, err = ort.NewTensor(ort.NewShape(int64(p), 3, int64(l.h), int64(l.w)), s.in[:p*l.inputPerItem()])
	}
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", l.input, err)
	}
	b.tensors = append(b.tensors, in)
	if err := b.io.BindInput(l.bindInput, in); err != nil {
		return nil, fmt.Errorf("input %q: %w", l.input, err)
	}
	for i, o := range l.outputs {
		shape := ort.NewShape(o.dims...)
		shape[0] = int64(p)
		t, err := ort.NewTensor(shape, s.outs[i][:p*o.perItem])
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.name, err)
		}
		b.tensors = append(b.tensors, t)
		if err := b.io.BindOutput(o.bind, t); err != nil {
			return nil, fmt.Errorf("output %q: %w", o.name, err)
		}
	}
	return b, nil
}

func (b *binding) destroy() error {
	var errs []error
	if b.io != nil {
		errs = append(errs, b.io.Destroy())
	}
	for _, t := range b.tensors {
		errs = append(errs, t.Destroy())
	}
	return errors.Join(errs...)
}

// Close frees the session and its buffers. Outputs returned by Run are
// invalid afterwards. Closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, b := range s.bound {
		if b != nil {
			errs = append(errs, b.destroy())
		}
	}
	errs = append(errs, s.sess.Destroy())
	s.bound, s.views, s.in, s.in8, s.outs = nil, nil, nil, nil, nil
	errs = append(errs, s.host.free())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close model %s: %w", s.name, err)
	}
	return nil
}

// probeOutputs learns the shapes of outputs with symbolic dims after the
// batch by running one all-zero image: with a static input size they are
// fixed, they are just not written down in the file.
func probeOutputs(sess *ort.DynamicAdvancedSession, l *layout, maxBatch int) error {
	if !slices.ContainsFunc(l.outputs, func(o outputLayout) bool { return o.symbolic }) {
		return nil
	}
	nb := int64(max(1, l.fixedBatch))
	var in ort.Value
	var err error
	if l.u8 {
		in, err = ort.NewTensor(ort.NewShape(nb, int64(l.h), int64(l.w), 3), make([]byte, int(nb)*l.inputPerItem()))
	} else {
		in, err = ort.NewTensor(ort.NewShape(nb, 3, int64(l.h), int64(l.w)), make([]float32, int(nb)*l.inputPerItem()))
	}
	if err != nil {
		return err
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(l.outputs))
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	if err := sess.Run([]ort.Value{in}, outs); err != nil {
		return fmt.Errorf("probe run for output shapes: %w", err)
	}
	for i := range l.outputs {
		o := &l.outputs[i]
		if !o.symbolic {
			continue
		}
		shape := outs[i].GetShape()
		if len(shape) != len(o.dims) {
			return fmt.Errorf("output %q has rank %d, declared %d", o.name, len(shape), len(o.dims))
		}
		o.perItem = 1
		for j, d := range shape[1:] {
			if d <= 0 || int64(o.perItem) > maxElements/d {
				return fmt.Errorf("output %q has shape %v", o.name, shape)
			}
			o.perItem *= int(d)
			o.dims[j+1] = d
		}
		if maxBatch > maxElements/o.perItem {
			return fmt.Errorf("%w: max batch %d is over %d elements for output %q", ErrBadOptions, maxBatch, maxElements, o.name)
		}
		o.symbolic = false
	}
	return nil
}
