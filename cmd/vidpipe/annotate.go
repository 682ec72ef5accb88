package main

import (
	"log/slog"
	"strconv"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/vidpipe/vidpipe/coordinator/annotate"
	"github.com/vidpipe/vidpipe/ingest"
)

// annotateFlags size the process's one annotation stage, shared by every
// job the process runs.
type annotateFlags struct {
	memory  units.Base2Bytes
	workers int
}

func (f *annotateFlags) register(cmd *kingpin.CmdClause, workers int) {
	cmd.Flag("annotate-memory", "Memory all annotations of this process may hold together; larger videos are scaled down or encoded leaner to fit, and a video that cannot fit fails its annotation (not its analysis).").
		Default(units.Base2Bytes(annotate.DefaultMemory).String()).BytesVar(&f.memory)
	cmd.Flag("annotate-workers", "Videos annotated at the same time, over all jobs of this process.").Default(strconv.Itoa(workers)).IntVar(&f.workers)
}

func (f *annotateFlags) validate() error {
	switch {
	case f.memory <= 0:
		return usagef("--annotate-memory must be positive")
	case f.workers < 1:
		return usagef("--annotate-workers must be at least 1")
	}
	return nil
}

// stage is the process's annotation stage.
func (f *annotateFlags) stage(open ingest.Opener, logger *slog.Logger) *annotate.Stage {
	return annotate.NewStage(open, annotate.Options{Limiter: annotate.NewLimiter(int64(f.memory), f.workers)}, logger)
}
