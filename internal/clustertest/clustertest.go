// Package clustertest deploys vidpipe on loopback as on many machines, for
// tests that need real processes to kill: standalone nats-servers (one, or a
// 3-node JetStream cluster) configured from infra/nats/nats.conf with one
// NATS user per role, versitygw, and the coordinator, ingest and worker
// processes of the vidpipe binary. The cluster tests of cmd/vidpipe and the
// fault matrix share it, so a fault is injected into the same deployment
// either way.
package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/coordinator/api"
	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/poll"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/workers"
)

// Roles are the NATS users of infra/nats/nats.conf.
var Roles = []string{"coordinator", "ingest", "worker", "admin"}

// builds holds the binaries built once per test binary.
type builds struct {
	dir, natsServer, vidpipe string
}

var (
	buildMu  sync.Mutex
	built    *builds
	buildErr error
)

// build compiles nats-server from the module vidpipe embeds (Debian's is
// too old) and, unless the caller has one, the vidpipe command.
func build(wantVidpipe bool) (*builds, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildErr != nil {
		return nil, buildErr
	}
	if built == nil {
		dir, err := os.MkdirTemp("", "vidpipe-clustertest-")
		if err != nil {
			buildErr = err
			return nil, err
		}
		built = &builds{dir: dir}
	}
	if built.natsServer == "" {
		bin := filepath.Join(built.dir, "nats-server")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build nats-server: %v\n%s", err, out)
			return nil, buildErr
		}
		built.natsServer = bin
	}
	if wantVidpipe && built.vidpipe == "" {
		bin := filepath.Join(built.dir, "vidpipe")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/vidpipe/vidpipe/cmd/vidpipe").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build vidpipe: %v\n%s", err, out)
			return nil, buildErr
		}
		built.vidpipe = bin
	}
	return built, nil
}

// RemoveBuilds deletes the binaries this package built; call it from
// TestMain after m.Run.
func RemoveBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if built != nil {
		os.RemoveAll(built.dir)
		built = nil
	}
}

// Options shape a cluster.
type Options struct {
	// Vidpipe is the vidpipe binary; empty builds one.
	Vidpipe string
	// Nodes is the number of nats-servers: 1 (default) or 3, a JetStream
	// cluster the components reach through every node's URL.
	Nodes int
	// Imgsz is the built-in model's input size for the coordinator and the
	// workers Worker starts (default 320).
	Imgsz int
}

// Cluster is one deployment. Its processes are stopped, and their logs
// shown if the test failed, when the test ends.
type Cluster struct {
	T       testing.TB
	Dir     string
	NATSURL string // every node's URL, comma-separated, as the components get it
	APIURL  string // the coordinator's, fixed at the first Coordinator call
	Token   string
	S3      *s3test.Server
	Nodes   []*Node
	Imgsz   int

	vidpipe   string
	natsBin   string
	passwords map[string]string
	mu        sync.Mutex
	procs     []*Proc
	stopped   bool
	admin     *nats.Conn
}

// Node is one nats-server of the cluster.
type Node struct {
	Name string // server_name, as JetStream names stream leaders
	Port int
	URL  string
	Conf string
	Proc *Proc
	// HTTPPort serves the server's monitoring endpoints (/healthz).
	HTTPPort int
}

// Proc is one process of the cluster, with its log in a file.
type Proc struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process exited; valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// Logged reports whether the process's log holds s so far.
func (p *Proc) Logged(s string) bool {
	b, err := os.ReadFile(p.Log)
	return err == nil && strings.Contains(string(b), s)
}

// WaitLogged waits until the process logs s, failing if it exits first.
func (c *Cluster) WaitLogged(p *Proc, s string, timeout time.Duration) {
	c.T.Helper()
	poll.Until(c.T, timeout, fmt.Sprintf("%s logging %q", p.Name, s), func() (bool, error) {
		if p.Logged(s) {
			return true, nil
		}
		select {
		case <-p.done:
			c.T.Fatalf("%s exited (%v) before logging %q", p.Name, p.err, s)
		default:
		}
		return false, nil
	})
}

// FreePort returns a loopback port nobody listens on now, chosen below
// Linux's ephemeral range (32768-60999): a port the kernel hands out for
// ":0" is also one it may give a moment later to an outgoing connection as
// its source port (a route dialling, an HTTP client), and a server started
// on it then fails with "address already in use".
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	tb.Fatal("no free loopback port between 20000 and 32000")
	return 0
}

// RepoRoot is the module's root, where infra/ lives.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Start deploys nats-server(s) and versitygw with "videos" and "results"
// buckets; the vidpipe components are started by the test. It sets the
// role passwords, the API token and the S3 credentials in the test's
// environment, which every child process inherits.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	b, err := build(opts.Vidpipe == "")
	if err != nil {
		tb.Fatal(err)
	}
	if opts.Vidpipe == "" {
		opts.Vidpipe = b.vidpipe
	}
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.Nodes != 1 && opts.Nodes != 3 {
		tb.Fatalf("clustertest: %d nodes; want 1 or 3", opts.Nodes)
	}
	if opts.Imgsz == 0 {
		opts.Imgsz = 320
	}
	c := &Cluster{
		T: tb, Dir: tb.TempDir(), Token: "test-token-" + strings.Repeat("x", 16), Imgsz: opts.Imgsz,
		vidpipe: opts.Vidpipe, natsBin: b.natsServer, passwords: map[string]string{},
	}
	tb.Cleanup(c.stopAll)
	for _, role := range Roles {
		c.passwords[role] = role + "-pw-" + fmt.Sprint(time.Now().UnixNano())
		tb.Setenv("VIDPIPE_NATS_"+strings.ToUpper(role)+"_PASSWORD", c.passwords[role])
	}
	for i := range opts.Nodes {
		port := FreePort(tb)
		c.Nodes = append(c.Nodes, &Node{Name: fmt.Sprintf("n%d", i+1), Port: port, URL: fmt.Sprintf("nats://127.0.0.1:%d", port), HTTPPort: FreePort(tb)})
	}
	routes := make([]int, len(c.Nodes))
	for i := range routes {
		routes[i] = FreePort(tb)
	}
	var urls []string
	for i, n := range c.Nodes {
		n.Conf = c.natsConfig(n, i, routes)
		urls = append(urls, n.URL)
	}
	c.NATSURL = strings.Join(urls, ",")
	for _, n := range c.Nodes {
		n.Start(c)
	}
	if opts.Nodes > 1 {
		// The components create streams at start: JetStream must have
		// elected its meta leader first.
		_, js := c.Admin()
		poll.Until(tb, time.Minute, "jetstream cluster ready", func() (bool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := js.AccountInfo(ctx)
			return err == nil, err
		})
	}

	tb.Setenv("VIDPIPE_TOKEN", c.Token)
	c.S3 = s3test.Start(tb)
	c.S3.SetEnv(tb)
	c.S3.CreateBucket(tb, "videos")
	c.S3.CreateBucket(tb, "results")
	// Cleanups run last first: this one stops the processes while S3 still
	// answers; the first, registered above, only covers a failed start.
	tb.Cleanup(c.stopAll)
	return c
}

// natsConfig is infra/nats/nats.conf, users and permissions untouched, with
// the ports and the store moved into the test's own and, on a cluster, the
// node's name and routes added.
func (c *Cluster) natsConfig(n *Node, i int, routes []int) string {
	c.T.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(c.T), "infra", "nats", "nats.conf"))
	if err != nil {
		c.T.Fatal(err)
	}
	conf := string(b)
	for old, repl := range map[string]string{
		"port: 4222":         fmt.Sprintf("port: %d", n.Port),
		"http_port: 8222":    fmt.Sprintf("http_port: %d", n.HTTPPort),
		`store_dir: "/data"`: fmt.Sprintf("store_dir: %q", filepath.Join(c.Dir, n.Name)),
	} {
		if !strings.Contains(conf, old) {
			c.T.Fatalf("infra/nats/nats.conf has no %q line", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	if len(routes) > 1 {
		var rs []string
		for j, p := range routes {
			if j != i {
				rs = append(rs, fmt.Sprintf("%q", fmt.Sprintf("nats://127.0.0.1:%d", p)))
			}
		}
		conf += fmt.Sprintf("\nserver_name: %s\ncluster {\n  name: vidpipe\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n",
			n.Name, routes[i], strings.Join(rs, ", "))
	}
	path := filepath.Join(c.Dir, n.Name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		c.T.Fatal(err)
	}
	return path
}

// Start starts the node's nats-server, on its port, configuration and
// store, and waits until it listens.
func (n *Node) Start(c *Cluster) {
	c.T.Helper()
	n.Proc = c.Start("nats-"+n.Name, "", c.natsBin, "-c", n.Conf, "-a", "127.0.0.1")
	c.WaitTCP(fmt.Sprintf("127.0.0.1:%d", n.Port), n.Proc, 20*time.Second)
}

// WaitHealthy waits until the node's /healthz answers 200: JetStream is up
// and every stream and consumer it replicates has caught up, as an
// operator checks before taking the next node down.
func (n *Node) WaitHealthy(c *Cluster, timeout time.Duration) {
	c.T.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.HTTPPort)
	client := &http.Client{Timeout: 2 * time.Second}
	poll.Until(c.T, timeout, "nats-server "+n.Name+" healthy", func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	})
}

// Restart stops the node with sig and starts it again on the same port,
// configuration and store, as a restarted server or machine comes back.
func (n *Node) Restart(c *Cluster, sig syscall.Signal) {
	c.T.Helper()
	n.Proc.Kill(c.T, sig)
	n.Start(c)
}

// WaitTCP waits until p listens on addr, failing if p exits first.
func (c *Cluster) WaitTCP(addr string, p *Proc, timeout time.Duration) {
	c.T.Helper()
	poll.Until(c.T, timeout, p.Name+" listening on "+addr, func() (bool, error) {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.Log)
			c.T.Fatalf("%s exited (%v) before listening on %s:\n%s", p.Name, p.err, addr, tail(b, 4000))
		default:
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	})
}

// Start runs a process; role, when set, is the vidpipe component's NATS
// user, and it gets the cluster's NATS, S3 and API settings.
func (c *Cluster) Start(name, role, bin string, args ...string) *Proc {
	c.T.Helper()
	c.mu.Lock()
	// A restarted process keeps the name; its log gets a new file.
	logName := name
	for i := 2; ; i++ {
		if _, err := os.Stat(filepath.Join(c.Dir, logName+".log")); errors.Is(err, os.ErrNotExist) {
			break
		}
		logName = fmt.Sprintf("%s.%d", name, i)
	}
	c.mu.Unlock()
	p := &Proc{Name: logName, Log: filepath.Join(c.Dir, logName+".log"), done: make(chan struct{})}
	f, err := os.Create(p.Log)
	if err != nil {
		c.T.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = os.Environ()
	if role != "" {
		p.cmd.Env = append(p.cmd.Env,
			"VIDPIPE_NATS="+c.NATSURL, "VIDPIPE_NATS_USER="+role, "VIDPIPE_NATS_PASSWORD="+c.passwords[role],
			"VIDPIPE_S3_ENDPOINT="+c.S3.Endpoint, "VIDPIPE_TOKEN="+c.Token)
	}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		c.T.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// Procs are the processes started so far, in order.
func (c *Cluster) Procs() []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Proc(nil), c.procs...)
}

// Vidpipe starts a vidpipe component as NATS user role.
func (c *Cluster) Vidpipe(name, role string, args ...string) *Proc {
	return c.Start(name, role, c.vidpipe, args...)
}

// Coordinator starts a coordinator and waits for its API. Its defaults
// (--ack-wait 5s, --out s3://results/jobs, the cluster's --imgsz) give way
// to the same flags in extra; the videos and results buckets are always
// allowed.
func (c *Cluster) Coordinator(name string, extra ...string) *Proc {
	c.T.Helper()
	if c.APIURL == "" {
		c.APIURL = fmt.Sprintf("http://127.0.0.1:%d", FreePort(c.T))
	}
	args := []string{"coordinator", "--listen", strings.TrimPrefix(c.APIURL, "http://"), "--bucket", "videos", "--bucket", "results"}
	args = append(args, withDefaults(extra, "--out", "s3://results/jobs", "--ack-wait", "5s", "--imgsz", fmt.Sprint(c.Imgsz))...)
	p := c.Vidpipe(name, "coordinator", args...)
	// The first start of a size builds and caches the built-in model.
	c.WaitTCP(strings.TrimPrefix(c.APIURL, "http://"), p, 3*time.Minute)
	return p
}

// Ingest starts an ingest process (--concurrency 1 unless extra says).
func (c *Cluster) Ingest(name string, extra ...string) *Proc {
	return c.Vidpipe(name, "ingest", append([]string{"ingest"}, withDefaults(extra, "--concurrency", "1")...)...)
}

// Worker starts a worker process named name: one ONNX Runtime thread,
// batches of 2 and the cluster's --imgsz unless extra says.
func (c *Cluster) Worker(name string, extra ...string) *Proc {
	return c.Vidpipe(name, "worker", append([]string{"worker", "--name", name},
		withDefaults(extra, "--imgsz", fmt.Sprint(c.Imgsz), "--batch", "2", "--threads", "1")...)...)
}

// withDefaults appends each flag/value pair of defaults that args lacks.
func withDefaults(args []string, defaults ...string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(defaults); i += 2 {
		flag, given := defaults[i], false
		for _, a := range args {
			if a == flag || strings.HasPrefix(a, flag+"=") {
				given = true
			}
		}
		if !given {
			out = append(out, flag, defaults[i+1])
		}
	}
	return out
}

// Client is an API client for the coordinator.
func (c *Cluster) Client() *api.Client {
	c.T.Helper()
	cl, err := api.NewClient(c.APIURL, c.Token)
	if err != nil {
		c.T.Fatal(err)
	}
	return cl
}

// Admin is a connection as the admin user, reconnecting forever, for what
// an operator reads or does with the nats CLI; closed when the test ends.
func (c *Cluster) Admin() (*nats.Conn, jetstream.JetStream) {
	c.T.Helper()
	if c.admin == nil {
		nc, err := nats.Connect(c.NATSURL, nats.UserInfo("admin", c.passwords["admin"]),
			nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			c.T.Fatalf("connect as admin: %v", err)
		}
		c.admin = nc
	}
	js, err := jetstream.New(c.admin)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.admin, js
}

// Kill sends sig and waits for the process to exit.
func (p *Proc) Kill(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		tb.Fatalf("%s still running 60 s after %v", p.Name, sig)
	}
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	if c.admin != nil {
		c.admin.Close()
	}
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
	// VIDPIPE_CLUSTER_LOGS=dir keeps every process's log, passed or failed.
	if dir := os.Getenv("VIDPIPE_CLUSTER_LOGS"); dir != "" {
		keep := filepath.Join(dir, strings.ReplaceAll(c.T.Name(), "/", "_"))
		if err := os.MkdirAll(keep, 0o755); err == nil {
			for _, p := range c.procs {
				if b, err := os.ReadFile(p.Log); err == nil {
					_ = os.WriteFile(filepath.Join(keep, p.Name+".log"), b, 0o644)
				}
			}
		}
	}
	if c.T.Failed() {
		for _, p := range c.procs {
			b, _ := os.ReadFile(p.Log)
			c.T.Logf("---- %s (exit %v) ----\n%s", p.Name, p.err, tail(b, 4000))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// WaitJob polls the job until cond holds; the API must answer throughout
// except while the coordinator restarts.
func (c *Cluster) WaitJob(cl *api.Client, id, what string, timeout time.Duration, cond func(*jobs.Record) bool) *jobs.Record {
	c.T.Helper()
	var rec *jobs.Record
	poll.Until(c.T, timeout, "job "+id+": "+what, func() (bool, error) {
		r, err := cl.Get(context.Background(), id)
		if err != nil {
			return false, err
		}
		rec = r
		return cond(r), fmt.Errorf("state %s, %d of %d frames, error %q", r.State, r.Progress.Done, r.Progress.Total, r.Error)
	})
	return rec
}

// WaitWorkers waits until n workers beat.
func (c *Cluster) WaitWorkers(cl *api.Client, n int) {
	c.T.Helper()
	poll.Until(c.T, 3*time.Minute, fmt.Sprintf("%d workers beating", n), func() (bool, error) {
		var live []workers.Heartbeat
		err := cl.Workers(context.Background(), &live)
		return err == nil && len(live) >= n, fmt.Errorf("%d beating (%v)", len(live), err)
	})
}

// ConnectedNode is the node holding the client connection named name
// (vidpipe-coordinator, vidpipe-ingest...), read from each node's /connz.
func (c *Cluster) ConnectedNode(name string) (*Node, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, n := range c.Nodes {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/connz?limit=1024", n.HTTPPort))
		if err != nil {
			continue // a node that is down holds no connection
		}
		var connz struct {
			Connections []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		err = json.NewDecoder(resp.Body).Decode(&connz)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("connz of %s: %w", n.Name, err)
		}
		for _, cn := range connz.Connections {
			if cn.Name == name {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("no node holds a connection named %q", name)
}

// MoveLeader asks stream's leader to step down in favour of node, as
// `nats stream cluster step-down --preferred` does.
func (c *Cluster) MoveLeader(stream string, to *Node) error {
	nc, _ := c.Admin()
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to.Name}})
	msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
	if err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	if !resp.Success {
		return fmt.Errorf("step down %s to %s: %+v", stream, to.Name, resp.Error)
	}
	return nil
}
