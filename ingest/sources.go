package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/media/formats"
	"github.com/vidpipe/vidpipe/storage"
)

// Opener resolves a storage URI to its bucket and the key (or prefix) in it.
type Opener func(ctx context.Context, uri string) (storage.Bucket, string, error)

// Errors of Expand.
var (
	// ErrNotAllowed: the policy refuses a location, or a local manifest
	// where only bucket manifests are read.
	ErrNotAllowed = errors.New("not allowed")
	// ErrOverLimit: the inputs ask for more storage work than one job may do.
	ErrOverLimit = errors.New("over a per-job limit")
)

// Input limits, the defaults of Limits: a job names at most MaxVideos
// videos; it reads at most MaxManifests manifests of at most
// MaxManifestBytes each and MaxTotalManifestBytes together, and lists at
// most MaxPrefixes prefixes holding at most MaxListed keys together.
const (
	MaxVideos             = 10000
	MaxManifests          = 16
	MaxManifestBytes      = 1 << 20
	MaxTotalManifestBytes = 4 << 20
	MaxPrefixes           = 100
	MaxListed             = 100000
)

// Limits bound the storage work of one Expand, so that one request cannot
// make a service read gigabytes or list millions of keys. Zero fields take
// the package's defaults.
type Limits struct {
	Manifests          int   // @manifests read
	ManifestBytes      int64 // bytes of one manifest
	TotalManifestBytes int64 // bytes of all manifests together
	Prefixes           int   // s3://bucket/prefix/ listings
	Listed             int   // keys listed under all prefixes, videos or not
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Manifests, MaxManifests)
	def64(&l.ManifestBytes, MaxManifestBytes)
	def64(&l.TotalManifestBytes, MaxTotalManifestBytes)
	def(&l.Prefixes, MaxPrefixes)
	def(&l.Listed, MaxListed)
	return l
}

// Policy says what an Expand may touch on its caller's behalf.
type Policy struct {
	// LocalManifests lets @FILE read a file on this machine. Only the local
	// CLI sets it: a service must never read its own host's files for a
	// user, nor echo them back.
	LocalManifests bool
	// Allow, when set, is asked about every location before it is opened,
	// listed or read: each input, each manifest and each manifest line.
	Allow  func(location string) error
	Limits Limits
}

// IsRemote reports whether source names an object in a bucket rather than
// a local file.
func IsRemote(source string) bool { return strings.HasPrefix(source, "s3://") }

// isPrefix reports whether in is listed rather than taken as one video.
func isPrefix(in string) bool { return IsRemote(in) && strings.HasSuffix(in, "/") }

// Expand turns the local CLI's inputs into video sources with local
// manifests allowed and the default limits; see ExpandWith.
func Expand(ctx context.Context, inputs []string, open Opener) ([]string, error) {
	return ExpandWith(ctx, inputs, open, Policy{LocalManifests: true})
}

// ExpandWith turns a job's inputs into video sources, in order:
//   - a local path or s3://bucket/key is one video;
//   - s3://bucket/prefix/ (ending in '/') is every video under the prefix,
//     by the extensions of package formats;
//   - @s3://bucket/list.txt (or @FILE where the policy allows) is a
//     manifest: one input per line, blank lines and lines starting with '#'
//     ignored (no nested manifests).
//
// Every location passes the policy before any storage is touched for it,
// and the work stays within its limits. A local path is not checked here:
// a missing file fails as that video, not as the job.
func ExpandWith(ctx context.Context, inputs []string, open Opener, p Policy) ([]string, error) {
	e := &expander{open: open, policy: p, limits: p.Limits.withDefaults()}
	// Everything the inputs themselves name is checked before any I/O.
	manifests, prefixes := 0, 0
	for i, in := range inputs {
		loc, manifest := strings.CutPrefix(in, "@")
		if err := e.allow(loc); err != nil {
			return nil, fmt.Errorf("inputs[%d]: %w", i, err)
		}
		switch {
		case manifest:
			manifests++
			if !IsRemote(loc) && !p.LocalManifests {
				return nil, fmt.Errorf("inputs[%d]: manifest %s: %w: manifests must be s3:// objects; files on this host are never read", i, loc, ErrNotAllowed)
			}
		case isPrefix(loc):
			prefixes++
		}
	}
	if manifests > e.limits.Manifests {
		return nil, fmt.Errorf("inputs: %d manifests: %w of %d manifests", manifests, ErrOverLimit, e.limits.Manifests)
	}
	if prefixes > e.limits.Prefixes {
		return nil, fmt.Errorf("inputs: %d prefixes to list: %w of %d prefixes", prefixes, ErrOverLimit, e.limits.Prefixes)
	}
	for _, in := range inputs {
		loc, manifest := strings.CutPrefix(in, "@")
		if !manifest {
			if err := e.expandOne(ctx, loc); err != nil {
				return nil, err
			}
			continue
		}
		lines, err := e.readManifest(ctx, loc)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if strings.HasPrefix(l.text, "@") {
				return nil, fmt.Errorf("manifest %s line %d: nested manifest %q", loc, l.n, l.text)
			}
			if err := e.allow(l.text); err != nil {
				return nil, fmt.Errorf("manifest %s line %d: %w", loc, l.n, err)
			}
			if err := e.expandOne(ctx, l.text); err != nil {
				return nil, fmt.Errorf("manifest %s line %d: %w", loc, l.n, err)
			}
		}
	}
	return e.out, nil
}

// expander is one ExpandWith's state: its sources and the work done.
type expander struct {
	open   Opener
	policy Policy
	limits Limits

	out           []string
	prefixes      int
	listed        int
	manifestBytes int64
}

func (e *expander) allow(loc string) error {
	// Whatever the policy, a URI with credentials goes no further: every
	// later message, log line and record would carry it.
	if strings.Contains(loc, "://") {
		if _, _, _, err := storage.ParseURI(loc); errors.Is(err, storage.ErrCredentials) {
			return err
		}
	}
	if e.policy.Allow == nil {
		return nil
	}
	if err := e.policy.Allow(loc); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAllowed, err)
	}
	return nil
}

func (e *expander) add(s ...string) error {
	e.out = append(e.out, s...)
	if len(e.out) > MaxVideos {
		return fmt.Errorf("more than %d videos in one job: %w", MaxVideos, ErrOverLimit)
	}
	return nil
}

func (e *expander) expandOne(ctx context.Context, in string) error {
	if !isPrefix(in) {
		return e.add(in)
	}
	if e.prefixes++; e.prefixes > e.limits.Prefixes {
		return fmt.Errorf("list %s: %w of %d prefixes", in, ErrOverLimit, e.limits.Prefixes)
	}
	b, prefix, err := e.open(ctx, in)
	if err != nil {
		return err
	}
	var vids []string
	err = b.List(ctx, prefix, func(key string) error {
		if e.listed++; e.listed > e.limits.Listed {
			return fmt.Errorf("%w of %d listed keys", ErrOverLimit, e.limits.Listed)
		}
		if formats.IsVideoName(key) {
			vids = append(vids, storage.URI(b, key))
		}
		if len(vids) > MaxVideos {
			return fmt.Errorf("more than %d videos under %s: %w", MaxVideos, in, ErrOverLimit)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", in, err)
	}
	if len(vids) == 0 {
		return fmt.Errorf("no videos under %s", in)
	}
	return e.add(vids...)
}

// line is a manifest line and its 1-based number.
type line struct {
	n    int
	text string
}

func (e *expander) readManifest(ctx context.Context, src string) ([]line, error) {
	var r io.ReadCloser
	if IsRemote(src) {
		b, key, err := e.open(ctx, src)
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
	room := min(e.limits.ManifestBytes, e.limits.TotalManifestBytes-e.manifestBytes)
	body, err := io.ReadAll(io.LimitReader(r, room+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", src, err)
	}
	e.manifestBytes += int64(len(body))
	switch {
	case int64(len(body)) > e.limits.ManifestBytes:
		return nil, fmt.Errorf("manifest %s: %w of %d bytes per manifest", src, ErrOverLimit, e.limits.ManifestBytes)
	case e.manifestBytes > e.limits.TotalManifestBytes:
		return nil, fmt.Errorf("manifest %s: %w of %d manifest bytes per job", src, ErrOverLimit, e.limits.TotalManifestBytes)
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, len(body)+1)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, line{n: n, text: l})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", src, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("manifest %s lists no videos", src)
	}
	return lines, nil
}

// Names derives unique video names from sources' base names: the keys of
// their outputs and the last token of their subjects. The first input with
// a base name keeps it; a later one gets the first free "-N", free meaning
// no other input has it by itself either, so names never collide.
func Names(inputs []string) []string {
	names := make([]string, len(inputs))
	taken := make(map[string]bool, len(inputs))
	var dups []int
	for i, in := range inputs {
		base := filepath.Base(in)
		n := bus.NameFrom(strings.TrimSuffix(base, filepath.Ext(base)))
		names[i] = n
		if taken[n] {
			dups = append(dups, i)
		}
		taken[n] = true
	}
	for _, i := range dups {
		for k := 2; ; k++ {
			sfx := fmt.Sprintf("-%d", k)
			n := names[i][:min(len(names[i]), bus.MaxNameLen-len(sfx))] + sfx
			if !taken[n] {
				taken[n], names[i] = true, n
				break
			}
		}
	}
	return names
}
