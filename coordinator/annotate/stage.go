package annotate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/storage"
)

// Stage is a process's annotation stage: every job's coordinator calls its
// Annotate, and all of them share its Limiter.
type Stage struct {
	open ingest.Opener
	opts Options
	log  *slog.Logger
}

// NewStage returns the stage; open resolves s3:// sources, opts.Limiter is
// the process-wide budget (nil: NewLimiter(0, 1)).
func NewStage(open ingest.Opener, opts Options, log *slog.Logger) *Stage {
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(0, 1)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{open: open, opts: opts, log: log}
}

// Limiter is the stage's budget.
func (s *Stage) Limiter() *Limiter { return s.opts.Limiter }

// Annotate re-decodes source, streaming it from its bucket when remote, and
// writes dst, its annotated copy, with preview.png beside it, drawing the
// detections boxes returns for each frame; it has the signature of
// coordinator.Annotator.
func (s *Stage) Annotate(ctx context.Context, source, dst string, boxes func(int) ([]bus.Detection, bool)) error {
	var src io.ReadSeeker
	if ingest.IsRemote(source) {
		b, key, err := s.open(ctx, source)
		if err != nil {
			return err
		}
		r, err := storage.NewReadSeeker(ctx, b, key, storage.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		src = r
	}
	var buf []Box
	opts := s.opts
	opts.Preview = filepath.Join(filepath.Dir(dst), coordinator.PreviewFile)
	st, err := Write(ctx, source, src, dst, func(frame int) ([]Box, bool) {
		dets, analysed := boxes(frame)
		buf = buf[:0]
		for _, d := range dets {
			buf = append(buf, Box{
				X1: d.Box[0], Y1: d.Box[1], X2: d.Box[2], Y2: d.Box[3],
				ClassID: d.ClassID, Label: d.Class, Conf: d.Conf,
			})
		}
		return buf, analysed
	}, opts)
	if p := st.Plan; p.WorkingSet > 0 {
		s.log.Info("annotation plan", "source", source, "input", fmt.Sprintf("%dx%d", p.InW, p.InH), "output", fmt.Sprintf("%dx%d", p.OutW, p.OutH),
			"encoder_threads", p.EncodeThreads, "low_memory", p.LowMemory, "working_set_mb", p.WorkingSet>>20, "budget_mb", s.opts.Limiter.Memory()>>20)
	}
	return err
}
