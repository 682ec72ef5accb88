package eval

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/vidpipe/vidpipe/results"
	"github.com/vidpipe/vidpipe/storage"
)

// Opener resolves a URI (a local path, file:// or s3://) to the bucket
// holding it and the key inside it. The opener owns the buckets.
type Opener interface {
	Open(ctx context.Context, uri string) (storage.Bucket, string, error)
}

// LoadGroundTruth reads the COCO annotations file at uri.
func LoadGroundTruth(ctx context.Context, o Opener, uri string) (*GroundTruth, error) {
	rc, err := openFile(ctx, o, uri, MaxGroundTruthBytes)
	if err != nil {
		return nil, fmt.Errorf("ground truth: %w", err)
	}
	defer rc.Close()
	return ReadGroundTruth(uri, rc)
}

// LoadDetections reads the detections at uri for gt: a COCO results .json
// file, a vidpipe detections.jsonl or detections.parquet, or a folder or
// prefix holding <video>/detections.* files (see the package documentation).
func LoadDetections(ctx context.Context, o Opener, uri string, gt *GroundTruth) (*Detections, error) {
	d := NewDetections(gt)
	if strings.HasSuffix(uri, ".json") {
		rc, err := openFile(ctx, o, uri, MaxResultsBytes)
		if err != nil {
			return nil, fmt.Errorf("detections: %w", err)
		}
		defer rc.Close()
		return d, ReadCOCOResults(uri, rc, d)
	}
	b, key, err := o.Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("detections: %w", err)
	}
	keys := []string{key}
	if !strings.HasSuffix(key, ".jsonl") && !strings.HasSuffix(key, ".parquet") {
		if keys, err = listResults(ctx, b, key); err != nil {
			return nil, err
		}
	}
	v, err := newVidpipeReader(d)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := v.readFile(ctx, b, k, videoOf(b, k)); err != nil {
			return nil, err
		}
	}
	return d, v.finish()
}

// videoOf is the video whose results file key is: its folder's name.
func videoOf(b storage.Bucket, key string) string {
	return path.Base(path.Dir(storage.URI(b, key)))
}

// openFile opens the object at uri after checking its size against limit.
func openFile(ctx context.Context, o Opener, uri string, limit int64) (io.ReadCloser, error) {
	b, key, err := o.Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("%s: %w: a folder, want a file", uri, ErrInvalid)
	}
	attrs, err := b.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	if attrs.Size > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", uri, ErrTooLarge, attrs.Size, limit)
	}
	return b.Get(ctx, key)
}

// listResults finds the videos' detections files under prefix, one per
// folder (the Parquet file where there are both), and refuses two folders
// of the same name: they would be the same video of two jobs.
func listResults(ctx context.Context, b storage.Bucket, prefix string) ([]string, error) {
	list := prefix
	if list != "" {
		list += "/"
	}
	byDir := map[string]string{}
	var dirs []string
	err := b.List(ctx, list, func(key string) error {
		base, dir := path.Base(key), path.Dir(key)
		if base != results.JSONLFile && base != results.ParquetFile {
			return nil
		}
		if _, seen := byDir[dir]; !seen {
			dirs = append(dirs, dir)
		}
		if base == results.ParquetFile || byDir[dir] == "" {
			byDir[dir] = key
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("detections: %w", err)
	}
	where := storage.URI(b, prefix)
	if len(dirs) == 0 {
		if _, err := b.Head(ctx, prefix); prefix != "" && err == nil {
			return nil, fmt.Errorf("%s: %w: want a COCO results .json, a %s or %s, or a folder of them", where, ErrInvalid, results.JSONLFile, results.ParquetFile)
		}
		return nil, fmt.Errorf("detections: no %s or %s under %s: %w", results.JSONLFile, results.ParquetFile, where, storage.ErrNotFound)
	}
	video := map[string]string{}
	keys := make([]string, 0, len(dirs))
	for _, dir := range dirs {
		name := videoOf(b, byDir[dir])
		if other, dup := video[name]; dup {
			return nil, fmt.Errorf("%s: %w: video %q is in both %s and %s: point at one job's results", where, ErrInvalid, name, other, dir)
		}
		video[name] = dir
		keys = append(keys, byDir[dir])
	}
	return keys, nil
}
