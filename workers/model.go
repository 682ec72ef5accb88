package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/half"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/u8input"
	"github.com/vidpipe/vidpipe/model/yolo"
)

// Model is a detector read and checked once per process: every session and
// every job record of the process names the same bytes.
type Model struct {
	Path   string
	SHA256 string
	// Size is the square input size the model runs at.
	Size  int
	Names []string
	// Layout is the output layout decided when the model loaded.
	Layout *layout.Layout
	bytes  []byte
}

// ReadFunc reads a model file or object by path.
type ReadFunc func(ctx context.Context, path string) ([]byte, error)

// LoadModel reads the model at path with read (local files when nil), or
// builds and caches the built-in model at imgsz when path is empty, and
// checks its layout, so a model this process cannot run is refused before
// any job starts or frame is decoded.
func LoadModel(ctx context.Context, path string, imgsz int, read ReadFunc, logger *slog.Logger) (*Model, error) {
	if path == "" {
		var err error
		if path, err = builtin.Path(imgsz); err != nil {
			return nil, err
		}
		logger.Info("using the built-in model (distilled on the sample videos: people and cars in street scenes; bring your own with --model for real work)", "path", path)
	}
	var (
		b   []byte
		err error
	)
	if read != nil {
		b, err = read(ctx, path)
	} else if b, err = os.ReadFile(path); err != nil {
		err = fmt.Errorf("read model: %w", err)
	}
	if err != nil {
		return nil, err
	}
	lay, err := layout.Check(ctx, b, path, infer.Options{ImgSize: imgsz})
	if err != nil {
		return nil, err
	}
	for _, n := range lay.Notes {
		logger.Warn(n, "model", path)
	}
	logger.Info("model layout", "model", path, "layout", lay.String())
	sum := sha256.Sum256(b)
	return &Model{Path: path, SHA256: hex.EncodeToString(sum[:]), Size: lay.Size, Names: lay.Names, Layout: lay, bytes: b}, nil
}

// DefaultCandidates is SessionOptions.Candidates -1 on a GPU: 0.7 MB per 640
// image to copy back instead of 8.6 MB, far more rows than pass a usual
// threshold.
const DefaultCandidates = 2000

// SessionOptions say how many model sessions a process runs and how.
type SessionOptions struct {
	Sessions int
	// Threads per session; 0 divides the cores among the sessions.
	Threads int
	// Batch is the largest batch; a model exported with a fixed batch caps it.
	Batch  int
	Device string
	FP32   bool
	// Candidates is how many rows of output0 per image the model returns,
	// those of highest objectness: -1 picks DefaultCandidates on CUDA and
	// every row on the CPU; 0 is every row.
	Candidates int
	// Half runs the model in float16 (half.Mixed: float32 I/O and Detect
	// decode), for GPUs; a model that is float16 already is left alone.
	Half bool
	// Input is the input form the sessions feed: InputFloat, InputU8, or
	// InputAuto (also ""): uint8 on CUDA, where the copy to the device is the
	// cost, and the model's own form on the CPU. A model that takes uint8
	// already keeps it.
	Input string
}

// Input forms of SessionOptions.Input.
const (
	InputAuto  = "auto"
	InputFloat = "float"
	InputU8    = "u8"
)

// Sessions are the model sessions of one process, one per worker.
type Sessions struct {
	List []*infer.Session
	// Threads, Batch and Candidates are the values in effect.
	Threads, Batch, Candidates int
	// Layout is the sessions' output layout.
	Layout *layout.Layout
	model  *Model
}

// OpenSessions opens o.Sessions ONNX Runtime sessions of m. The model's bytes
// are released afterwards: ONNX Runtime holds its own copy.
func OpenSessions(ctx context.Context, m *Model, o SessionOptions, logger *slog.Logger) (*Sessions, error) {
	if o.Sessions < 1 {
		return nil, fmt.Errorf("open sessions of %s: %d sessions, want at least 1", m.Path, o.Sessions)
	}
	if m.bytes == nil {
		return nil, fmt.Errorf("open sessions of %s: its bytes were released by an earlier OpenSessions", m.Path)
	}
	s := &Sessions{Threads: o.Threads, Batch: o.Batch, Candidates: o.Candidates, model: m}
	if s.Threads == 0 {
		s.Threads = max(1, runtime.NumCPU()/o.Sessions)
	}
	if s.Candidates < 0 {
		s.Candidates = 0
		if d, err := infer.ParseDevice(o.Device); err == nil && d.Kind == infer.CUDA {
			s.Candidates = DefaultCandidates
		}
	}
	b, err := convert(m, o)
	if err != nil {
		return nil, err
	}
	if s.Candidates > 0 && m.Layout.Kind != layout.YOLOv5 {
		// Selecting rows by objectness means nothing in another layout.
		logger.Info("the model returns all its rows", "model", m.Path, "reason", "candidates need YOLOv5 output0, the model has "+m.Layout.Kind.String())
		s.Candidates = 0
	}
	if s.Candidates > 0 {
		sel, err := yolo.WithCandidates(b, s.Candidates)
		switch {
		case errors.Is(err, yolo.ErrNoCandidates):
			logger.Info("the model returns all its rows", "model", m.Path, "reason", err)
			s.Candidates = 0
		case err != nil:
			return nil, fmt.Errorf("model %s: %w", m.Path, err)
		default:
			b = sel
			logger.Info("the model returns its rows of highest objectness only", "model", m.Path, "candidates", s.Candidates)
		}
	}
	for range o.Sessions {
		sess, lay, err := layout.Open(ctx, b, m.Path, infer.Options{Threads: s.Threads, Device: o.Device, MaxBatch: o.Batch, FP32: o.FP32, ImgSize: m.Size})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.List, s.Layout = append(s.List, sess), lay
	}
	if mb := s.List[0].MaxBatch(); s.Batch > mb {
		// Exports with a fixed batch (ultralytics' default is 1) cap it.
		logger.Info("model has a fixed batch size; batching less", "model", m.Path, "batch", mb)
		s.Batch = mb
	}
	m.bytes = nil
	return s, nil
}

// convert applies o's precision and input form to m's bytes, as `vidpipe
// model half` and `vidpipe model u8` would on disk.
func convert(m *Model, o SessionOptions) ([]byte, error) {
	d, err := infer.ParseDevice(o.Device)
	if err != nil {
		return nil, err
	}
	var u8 bool
	switch o.Input {
	case "", InputAuto:
		u8 = d.Kind == infer.CUDA
	case InputU8:
		u8 = true
	case InputFloat:
		if m.Layout.Bytes {
			return nil, fmt.Errorf("open sessions of %s: the model takes uint8 input; float input needs a float model", m.Path)
		}
	default:
		return nil, fmt.Errorf("open sessions of %s: input %q, want %s or %s", m.Path, o.Input, InputFloat, InputU8)
	}
	u8 = u8 && !m.Layout.Bytes // a uint8 model is one already
	toHalf := o.Half && !m.Layout.Float16
	if !u8 && !toHalf {
		return m.bytes, nil
	}
	g, err := onnx.Decode(m.bytes)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Path, err)
	}
	if toHalf {
		if _, err := half.Mixed(g); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Path, err)
		}
	}
	if u8 {
		if err := u8input.Convert(g); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Path, err)
		}
	}
	return onnx.Encode(g), nil
}

// Options fills the model's part of a worker's options: batch, class
// names, layout and candidates.
func (s *Sessions) Options(o Options) Options {
	o.Batch, o.Names, o.Layout, o.Candidates = s.Batch, s.model.Names, s.Layout, s.Candidates
	return o
}

// Close closes every session.
func (s *Sessions) Close() {
	for _, sess := range s.List {
		sess.Close()
	}
}
