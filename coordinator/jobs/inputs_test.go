package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/internal/bustest"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/storage"
)

// objectStore is a versitygw with an Opener that records what it opens.
type objectStore struct {
	t   *testing.T
	srv *s3test.Server

	mu     sync.Mutex
	opened []string
}

func newObjectStore(t *testing.T, buckets ...string) *objectStore {
	t.Helper()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	for _, b := range buckets {
		srv.CreateBucket(t, b)
	}
	return &objectStore{t: t, srv: srv}
}

func (o *objectStore) open(ctx context.Context, uri string) (storage.Bucket, string, error) {
	o.mu.Lock()
	o.opened = append(o.opened, uri)
	o.mu.Unlock()
	b, key, err := storage.Open(ctx, uri, storage.Options{S3Endpoint: o.srv.Endpoint})
	if err == nil {
		o.t.Cleanup(func() { b.Close() })
	}
	return b, key, err
}

func (o *objectStore) openedURIs() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.opened)
}

func (o *objectStore) put(uri, body string) {
	o.t.Helper()
	b, key, err := storage.Open(context.Background(), uri, storage.Options{S3Endpoint: o.srv.Endpoint})
	if err != nil {
		o.t.Fatal(err)
	}
	defer b.Close()
	if err := b.Put(context.Background(), key, strings.NewReader(body)); err != nil {
		o.t.Fatal(err)
	}
}

// noJobs fails the test if a refused submission left a job behind.
func noJobs(t *testing.T, svc *Service) {
	t.Helper()
	list, err := svc.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("jobs after refused submissions: %+v, %v", list, err)
	}
}

func startService(t *testing.T, js jetstream.JetStream, opts Options) *Service {
	t.Helper()
	store, err := OpenStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	opts.Model = Model{Path: "/models/m.onnx", SHA256: "abc", Input: 64}
	svc := New(js, store, opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); svc.Wait() })
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestSubmitNeverReadsCoordinatorFiles: with --local-inputs, local paths
// name files on the ingest machines; a manifest on the coordinator's own
// host is never read, and the refusal shows nothing of it.
func TestSubmitNeverReadsCoordinatorFiles(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	svc, _ := newService(t, js, t.TempDir()) // LocalInputs: true
	conf := filepath.Join(t.TempDir(), "some.conf")
	if err := os.WriteFile(conf, []byte("/srv/line-one.mp4\npassword=hunter2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"@" + conf, "@file://" + conf} {
		rec, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{in}})
		if !errors.Is(err, ErrBadSpec) {
			t.Fatalf("%s: submit = %+v, %v; want ErrBadSpec", in, rec, err)
		}
		if strings.Contains(err.Error(), "line-one") || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%s: error echoes the file: %v", in, err)
		}
	}
	noJobs(t, svc)
}

// TestSubmitChecksBucketsBeforeListing: a manifest line naming a foreign
// bucket is refused before that bucket is listed, and the 400 names no key
// in it.
func TestSubmitChecksBucketsBeforeListing(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	st := newObjectStore(t, "videos", "secret")
	st.put("s3://secret/private/first-secret-key.mp4", "x")
	st.put("s3://videos/list.txt", "s3://videos/a.mp4\ns3://secret/private/\n")
	st.put("s3://videos/direct.txt", "s3://secret/private/first-secret-key.mp4\n")
	st.put("s3://videos/smuggle.txt", "s3://videos/a.mp4\nhttp://169.254.169.254/latest/meta-data\n")
	svc := startService(t, js, Options{Out: t.TempDir(), Open: st.open, Buckets: []string{"videos"}})
	if _, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"@s3://videos/smuggle.txt"}}); !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "only s3://") {
		t.Fatalf("manifest smuggling another scheme: %v", err)
	}
	for _, manifest := range []string{"s3://videos/list.txt", "s3://videos/direct.txt"} {
		_, _, err := svc.Submit(context.Background(), Spec{Inputs: []string{"@" + manifest}})
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), `bucket "secret"`) || !strings.Contains(err.Error(), "line ") {
			t.Fatalf("%s: err = %v, want ErrBadSpec naming the line and the bucket", manifest, err)
		}
		if manifest == "s3://videos/list.txt" && strings.Contains(err.Error(), "first-secret-key") {
			t.Fatalf("the 400 names a key of the foreign bucket: %v", err)
		}
	}
	for _, u := range st.openedURIs() {
		if strings.HasPrefix(u, "s3://secret") {
			t.Errorf("the coordinator opened %s", u)
		}
	}
	noJobs(t, svc)
}

// TestSubmitRefusesCredentials: an access key and secret in any location
// are refused without being echoed, with or without a bucket allow-list,
// so they reach no record, log or summary.
func TestSubmitRefusesCredentials(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	open := newService // LocalInputs, every bucket allowed
	svc, _ := open(t, js, t.TempDir())
	strict := startService(t, js, Options{Out: "s3://results/jobs", Buckets: []string{"bucket", "results"}})
	const key, secret = "AKIAEXAMPLE", "wJalrXUtnFEMIK7MDENG"
	creds := key + ":" + secret + "@"
	for name, spec := range map[string]Spec{
		"input":         {Inputs: []string{"s3://" + creds + "bucket/key.mp4"}},
		"prefix":        {Inputs: []string{"s3://" + creds + "bucket/cams/"}},
		"manifest":      {Inputs: []string{"@s3://" + creds + "bucket/list.txt"}},
		"key only":      {Inputs: []string{"s3://" + key + "@bucket/key.mp4"}},
		"output":        {Inputs: []string{"s3://bucket/key.mp4"}, Output: "s3://" + creds + "results/out"},
		"other scheme":  {Inputs: []string{"https://" + creds + "bucket.s3.amazonaws.com/key.mp4"}},
		"upper case s3": {Inputs: []string{"S3://" + creds + "bucket/key.mp4"}},
	} {
		for _, s := range []*Service{svc, strict} {
			_, _, err := s.Submit(context.Background(), spec)
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "credentials") {
				t.Fatalf("%s: err = %v, want ErrBadSpec about credentials", name, err)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), secret) {
				t.Fatalf("%s: error echoes the credentials: %v", name, err)
			}
		}
	}
	noJobs(t, svc)
}

// TestSubmitBoundsManifestWork: one request cannot make the coordinator
// read a thousand manifests or gigabytes: the limits are checked before the
// reads they bound, and the 400 names the limit.
func TestSubmitBoundsManifestWork(t *testing.T) {
	_, js := bustest.Start(t, bus.DefaultStreamOptions())
	st := newObjectStore(t, "videos")
	st.put("s3://videos/one.txt", "s3://videos/a.mp4\n")
	// Each manifest is just under the per-manifest cap (comment lines are
	// ignored), five of them over the total.
	padding := strings.Repeat("#"+strings.Repeat("x", 998)+"\n", ingest.MaxManifestBytes/1000-1)
	for i := range 5 {
		st.put(fmt.Sprintf("s3://videos/big-%d.txt", i), fmt.Sprintf("s3://videos/b%d.mp4\n", i)+padding)
	}
	svc := startService(t, js, Options{Out: t.TempDir(), Open: st.open, Buckets: []string{"videos"}})

	_, _, err := svc.Submit(context.Background(), Spec{Inputs: slices.Repeat([]string{"@s3://videos/one.txt"}, 1000)})
	if want := fmt.Sprintf("1000 manifests, at most %d", ingest.MaxManifests); !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), want) {
		t.Fatalf("1000 manifests: %v, want ErrBadSpec naming %q", err, want)
	}
	if n := len(st.openedURIs()); n != 0 {
		t.Fatalf("1000 manifests: %d objects opened before the refusal", n)
	}

	var bigs []string
	for i := range 5 {
		bigs = append(bigs, fmt.Sprintf("@s3://videos/big-%d.txt", i))
	}
	_, _, err = svc.Submit(context.Background(), Spec{Inputs: bigs})
	if want := fmt.Sprintf("of %d manifest bytes per job", ingest.MaxTotalManifestBytes); !errors.Is(err, ErrBadSpec) || !errors.Is(err, ingest.ErrOverLimit) || !strings.Contains(err.Error(), want) {
		t.Fatalf("5 MB of manifests: %v, want ErrBadSpec naming %q", err, want)
	}
	noJobs(t, svc)

	// Within the limits the same manifests make a job.
	rec, created, err := svc.Submit(context.Background(), Spec{Inputs: []string{"@s3://videos/one.txt", bigs[0]}})
	if err != nil || !created || len(rec.Videos) != 2 {
		t.Fatalf("within the limits: %+v %v %v", rec, created, err)
	}
}
