// Command vidpipe is the batch video analytics pipeline: one binary whose
// subcommands run the whole job on one machine or each component on its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/asticode/go-astiav"
)

// subcommand is one `vidpipe ...` command: a config that registers its own
// flags and runs once they are parsed.
type subcommand interface {
	registerFlags(cmd *kingpin.CmdClause)
	run(ctx context.Context, logger *slog.Logger) error
}

// commands maps each command's full name to what runs it.
type commands map[string]subcommand

// add registers sc as the command name under parent (the app or a group).
func (c commands) add(parent interface {
	Command(name, help string) *kingpin.CmdClause
}, name, help string, sc subcommand) {
	cmd := parent.Command(name, help)
	sc.registerFlags(cmd)
	c[cmd.FullCommand()] = sc
}

func main() {
	app := kingpin.New("vidpipe", "Batch video analytics: decode, detect, annotate.")
	app.HelpFlag.Short('h')
	logLevel := app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error")
	logFormat := app.Flag("log.format", "Log format: text or json.").Default("text").Enum("text", "json")

	cmds := commands{}
	cmds.add(app, "run", "Analyse videos end to end on one machine: embedded NATS, in-process workers and coordinator.", &runConfig{})
	cmds.add(app, "coordinator", "Run the job service: job API, results into outputs, resume after restarts.", &coordinatorConfig{})
	cmds.add(app, "ingest", "Run a pool of decoders taking video tasks from an external NATS JetStream.", &ingestConfig{})
	cmds.add(app, "worker", "Run detector workers against an external NATS JetStream (scale out on GPU nodes).", &workerConfig{})
	cmds.add(app, "submit", "Submit a job to the coordinator's API; prints the job id.", &submitConfig{})
	cmds.add(app, "jobs", "List jobs.", &jobsConfig{})
	cmds.add(app, "status", "Show one job; --watch follows it with a progress bar.", &statusConfig{})
	cmds.add(app, "cancel", "Cancel a job.", &cancelConfig{})
	cmds.add(app, "workers", "List live workers with their throughput.", &workersConfig{})
	cmds.add(app, "query", "Filter or count detections in results, reading only what can match.", &queryConfig{})
	cmds.add(app, "eval", "Score detections against COCO ground truth: pycocotools' AP/AR numbers and per-class AP.", &evalConfig{})
	cmds.add(app, "bench", "Measure the pipeline against its limits: model alone, and the ffmpeg CLI.", &benchConfig{})
	model := app.Command("model", "Build, fuse and benchmark detector models.")
	cmds.add(model, "build", "Build YOLOv5s or RepYOLOv5s as an ONNX graph.", &modelBuildConfig{})
	cmds.add(model, "import", "Import a PyTorch checkpoint (.pt) as a deploy-form ONNX model, without Python.", &modelImportConfig{})
	cmds.add(model, "fuse", "Fuse a RepVGG-style ONNX graph into its deploy form.", &modelFuseConfig{})
	cmds.add(model, "half", "Convert an ONNX model to float16, keeping float32 input, outputs and Detect decode.", &modelHalfConfig{})
	cmds.add(model, "input", "Make an ONNX model take letterboxed uint8 RGB [N,H,W,3] (--input u8).", &modelInputConfig{})
	cmds.add(model, "bench", "Compare yolov5s, RepYOLOv5s training form and RepYOLOv5s fused.", &modelBenchConfig{})

	cmd, err := app.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "vidpipe: %v (see vidpipe --help)\n", err)
		os.Exit(2)
	}
	logger := newLogger(*logLevel, *logFormat)
	// FFmpeg logs to stderr on its own; only its errors belong next to ours.
	astiav.SetLogLevel(astiav.LogLevelError)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmds[cmd].run(ctx, logger); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "vidpipe %s: %v\n", cmd, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "vidpipe %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// usageError marks an error in what the user asked for, as opposed to a
// failure while doing it; it exits 2 like a flag error.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
