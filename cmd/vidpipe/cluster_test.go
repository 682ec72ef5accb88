package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/metrics/metricstest"
	"github.com/vidpipe/vidpipe/internal/poll"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/workers"
)

// natsServer builds the standalone nats-server from the module vidpipe
// embeds (Debian's is too old), once per test binary.
var natsServer = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vidpipe-nats-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nats-server: %v\n%s", err, out)
	}
	return bin, nil
})

// cluster is vidpipe deployed on loopback as on many machines: a standalone
// nats-server with infra/nats/nats.conf (one NATS user per role, with the
// role's permissions), versitygw, and each component as its own process.
type cluster struct {
	t         testing.TB
	dir       string
	natsURL   string
	apiURL    string
	token     string
	passwords map[string]string
	s3        *s3test.Server
	mu        sync.Mutex
	procs     []*proc
}

// proc is one process of the cluster, with its log in a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	bin, err := natsServer()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: t.TempDir(), token: "test-token-" + strings.Repeat("x", 16), passwords: map[string]string{}}
	for _, role := range []string{"coordinator", "ingest", "worker", "admin"} {
		c.passwords[role] = role + "-pw-" + fmt.Sprint(time.Now().UnixNano())
		t.Setenv("VIDPIPE_NATS_"+strings.ToUpper(role)+"_PASSWORD", c.passwords[role])
	}
	port := freePort(t)
	c.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	conf := c.natsConfig(port)
	c.start("nats-server", "", bin, "-c", conf, "-a", "127.0.0.1")
	c.waitTCP(fmt.Sprintf("127.0.0.1:%d", port), c.procs[0], 20*time.Second)

	t.Setenv("VIDPIPE_TOKEN", c.token)
	c.s3 = s3test.Start(t)
	c.s3.SetEnv(t)
	c.s3.CreateBucket(t, "videos")
	c.s3.CreateBucket(t, "results")
	t.Cleanup(c.stopAll)
	return c
}

// natsConfig is infra/nats/nats.conf, users and permissions untouched, with
// the ports and the store moved into the test's own.
func (c *cluster) natsConfig(port int) string {
	c.t.Helper()
	b, err := os.ReadFile("../../infra/nats/nats.conf")
	if err != nil {
		c.t.Fatal(err)
	}
	conf := string(b)
	for old, repl := range map[string]string{
		"port: 4222":         fmt.Sprintf("port: %d", port),
		"http_port: 8222":    fmt.Sprintf("http_port: %d", freePort(c.t)),
		`store_dir: "/data"`: fmt.Sprintf("store_dir: %q", filepath.Join(c.dir, "nats")),
	} {
		if !strings.Contains(conf, old) {
			c.t.Fatalf("infra/nats/nats.conf has no %q line", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	path := filepath.Join(c.dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// waitTCP waits until p listens on addr, failing if p exits first.
func (c *cluster) waitTCP(addr string, p *proc, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			c.t.Fatalf("%s exited (%v) before listening on %s:\n%s", p.name, p.err, addr, b)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not answer on %s: %v", p.name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start runs a process; role, when set, is the vidpipe component's NATS
// user.
func (c *cluster) start(name, role, bin string, args ...string) *proc {
	c.t.Helper()
	p := &proc{name: name, log: filepath.Join(c.dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = os.Environ()
	if role != "" {
		p.cmd.Env = append(p.cmd.Env,
			"VIDPIPE_NATS="+c.natsURL, "VIDPIPE_NATS_USER="+role, "VIDPIPE_NATS_PASSWORD="+c.passwords[role],
			"VIDPIPE_S3_ENDPOINT="+c.s3.Endpoint, "VIDPIPE_TOKEN="+c.token)
	}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// vidpipe starts a vidpipe component.
func (c *cluster) vidpipe(name, role string, args ...string) *proc {
	return c.start(name, role, binary, args...)
}

// coordinator starts the coordinator and waits for its API.
func (c *cluster) coordinator(name string, extra ...string) *proc {
	c.t.Helper()
	if c.apiURL == "" {
		c.apiURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t))
	}
	args := append([]string{"coordinator", "--listen", strings.TrimPrefix(c.apiURL, "http://"), "--out", "s3://results/jobs", "--ack-wait", "5s", "--bucket", "videos", "--bucket", "results"}, extra...)
	p := c.vidpipe(name, "coordinator", args...)
	// The first start builds and caches the built-in model.
	c.waitTCP(strings.TrimPrefix(c.apiURL, "http://"), p, 3*time.Minute)
	return p
}

func (c *cluster) client() *api.Client {
	c.t.Helper()
	cl, err := api.NewClient(c.apiURL, c.token)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// kill sends sig and waits for the process to exit.
func (p *proc) kill(t testing.TB, sig syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s still running 60 s after %v", p.name, sig)
	}
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if c.t.Failed() {
		for _, p := range c.procs {
			b, _ := os.ReadFile(p.log)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			c.t.Logf("---- %s (exit %v) ----\n%s", p.name, p.err, b)
		}
	}
}

// waitJob polls the job until cond holds; the API must answer throughout
// except while the coordinator restarts.
func (c *cluster) waitJob(cl *api.Client, id, what string, timeout time.Duration, cond func(*jobs.Record) bool) *jobs.Record {
	c.t.Helper()
	var rec *jobs.Record
	poll.Until(c.t, timeout, "job "+id+": "+what, func() (bool, error) {
		r, err := cl.Get(context.Background(), id)
		if err != nil {
			return false, err
		}
		rec = r
		return cond(r), fmt.Errorf("record %+v", r)
	})
	return rec
}

// uploadClips cuts n clips of vtest.avi and puts them in the videos bucket;
// it returns each clip's frame count by ffprobe.
func (c *cluster) uploadClips(n int, seconds string) map[string]int {
	c.t.Helper()
	src := sample(c.t, "vtest.avi")
	counts := map[string]int{}
	for i := range n {
		name := fmt.Sprintf("cam%d", i+1)
		path := filepath.Join(c.dir, name+".mp4")
		ffmpeg(c.t, "-ss", fmt.Sprint(i*15), "-i", src, "-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path)
		body, err := os.ReadFile(path)
		if err != nil {
			c.t.Fatal(err)
		}
		putObject(c.t, c.s3.Client(), "videos", "clips/"+name+".mp4", body)
		counts[name] = atoi(c.t, probe(c.t, path, "nb_read_frames")[0])
	}
	return counts
}

// checkExactlyOnce reads each video's detections from the results bucket:
// every frame of the clip once, in order.
func (c *cluster) checkExactlyOnce(rec *jobs.Record, counts map[string]int) {
	c.t.Helper()
	total := 0
	for _, v := range rec.Videos {
		if v.State != "succeeded" {
			c.t.Errorf("video %s: %s (%s)", v.Name, v.State, v.Error)
		}
		uri := v.Results["detections_json"]
		key := strings.TrimPrefix(uri, "s3://results/")
		sc := bufio.NewScanner(bytes.NewReader(getObject(c.t, c.s3.Client(), "results", key)))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		frames := 0
		for ; sc.Scan(); frames++ {
			var l detLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				c.t.Fatal(err)
			}
			if l.Frame != frames {
				c.t.Fatalf("%s: line %d is frame %d: a frame is missing or repeated", uri, frames, l.Frame)
			}
		}
		if frames != counts[v.Name] {
			c.t.Errorf("%s: %d frames, the clip has %d", uri, frames, counts[v.Name])
		}
		total += frames
	}
	if rec.Stats == nil || rec.Stats.Frames != total || rec.Stats.FailedFrames != 0 {
		c.t.Errorf("job stats %+v, want %d frames and none failed", rec.Stats, total)
	}
}

// TestClusterEndToEnd is the distributed deployment on loopback: a bulk
// job through the API, with a worker added mid-job, a worker SIGKILLed
// mid-job and the coordinator SIGKILLed and restarted mid-job. Every frame
// ends in the results exactly once.
func TestClusterEndToEnd(t *testing.T) {
	c := startCluster(t)
	counts := c.uploadClips(4, "20")
	const imgsz = "320"
	coord := c.coordinator("coordinator-1", "--imgsz", imgsz)
	ingestMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.vidpipe("ingest-1", "ingest", "ingest", "--concurrency", "1", "--metrics", ingestMetrics)
	c.vidpipe("ingest-2", "ingest", "ingest", "--concurrency", "1")
	var ws []*proc
	workerMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("worker-%d", i)
		args := []string{"worker", "--name", name, "--imgsz", imgsz, "--batch", "2", "--threads", "1"}
		if i == 2 {
			args = append(args, "--metrics", workerMetrics)
		}
		ws = append(ws, c.vidpipe(name, "worker", args...))
	}

	code, stdout, stderr := vidpipe(t, "submit", "--api", c.apiURL, "--idempotency-key", "bulk-1", "--output", "s3://results/bulk", "s3://videos/clips/")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	cl := c.client()
	rec := c.waitJob(cl, id, "progress", 3*time.Minute, func(r *jobs.Record) bool { return r.Progress.Done > 0 })
	if len(rec.Videos) != 4 {
		t.Fatalf("job has %d videos, want 4", len(rec.Videos))
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	at := func(frac float64) func(*jobs.Record) bool {
		return func(r *jobs.Record) bool { return r.Progress.Done >= int(frac*float64(total)) || r.State.Final() }
	}

	c.waitJob(cl, id, "10% done", 3*time.Minute, at(0.10))
	ws = append(ws, c.vidpipe("worker-4", "worker", "worker", "--name", "worker-4", "--imgsz", imgsz, "--batch", "2", "--threads", "1"))

	c.waitJob(cl, id, "25% done", 3*time.Minute, at(0.25))
	var live []workers.Heartbeat
	if err := cl.Workers(context.Background(), &live); err != nil || len(live) < 3 {
		t.Fatalf("workers listed mid-job: %d (%v)", len(live), err)
	}
	ws[0].kill(t, syscall.SIGKILL)

	c.waitJob(cl, id, "45% done", 3*time.Minute, at(0.45))
	if r, _ := cl.Get(context.Background(), id); r.State.Final() {
		t.Fatalf("the job ended before the coordinator restart; make it longer")
	}
	coord.kill(t, syscall.SIGKILL)
	c.coordinator("coordinator-2", "--imgsz", imgsz)

	done := c.waitJob(cl, id, "the end", 8*time.Minute, func(r *jobs.Record) bool { return r.State.Final() })
	if done.State != bus.JobSucceeded {
		t.Fatalf("job %s: %s (%s)", id, done.State, done.Error)
	}
	c.checkExactlyOnce(done, counts)
	chartKey := strings.TrimPrefix(done.Results["throughput"], "s3://results/")
	if _, err := png.Decode(bytes.NewReader(getObject(t, c.s3.Client(), "results", chartKey))); err != nil {
		t.Errorf("throughput chart %s: %v", done.Results["throughput"], err)
	} else if dir := os.Getenv("VIDPIPE_TEST_KEEP"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "cluster-throughput.png"), getObject(t, c.s3.Client(), "results", chartKey), 0o644)
	}
	if done.Stats.Workers["worker-4"] == 0 {
		t.Errorf("the worker started mid-job analysed nothing: %v", done.Stats.Workers)
	}
	t.Logf("frames per worker: %v; %d frames at %.2f frames/s", done.Stats.Workers, done.Stats.Frames, done.Stats.FPS)

	// The same idempotency key returns the same job, not a second one.
	code, stdout, _ = vidpipe(t, "submit", "--api", c.apiURL, "--idempotency-key", "bulk-1", "--output", "s3://results/bulk", "s3://videos/clips/")
	if code != 0 || strings.TrimSpace(stdout) != id {
		t.Errorf("resubmit with the same key: exit %d, id %q, want %s", code, stdout, id)
	}
	code, stdout, _ = vidpipe(t, "status", "--api", c.apiURL, id)
	if code != 0 || !strings.Contains(stdout, "SUCCEEDED") || !strings.Contains(stdout, "worker-4") {
		t.Errorf("status: exit %d\n%s", code, stdout)
	}
	// The CLI around the API, and the processes' metrics.
	for _, args := range [][]string{{"jobs"}, {"workers"}, {"status", "--watch", id}} {
		code, stdout, stderr := vidpipe(t, append(args, "--api", c.apiURL)...)
		if code != 0 || !strings.Contains(stdout, map[string]string{"jobs": id, "workers": "worker-4", "status": "SUCCEEDED"}[args[0]]) {
			t.Errorf("vidpipe %v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
	}
	if code, _, stderr := vidpipe(t, "cancel", "--api", c.apiURL, id); code != 1 || !strings.Contains(stderr, "409") {
		t.Errorf("cancel of a finished job: exit %d, %s", code, stderr)
	}
	fams := metricstest.Scrape(t, "http://"+workerMetrics+"/metrics")
	if n, _ := metricstest.Value(fams, "vidpipe_worker_frames_total", map[string]string{"worker": "worker-2"}); int(n) < done.Stats.Workers["worker-2"] {
		t.Errorf("worker-2 counts %v frames in /metrics, %d in the job's stats", n, done.Stats.Workers["worker-2"])
	}
	fams = metricstest.Scrape(t, c.apiURL+"/metrics")
	if n, _ := metricstest.Value(fams, "vidpipe_coordinator_jobs", map[string]string{"state": "SUCCEEDED"}); n != 1 {
		t.Errorf("coordinator /metrics: %v succeeded jobs", n)
	}
	if n, ok := metricstest.Value(metricstest.Scrape(t, "http://"+ingestMetrics+"/metrics"), "vidpipe_nats_connected", nil); !ok || n != 1 {
		t.Errorf("ingest /metrics: nats connected %v (present %v)", n, ok)
	}

	// SIGTERM drains every live worker.
	for _, w := range ws[1:] {
		w.kill(t, syscall.SIGTERM)
		if w.err != nil {
			t.Errorf("%s after SIGTERM: %v", w.name, w.err)
		}
	}
}

// BenchmarkWorkerScaling measures a job's frames per second with one and
// with two worker processes of one ONNX Runtime thread each (320x320 input,
// 400 frames of vtest.avi), everything else equal. On a 2-core machine the
// second worker competes with ingest and the coordinator for the cores, so
// the efficiency (fps2 / 2·fps1) says how much of a core a worker gets.
//
//	go test -run XXX -bench WorkerScaling -benchtime 1x ./cmd/vidpipe
func BenchmarkWorkerScaling(b *testing.B) {
	fps := map[int]float64{}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			c := startCluster(b)
			c.uploadClips(2, "20")
			c.coordinator("coordinator", "--imgsz", "320")
			c.vidpipe("ingest", "ingest", "ingest", "--concurrency", "2")
			for i := 1; i <= n; i++ {
				name := fmt.Sprintf("worker-%d", i)
				c.vidpipe(name, "worker", "worker", "--name", name, "--imgsz", "320", "--batch", "4", "--threads", "1")
			}
			cl := c.client()
			waitWorkers(b, cl, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec, _, err := cl.Submit(context.Background(), jobs.Spec{Inputs: []string{"s3://videos/clips/"}, Annotate: new(bool)})
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				done := c.waitJob(cl, rec.ID, "the end", 10*time.Minute, func(r *jobs.Record) bool { return r.State.Final() })
				wall := time.Since(t0).Seconds()
				if done.State != bus.JobSucceeded {
					b.Fatalf("job %s: %s (%s)", rec.ID, done.State, done.Error)
				}
				fps[n] = done.Stats.FPS
				b.ReportMetric(done.Stats.FPS, "frames/s")
				b.ReportMetric(float64(done.Stats.Frames)/wall, "frames/s-submit-to-done")
				b.Logf("%d workers: %d frames, %.2f frames/s (first frame to last result), %.1f s submit to done, shares %v",
					n, done.Stats.Frames, done.Stats.FPS, wall, done.Stats.WorkerShare)
			}
		})
	}
	if fps[1] > 0 && fps[2] > 0 {
		b.Logf("scaling: 2 workers run at %.2fx the frames/s of 1; efficiency %.0f%%", fps[2]/fps[1], 100*fps[2]/(2*fps[1]))
	}
}

// waitWorkers waits until n workers beat, so start-up is not measured.
func waitWorkers(tb testing.TB, cl *api.Client, n int) {
	tb.Helper()
	poll.Until(tb, 3*time.Minute, fmt.Sprintf("%d workers beating", n), func() (bool, error) {
		var live []workers.Heartbeat
		err := cl.Workers(context.Background(), &live)
		return err == nil && len(live) >= n, err
	})
}
