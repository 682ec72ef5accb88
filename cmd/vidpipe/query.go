package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/results"
	"github.com/vidpipe/vidpipe/storage"
)

// queryConfig is `vidpipe query`: filter and count detections where they
// lie, reading only the Parquet row groups and columns that can match.
type queryConfig struct {
	uri      string
	jobs     []string
	videos   []string
	classes  []string
	minConf  float64
	from, to string
	format   string
	countBy  string
	s3       s3Flags
}

func (c *queryConfig) registerFlags(cmd *kingpin.CmdClause) {
	cmd.Arg("results", "Results URI: a local directory or s3://bucket/prefix holding <video>/detections.parquet files (any depth).").Required().StringVar(&c.uri)
	cmd.Flag("job", "Only this job; repeat for several.").StringsVar(&c.jobs)
	cmd.Flag("video", "Only this video; repeat for several.").StringsVar(&c.videos)
	cmd.Flag("class", "Only this class name; repeat for several.").StringsVar(&c.classes)
	cmd.Flag("min-conf", "Only detections with at least this confidence.").Default("0").Float64Var(&c.minConf)
	cmd.Flag("from", "Only from this video time on: seconds, MM:SS or HH:MM:SS.").StringVar(&c.from)
	cmd.Flag("to", "Only before this video time.").StringVar(&c.to)
	cmd.Flag("format", "Output: table, csv or jsonl.").Default("table").EnumVar(&c.format, "table", "csv", "jsonl")
	cmd.Flag("count-by", "Count detections by class, video or second instead of listing them.").EnumVar(&c.countBy, "class", "video", "second")
	c.s3.register(cmd)
}

func (c *queryConfig) filter() (results.Filter, error) {
	f := results.Filter{Jobs: c.jobs, Videos: c.videos, Classes: c.classes, MinConf: float32(c.minConf)}
	for _, b := range []struct {
		flag, val string
		dst       **float64
	}{{"--from", c.from, &f.From}, {"--to", c.to, &f.To}} {
		if b.val == "" {
			continue
		}
		s, err := parseClock(b.val)
		if err != nil {
			return f, usagef("%s %q: %v", b.flag, b.val, err)
		}
		*b.dst = &s
	}
	if f.From != nil && f.To != nil && *f.To <= *f.From {
		return f, usagef("--to must be after --from")
	}
	return f, nil
}

// parseClock reads seconds ("75.5"), MM:SS ("10:05") or HH:MM:SS.
func parseClock(s string) (float64, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0, fmt.Errorf("want seconds, MM:SS or HH:MM:SS")
	}
	var total float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || (i > 0 && v >= 60) {
			return 0, fmt.Errorf("want seconds, MM:SS or HH:MM:SS")
		}
		total = total*60 + v
	}
	return total, nil
}

func (c *queryConfig) run(ctx context.Context, logger *slog.Logger) error {
	f, err := c.filter()
	if err != nil {
		return err
	}
	bks := c.s3.buckets(logger)
	defer bks.Close()
	b, prefix, err := bks.Open(ctx, c.uri)
	if err != nil {
		return err
	}
	var keys []string
	err = b.List(ctx, prefix, func(key string) error {
		// The folder is the video's name: skip other videos' files unread.
		if path.Base(key) == results.ParquetFile && (len(c.videos) == 0 || slices.Contains(c.videos, path.Base(path.Dir(key)))) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", c.uri, err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("no detections.parquet under %s", c.uri)
	}

	var counter *results.Counter
	var enc results.RowEncoder
	if c.countBy != "" {
		kind, err := results.ParseCountKind(c.countBy)
		if err != nil {
			return usageError{err}
		}
		if counter, err = results.NewCounter(kind); err != nil {
			return err
		}
	} else {
		format, err := results.ParseFormat(c.format)
		if err != nil {
			return usageError{err}
		}
		if enc, err = results.NewRowEncoder(os.Stdout, format); err != nil {
			return err
		}
	}
	var total results.ScanStats
	var size, fetched int64
	for _, key := range keys {
		// Small blocks: a selective query touches a few column chunks.
		r, err := storage.NewReadSeeker(ctx, b, key, storage.ReaderOptions{BlockSize: 256 << 10, Blocks: 2})
		if err != nil {
			return err
		}
		size += r.Size()
		var st results.ScanStats
		if counter != nil {
			st, err = counter.Scan(ctx, r, f)
		} else {
			st, err = results.Scan(ctx, r, f, enc.Encode)
		}
		fetched += r.BytesFetched()
		r.Close()
		if err != nil {
			return err
		}
		total.Add(st)
	}
	if counter != nil {
		format, _ := results.ParseFormat(c.format)
		if err := results.WriteCounts(os.Stdout, format, counter.Kind(), counter.Counts()); err != nil {
			return err
		}
	} else if err := enc.Close(); err != nil {
		return err
	}
	logger.Info("query", "files", len(keys), "row_groups_read", total.RowGroupsRead, "row_groups", total.RowGroups,
		"bytes_fetched", fetched, "bytes_total", size, "rows_matched", total.Matched)
	return nil
}
