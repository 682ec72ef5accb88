package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/storage"
)

// Opener resolves a storage URI to its bucket and the key (or prefix) in it.
type Opener func(ctx context.Context, uri string) (storage.Bucket, string, error)

// Input limits: a job names at most MaxVideos videos, and a manifest is at
// most MaxManifestBytes.
const (
	MaxVideos        = 10000
	MaxManifestBytes = 1 << 20
)

// videoExts are the file name extensions a prefix listing picks up.
var videoExts = map[string]bool{
	".mp4": true, ".m4v": true, ".mov": true, ".mkv": true, ".webm": true, ".avi": true,
	".ts": true, ".mts": true, ".m2ts": true, ".mpg": true, ".mpeg": true, ".flv": true,
	".wmv": true, ".3gp": true, ".mxf": true, ".h264": true, ".hevc": true,
}

// IsRemote reports whether source names an object in a bucket rather than
// a local file.
func IsRemote(source string) bool { return strings.HasPrefix(source, "s3://") }

// Expand turns a job's inputs into video sources, in order:
//   - a local path or s3://bucket/key is one video;
//   - s3://bucket/prefix/ (ending in '/') is every video under the prefix;
//   - @FILE or @s3://bucket/list.txt is a manifest: one input per line,
//     blank lines and lines starting with '#' ignored (no nested manifests).
//
// A local path is not checked here: a missing file fails as that video,
// not as the job.
func Expand(ctx context.Context, inputs []string, open Opener) ([]string, error) {
	var out []string
	add := func(s ...string) error {
		out = append(out, s...)
		if len(out) > MaxVideos {
			return fmt.Errorf("more than %d videos in one job", MaxVideos)
		}
		return nil
	}
	for _, in := range inputs {
		var err error
		switch {
		case strings.HasPrefix(in, "@"):
			var lines []string
			if lines, err = readManifest(ctx, in[1:], open); err == nil {
				for _, l := range lines {
					if strings.HasPrefix(l, "@") {
						return nil, fmt.Errorf("manifest %s: nested manifest %q", in[1:], l)
					}
					var vs []string
					if vs, err = expandOne(ctx, l, open); err != nil {
						break
					}
					if err = add(vs...); err != nil {
						break
					}
				}
			}
		default:
			var vs []string
			if vs, err = expandOne(ctx, in, open); err == nil {
				err = add(vs...)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func expandOne(ctx context.Context, in string, open Opener) ([]string, error) {
	if !IsRemote(in) || !strings.HasSuffix(in, "/") {
		return []string{in}, nil
	}
	b, prefix, err := open(ctx, in)
	if err != nil {
		return nil, err
	}
	var vids []string
	err = b.List(ctx, prefix, func(key string) error {
		if videoExts[strings.ToLower(path.Ext(key))] {
			vids = append(vids, storage.URI(b, key))
		}
		if len(vids) > MaxVideos {
			return fmt.Errorf("more than %d videos under %s", MaxVideos, in)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", in, err)
	}
	if len(vids) == 0 {
		return nil, fmt.Errorf("no videos under %s", in)
	}
	return vids, nil
}

func readManifest(ctx context.Context, src string, open Opener) ([]string, error) {
	var r io.ReadCloser
	if IsRemote(src) {
		b, key, err := open(ctx, src)
		if err != nil {
			return nil, err
		}
		if r, err = b.Get(ctx, key); err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		r = f
	}
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", src, err)
	}
	if len(body) > MaxManifestBytes {
		return nil, fmt.Errorf("manifest %s is over %d bytes", src, MaxManifestBytes)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("manifest %s lists no videos", src)
	}
	return lines, nil
}

// Names derives unique video names from sources' base names: the keys of
// their outputs and the last token of their subjects.
func Names(inputs []string) []string {
	seen := map[string]int{}
	names := make([]string, len(inputs))
	for i, in := range inputs {
		base := filepath.Base(in)
		base = strings.TrimSuffix(base, filepath.Ext(base))
		n := bus.NameFrom(base)
		seen[n]++
		if seen[n] > 1 {
			n = fmt.Sprintf("%s-%d", n, seen[n])
		}
		names[i] = n
	}
	return names
}
