// Package jobs is the coordinator's job service: it takes job specs,
// keeps each job's record in a JetStream KV bucket, dispatches the videos to
// ingest processes, follows the results to the outputs, and resumes running
// jobs when a coordinator restarts.
package jobs

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/storage"
)

// ErrBadSpec marks a job spec that cannot run; the API answers 400 with it.
var ErrBadSpec = errors.New("bad job spec")

// Limits on what one job may ask for.
const (
	MaxInputs = 10000
	// MaxVideos keeps a job record, with every video's statistics, well
	// under NATS's default 1 MB message size.
	MaxVideos         = 1000
	MaxIdempotencyKey = 256
)

// Spec is what a user submits: POST /v1/jobs.
type Spec struct {
	// Name is the job id; empty generates one.
	Name string `json:"name,omitempty"`
	// Inputs are s3://bucket/key, s3://bucket/prefix/ (every video under
	// it) or @s3://bucket/manifest (one input per line); local paths only
	// where the coordinator allows them.
	Inputs []string `json:"inputs"`
	// Model, when set, must name the model the worker pool serves: its path
	// or URI, or "sha256:<hex>" of its bytes.
	Model string `json:"model,omitempty"`
	// Sampling: every Nth frame, or about FPS frames per second.
	Every int     `json:"every,omitempty"`
	FPS   float64 `json:"fps,omitempty"`
	// Preprocess is how frames become model input: "exact" (YOLOv5's own
	// pixels, the default) or "fast"; empty keeps the ingest processes'
	// setting.
	Preprocess string `json:"preprocess,omitempty"`
	// Thresholds; zero keeps the workers' defaults.
	Conf   float64 `json:"conf,omitempty"`
	IoU    float64 `json:"iou,omitempty"`
	MaxDet int     `json:"max_det,omitempty"`
	// Output is where the job's folder goes (s3://bucket/prefix); empty uses
	// the coordinator's --out.
	Output string `json:"output,omitempty"`
	// Annotate writes annotated.mp4 per video; default true.
	Annotate *bool `json:"annotate,omitempty"`
	// IdempotencyKey makes a retried submission return the first job
	// instead of starting a second (also the Idempotency-Key header).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// annotate reports whether the job wants annotated videos.
func (s *Spec) annotate() bool { return s.Annotate == nil || *s.Annotate }

// Validate checks the fields that need no storage access. allowLocal
// permits local paths, which name files on the ingest machines.
func (s *Spec) Validate(allowLocal bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, args...))
	}
	if s.Name != "" {
		if err := bus.ValidName("job", s.Name); err != nil {
			return bad("name: %v", err)
		}
	}
	switch {
	case len(s.Inputs) == 0:
		return bad("inputs: at least one video, prefix or manifest is required")
	case len(s.Inputs) > MaxInputs:
		return bad("inputs: %d entries, at most %d", len(s.Inputs), MaxInputs)
	case len(s.IdempotencyKey) > MaxIdempotencyKey:
		return bad("idempotency_key: longer than %d bytes", MaxIdempotencyKey)
	}
	if err := bus.CheckSettings(s.Every, s.FPS, s.Conf, s.IoU, s.MaxDet); err != nil {
		return bad("%v", err)
	}
	if err := bus.CheckPreprocess(s.Preprocess); err != nil {
		return bad("%v", err)
	}
	manifests, prefixes := 0, 0
	for i, in := range s.Inputs {
		src, manifest := strings.CutPrefix(in, "@")
		if strings.TrimSpace(in) == "" || src == "" {
			return bad("inputs[%d]: empty", i)
		}
		if err := checkLocation(src, allowLocal); err != nil {
			return bad("inputs[%d]: %v", i, err)
		}
		switch {
		case manifest && !ingest.IsRemote(src):
			// --local-inputs names files on the ingest machines; the
			// coordinator never reads its own host's files for a user.
			return bad("inputs[%d]: manifest %s: a manifest must be an s3:// object; local manifests are only for vidpipe run", i, src)
		case manifest:
			manifests++
		case ingest.IsRemote(src) && strings.HasSuffix(src, "/"):
			prefixes++
		}
	}
	if manifests > ingest.MaxManifests {
		return bad("inputs: %d manifests, at most %d per job", manifests, ingest.MaxManifests)
	}
	if prefixes > ingest.MaxPrefixes {
		return bad("inputs: %d prefixes to list, at most %d per job", prefixes, ingest.MaxPrefixes)
	}
	if s.Output != "" {
		if err := checkLocation(s.Output, allowLocal); err != nil {
			return bad("output: %v", err)
		}
	}
	return nil
}

// checkLocation accepts s3:// URIs, and local paths where allowed; any
// other scheme (http://169.254.169.254/...) is refused.
func checkLocation(s string, allowLocal bool) error {
	if strings.Contains(s, "://") {
		// Parsed first: a URI with credentials is refused without being
		// quoted, whatever its scheme.
		_, _, _, err := storage.ParseURI(s)
		if errors.Is(err, storage.ErrCredentials) || ingest.IsRemote(s) {
			return err
		}
	}
	switch {
	case ingest.IsRemote(s):
		return nil
	case strings.Contains(s, "://"):
		return fmt.Errorf("%q: only s3:// URIs are accepted", s)
	case !allowLocal:
		return fmt.Errorf("%q is a local path; this coordinator takes s3:// URIs only (start it with --local-inputs to allow paths on the ingest machines)", s)
	}
	return nil
}

// checkBuckets refuses URIs outside the allowed buckets; an empty list
// allows every bucket.
func checkBuckets(allowed []string, what string, uris ...string) error {
	for _, u := range uris {
		if err := checkBucket(allowed, u); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadSpec, what, err)
		}
	}
	return nil
}

func checkBucket(allowed []string, u string) error {
	u = strings.TrimPrefix(u, "@")
	if len(allowed) == 0 || !ingest.IsRemote(u) {
		return nil
	}
	_, bucket, _, err := storage.ParseURI(u)
	if err != nil {
		return err
	}
	if !slices.Contains(allowed, bucket) {
		return fmt.Errorf("bucket %q of %s is not one this coordinator serves (%s)", bucket, u, strings.Join(allowed, ", "))
	}
	return nil
}

// allowLocation is the policy for every location a job's inputs reach,
// manifest lines included, checked before anything is opened or listed.
func allowLocation(allowLocal bool, buckets []string) func(string) error {
	return func(loc string) error {
		if err := checkLocation(loc, allowLocal); err != nil {
			return err
		}
		return checkBucket(buckets, loc)
	}
}
