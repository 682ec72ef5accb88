// Package infer runs image models ([N,3,H,W] float input, or letterboxed
// uint8 RGB [N,H,W,3]) on ONNX Runtime,
// batch by batch, with input and output buffers allocated once per session.
package infer

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (and the
// underlying cause) with the model or library path at fault.
var (
	// ErrNoLibrary means the ONNX Runtime shared library is missing or cannot be loaded.
	ErrNoLibrary = errors.New("onnx runtime library unavailable")
	// ErrBadModel means the bytes are not an ONNX model this package can run:
	// not ONNX at all, no graph, unsupported outputs, or rejected by ONNX Runtime.
	ErrBadModel = errors.New("unsupported model")
	// ErrBadInput means the model's input is not one FLOAT or FLOAT16
	// tensor [N,3,H,W] or UINT8 [N,H,W,3] with static H and W, or symbolic
	// ones and an ImgSize; or that the caller filled the other kind.
	ErrBadInput = errors.New("unsupported model input")
	// ErrBadDevice means a device string is neither "cpu", "cuda" nor "cuda:N".
	ErrBadDevice = errors.New("bad device")
	// ErrNoCUDA means the CUDA execution provider cannot be used with the
	// loaded ONNX Runtime build.
	ErrNoCUDA = errors.New("cuda execution provider unavailable")
	// ErrBadOptions means an Options field is out of range.
	ErrBadOptions = errors.New("bad options")
	// ErrBatch means a batch size outside 1..MaxBatch.
	ErrBatch = errors.New("batch size out of range")
	// ErrClosed means the session was closed.
	ErrClosed = errors.New("session closed")
)

// Options configure a Session. The zero value runs on the CPU with one
// intra-op thread per core and a batch of one (or the model's fixed batch).
type Options struct {
	// Threads is the number of intra-op threads; 0 means runtime.NumCPU().
	Threads int
	// Device is "cpu" (the default when empty), "cuda" or "cuda:N".
	Device string
	// MaxBatch is the largest batch Run accepts. 0 means 1 for a model with
	// a dynamic batch dimension and the model's batch for a fixed one; a value
	// above a fixed batch is capped to it.
	MaxBatch int
	// LibraryPath is the ONNX Runtime shared library; empty means LibraryPath().
	LibraryPath string
	// ImgSize is the height and width a model with a symbolic input height
	// or width (a dynamic export) runs at; 0 refuses such models. A model
	// with a static input size ignores it.
	ImgSize int
	// FP32 makes CUDA compute convolutions and matrix products in full
	// float32. ONNX Runtime's CUDA provider uses TF32 tensor cores by
	// default: faster, with a 10-bit mantissa per product.
	FP32 bool
	// Pageable keeps a CUDA session's input and output buffers in Go
	// memory instead of pinned host memory (see Session.Pinned), to
	// measure what pinning gains.
	Pageable bool
}

// Output is one model output of one Run. Shape and Data are views into
// buffers the Session reuses: they are valid until the next Run or Close and
// must not be modified.
type Output struct {
	Name  string
	Shape []int64
	Data  []float32
}
