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

// setupFunc runs a parsed subcommand.
type setupFunc func(ctx context.Context, logger *slog.Logger) error

func main() {
	app := kingpin.New("vidpipe", "Batch video analytics: decode, detect, annotate.")
	app.HelpFlag.Short('h')
	logLevel := app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error")
	logFormat := app.Flag("log.format", "Log format: text or json.").Default("text").Enum("text", "json")

	cmds := map[string]setupFunc{}
	registerModel(app, cmds)

	var run runConfig
	runCmd := app.Command("run", "Analyse videos end to end on one machine: embedded NATS, in-process workers and coordinator.")
	run.registerFlags(runCmd)
	cmds[runCmd.FullCommand()] = run.run

	var worker workerConfig
	workerCmd := app.Command("worker", "Run detector workers against an external NATS JetStream (scale out on GPU nodes).")
	worker.registerFlags(workerCmd)
	cmds[workerCmd.FullCommand()] = worker.run

	var query queryConfig
	queryCmd := app.Command("query", "Filter or count detections in results, reading only what can match.")
	query.registerFlags(queryCmd)
	cmds[queryCmd.FullCommand()] = query.run

	var bench benchConfig
	benchCmd := app.Command("bench", "Measure the pipeline against its limits: model alone, and the ffmpeg CLI.")
	bench.registerFlags(benchCmd)
	cmds[benchCmd.FullCommand()] = bench.run

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
	if err := cmds[cmd](ctx, logger); err != nil {
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
