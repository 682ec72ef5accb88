package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/workers"
)

// apiFlags reach the coordinator's job API; the token comes from
// VIDPIPE_TOKEN or a file, never the command line.
type apiFlags struct {
	url       string
	tokenFile string
	json      bool
}

func (f *apiFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("api", "Job API of the coordinator.").Envar("VIDPIPE_API").Default("http://127.0.0.1:8080").StringVar(&f.url)
	cmd.Flag("token-file", "File holding the API bearer token (else VIDPIPE_TOKEN).").PlaceHolder("FILE").StringVar(&f.tokenFile)
	cmd.Flag("json", "Print the API's JSON.").BoolVar(&f.json)
}

func (f *apiFlags) client() (*api.Client, error) {
	token, err := apiToken(f.tokenFile)
	if err != nil {
		return nil, err
	}
	c, err := api.NewClient(f.url, token)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// submitConfig is `vidpipe submit`: it posts a job and prints its id.
type submitConfig struct {
	api      apiFlags
	spec     jobs.Spec
	noAnnot  bool
	watch    bool
	interval time.Duration
}

func (c *submitConfig) registerFlags(cmd *kingpin.CmdClause) {
	c.api.register(cmd)
	cmd.Flag("name", "Job id; default generated.").StringVar(&c.spec.Name)
	cmd.Flag("model", "Model the job expects (path, URI or sha256:HEX); it must be what the workers serve.").StringVar(&c.spec.Model)
	cmd.Flag("every", "Analyse every Nth frame.").IntVar(&c.spec.Every)
	cmd.Flag("fps", "Analyse about F frames per second.").Float64Var(&c.spec.FPS)
	cmd.Flag("preprocess", "How frames become model input: exact or fast (see vidpipe run); default the ingest processes'.").EnumVar(&c.spec.Preprocess, decode.PreprocessNames()...)
	cmd.Flag("conf", "Confidence threshold; default the workers'.").Float64Var(&c.spec.Conf)
	cmd.Flag("iou", "NMS IoU threshold; default the workers'.").Float64Var(&c.spec.IoU)
	cmd.Flag("max-det", "Most detections per frame; default the workers'.").IntVar(&c.spec.MaxDet)
	cmd.Flag("output", "Where the job folder goes (s3://bucket/prefix); default the coordinator's --out.").StringVar(&c.spec.Output)
	cmd.Flag("idempotency-key", "Resubmitting with the same key returns the first job.").StringVar(&c.spec.IdempotencyKey)
	cmd.Flag("no-annotate", "Skip annotated videos.").BoolVar(&c.noAnnot)
	cmd.Flag("watch", "Follow the job until it ends; exit non-zero unless it succeeded.").BoolVar(&c.watch)
	cmd.Flag("interval", "Polling interval of --watch.").Default("1s").DurationVar(&c.interval)
	cmd.Arg("inputs", "s3://bucket/key, s3://bucket/prefix/ or @s3://bucket/manifest.").Required().StringsVar(&c.spec.Inputs)
}

func (c *submitConfig) run(ctx context.Context, logger *slog.Logger) error {
	cl, err := c.api.client()
	if err != nil {
		return err
	}
	if c.noAnnot {
		no := false
		c.spec.Annotate = &no
	}
	rec, created, err := cl.Submit(ctx, c.spec)
	if err != nil {
		return err
	}
	if c.api.json && !c.watch {
		return printJSON(os.Stdout, rec)
	}
	fmt.Println(rec.ID)
	if !created {
		logger.Info("a job with this idempotency key exists; not submitted again", "job", rec.ID, "state", rec.State)
	}
	if !c.watch {
		return nil
	}
	return watchJob(ctx, cl, rec.ID, c.interval, logger)
}

// jobsConfig is `vidpipe jobs`: a table of jobs.
type jobsConfig struct{ api apiFlags }

func (c *jobsConfig) registerFlags(cmd *kingpin.CmdClause) { c.api.register(cmd) }

func (c *jobsConfig) run(ctx context.Context, _ *slog.Logger) error {
	cl, err := c.api.client()
	if err != nil {
		return err
	}
	list, err := cl.List(ctx)
	if err != nil {
		return err
	}
	if c.api.json {
		return printJSON(os.Stdout, list)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tVIDEOS\tFRAMES\tDONE\tFPS\tCREATED")
	for _, j := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f%%\t%.2f\t%s\n", j.ID, j.State, j.Videos, frames(j.Progress), j.Progress.Percent, j.Progress.FPS, j.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func frames(p jobs.Progress) string {
	if p.Exact {
		return fmt.Sprintf("%d/%d", p.Done, p.Total)
	}
	return fmt.Sprintf("%d/~%d", p.Done, p.Total)
}

// statusConfig is `vidpipe status JOB`: one job in detail, or followed
// live with --watch.
type statusConfig struct {
	api      apiFlags
	id       string
	watch    bool
	interval time.Duration
}

func (c *statusConfig) registerFlags(cmd *kingpin.CmdClause) {
	c.api.register(cmd)
	cmd.Flag("watch", "Follow the job with a progress bar until it ends; exit non-zero unless it succeeded.").BoolVar(&c.watch)
	cmd.Flag("interval", "Polling interval of --watch.").Default("1s").DurationVar(&c.interval)
	cmd.Arg("job", "Job id.").Required().StringVar(&c.id)
}

func (c *statusConfig) run(ctx context.Context, logger *slog.Logger) error {
	cl, err := c.api.client()
	if err != nil {
		return err
	}
	if c.watch {
		return watchJob(ctx, cl, c.id, c.interval, logger)
	}
	rec, err := cl.Get(ctx, c.id)
	if err != nil {
		return err
	}
	if c.api.json {
		return printJSON(os.Stdout, rec)
	}
	printJob(os.Stdout, rec)
	return nil
}

// showRecord draws a job's record: its videos' frames, and the rate and
// ETA the service computed.
func showRecord(prog *progress, rec *jobs.Record) {
	prog.fromServer(rec.Progress)
	for _, v := range rec.Videos {
		prog.update(coordinator.Progress{Video: v.Name, Done: v.Done, Total: v.Total, Estimate: int64(v.Total), Ended: v.Exact})
	}
}

// watchJob polls a job, drawing its progress, until it ends; it fails
// unless the job succeeded.
func watchJob(ctx context.Context, cl *api.Client, id string, every time.Duration, logger *slog.Logger) error {
	prog := newProgress(os.Stderr, logger)
	t := time.NewTicker(max(every, 100*time.Millisecond))
	defer t.Stop()
	for {
		rec, err := cl.Get(ctx, id)
		if err != nil {
			prog.finish()
			return err
		}
		showRecord(prog, rec)
		if rec.State.Final() {
			prog.finish()
			printJob(os.Stdout, rec)
			if rec.State != bus.JobSucceeded {
				return fmt.Errorf("job %s %s: %s", id, rec.State, rec.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			prog.finish()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// printJob writes a readable view of one job.
func printJob(w io.Writer, r *jobs.Record) {
	fmt.Fprintf(w, "job %s: %s", r.ID, r.State)
	if r.Error != "" {
		fmt.Fprintf(w, " (%s)", r.Error)
	}
	fmt.Fprintln(w)
	p := r.Progress
	fmt.Fprintf(w, "frames %s (%.1f%%), %.2f frames/s", frames(p), p.Percent, p.FPS)
	if p.ETASeconds != nil && !r.State.Final() {
		fmt.Fprintf(w, ", ETA %s", (time.Duration(*p.ETASeconds) * time.Second).String())
	}
	fmt.Fprintf(w, "\noutput %s\n", r.Output)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIDEO\tSTATE\tFRAMES\tFPS\tERROR")
	for _, v := range r.Videos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\n", v.Name, v.State, frames(v.Progress), v.FPS, v.Error)
	}
	_ = tw.Flush()
	if r.Stats != nil && len(r.Stats.WorkerShare) > 0 {
		names := make([]string, 0, len(r.Stats.WorkerShare))
		for n := range r.Stats.WorkerShare {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", n, 100*r.Stats.WorkerShare[n]))
		}
		fmt.Fprintf(w, "workers: %s\n", strings.Join(parts, ", "))
	}
}

// cancelConfig is `vidpipe cancel JOB`.
type cancelConfig struct {
	api apiFlags
	id  string
}

func (c *cancelConfig) registerFlags(cmd *kingpin.CmdClause) {
	c.api.register(cmd)
	cmd.Arg("job", "Job id.").Required().StringVar(&c.id)
}

func (c *cancelConfig) run(ctx context.Context, _ *slog.Logger) error {
	cl, err := c.api.client()
	if err != nil {
		return err
	}
	rec, err := cl.Cancel(ctx, c.id)
	if err != nil {
		return err
	}
	if c.api.json {
		return printJSON(os.Stdout, rec)
	}
	fmt.Printf("job %s: %s\n", rec.ID, rec.State)
	return nil
}

// workersConfig is `vidpipe workers`: the live worker pool.
type workersConfig struct{ api apiFlags }

func (c *workersConfig) registerFlags(cmd *kingpin.CmdClause) { c.api.register(cmd) }

func (c *workersConfig) run(ctx context.Context, _ *slog.Logger) error {
	cl, err := c.api.client()
	if err != nil {
		return err
	}
	var list []workers.Heartbeat
	if err := cl.Workers(ctx, &list); err != nil {
		return err
	}
	if c.api.json {
		return printJSON(os.Stdout, list)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHOST\tDEVICE\tBATCH\tFRAMES\tFPS\tFPS(TOTAL)\tLAST BEAT")
	for _, h := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.2f\t%.2f\t%s ago\n", h.Name, h.Host, h.Device, h.Batch, h.Frames, h.FPS, h.FPSTotal, time.Since(h.Beat).Round(time.Second))
	}
	return tw.Flush()
}
