package infra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vidpipe/vidpipe/bus"
)

// natsRoles are the users of nats.conf and the variables their passwords
// come from, as docker-compose.yml and the Kubernetes manifests set them.
var natsRoles = []struct{ user, env string }{
	{"coordinator", "VIDPIPE_NATS_COORDINATOR_PASSWORD"},
	{"ingest", "VIDPIPE_NATS_INGEST_PASSWORD"},
	{"worker", "VIDPIPE_NATS_WORKER_PASSWORD"},
	{"admin", "VIDPIPE_NATS_ADMIN_PASSWORD"},
}

// natsAccount is the account every vidpipe user lives in; KEDA's trigger
// must name it.
const natsAccount = "VIDPIPE"

// rawFrameBytes is a raw letterboxed 640x640 RGB frame, the largest message
// vidpipe publishes by default.
const rawFrameBytes = 640 * 640 * 3

func password(user string) string { return "test-" + user + "-password" }

func setNATSPasswords(t *testing.T) {
	t.Helper()
	for _, r := range natsRoles {
		t.Setenv(r.env, password(r.user))
	}
}

func TestNATSConfig(t *testing.T) {
	setNATSPasswords(t)
	opts, err := server.ProcessConfigFile(natsConf)
	if err != nil {
		t.Fatalf("process %s: %v", natsConf, err)
	}
	if opts.MaxPayload < rawFrameBytes {
		t.Errorf("max_payload %d is below a raw 640x640 frame (%d bytes)", opts.MaxPayload, rawFrameBytes)
	}
	if opts.MaxPayload != 8<<20 {
		t.Errorf("max_payload %d, want 8 MiB as vidpipe's embedded server and frames stream", opts.MaxPayload)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("jetstream %v with store_dir %q, want enabled in /data (the volume)", opts.JetStream, opts.StoreDir)
	}
	if opts.Port != 4222 || opts.HTTPPort != 8222 {
		t.Errorf("ports %d and monitoring %d, want 4222 and 8222 (probes and KEDA)", opts.Port, opts.HTTPPort)
	}
	for _, r := range natsRoles {
		t.Run(r.user, func(t *testing.T) {
			var u *server.User
			for _, cand := range opts.Users {
				if cand.Username == r.user {
					u = cand
				}
			}
			if u == nil {
				t.Fatalf("no user %s in %s", r.user, natsConf)
			}
			if u.Password != password(r.user) {
				t.Errorf("password of %s does not come from $%s", r.user, r.env)
			}
			if u.Account == nil || u.Account.Name != natsAccount {
				t.Errorf("user %s is not in account %s", r.user, natsAccount)
			}
			if restricted := u.Permissions != nil; restricted != (r.user != "admin") {
				t.Errorf("user %s: restricted %v, want only admin unrestricted", r.user, restricted)
			}
		})
	}
}

// An unset password must stop the server instead of leaving a user open.
func TestNATSConfigNeedsEveryPassword(t *testing.T) {
	for _, r := range natsRoles {
		t.Run(r.env, func(t *testing.T) {
			setNATSPasswords(t)
			os.Unsetenv(r.env) // t.Setenv restores it after the test
			_, err := server.ProcessConfigFile(natsConf)
			if err == nil || !strings.Contains(err.Error(), r.env) {
				t.Fatalf("process %s without $%s: %v, want an error naming it", natsConf, r.env, err)
			}
		})
	}
}

// TestNATSRoles runs one small job's worth of real client calls through a
// server started from nats.conf: each role can do what vidpipe needs, and a
// role's forbidden publishes and subscriptions are refused by the server.
func TestNATSRoles(t *testing.T) {
	srv := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, user := range []string{"", "worker"} {
		pw := "wrong"
		if user == "" {
			pw = ""
		}
		if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, pw)); err == nil {
			nc.Close()
			t.Fatalf("connect as %q with password %q: accepted, want an authorization error", user, pw)
		}
	}

	coord := dial(t, srv, "coordinator")
	ingest := dial(t, srv, "ingest")
	worker := dial(t, srv, "worker")
	const job, video, frames = "j1", "v1", 3

	t.Run("coordinator creates the topology and submits a job", func(t *testing.T) {
		if err := bus.Setup(ctx, coord.js, bus.DefaultStreamOptions()); err != nil {
			t.Fatalf("setup: %v", err)
		}
		jobs, err := coord.js.KeyValue(ctx, bus.JobsBucket)
		if err != nil {
			t.Fatalf("bind %s: %v", bus.JobsBucket, err)
		}
		if _, err := jobs.Put(ctx, job, []byte(`{"id":"j1"}`)); err != nil {
			t.Fatalf("put job: %v", err)
		}
		if _, err := coord.js.Publish(ctx, bus.VideoSubject(job, video), []byte(`{}`)); err != nil {
			t.Fatalf("publish video task: %v", err)
		}
		sub, err := coord.nc.SubscribeSync(bus.MaxDeliveriesAdvisory)
		if err != nil {
			t.Fatalf("subscribe advisories: %v", err)
		}
		defer sub.Unsubscribe()
		coord.settle(t)
	})

	t.Run("ingest decodes a video", func(t *testing.T) {
		cancels, err := ingest.nc.SubscribeSync(bus.ControlSubject + ".>")
		if err != nil {
			t.Fatalf("subscribe control: %v", err)
		}
		cons, err := bus.Await(ctx, ingest.js, bus.VideosStream, bus.IngestConsumer, nil)
		if err != nil {
			t.Fatalf("await ingest consumer: %v", err)
		}
		task := fetchOne(t, cons)
		if err := task.InProgress(); err != nil {
			t.Fatalf("progress: %v", err)
		}
		jobs, err := ingest.js.KeyValue(ctx, bus.JobsBucket)
		if err != nil {
			t.Fatalf("bind %s: %v", bus.JobsBucket, err)
		}
		if _, err := jobs.Get(ctx, job); err != nil {
			t.Fatalf("get job: %v", err)
		}
		if _, err := ingest.js.Stream(ctx, bus.FramesStream); err != nil {
			t.Fatalf("frames stream info: %v", err)
		}
		frame := make([]byte, rawFrameBytes)
		for seq := range frames {
			if _, err := ingest.js.Publish(ctx, bus.FrameSubject(job, video), frame, jetstream.WithMsgID(bus.MsgID(job, video, seq))); err != nil {
				t.Fatalf("publish raw frame %d: %v", seq, err)
			}
		}
		if _, err := ingest.js.Publish(ctx, bus.EventSubject(job, video), []byte(`{}`)); err != nil {
			t.Fatalf("publish event: %v", err)
		}
		if err := task.DoubleAck(ctx); err != nil {
			t.Fatalf("ack task: %v", err)
		}
		if err := coord.nc.Publish(bus.CancelSubject(job), nil); err != nil {
			t.Fatalf("publish cancel: %v", err)
		}
		if _, err := cancels.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("cancel notice did not reach ingest: %v", err)
		}
		ingest.settle(t)
		coord.settle(t)
	})

	t.Run("KEDA reads the workers lag", func(t *testing.T) {
		checkKEDALag(t, srv, frames)
	})

	t.Run("worker analyses a frame", func(t *testing.T) {
		hb, err := worker.js.KeyValue(ctx, bus.WorkersBucket)
		if err != nil {
			t.Fatalf("bind %s: %v", bus.WorkersBucket, err)
		}
		if _, err := hb.Put(ctx, "w1", []byte(`{}`)); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		cons, err := bus.Await(ctx, worker.js, bus.FramesStream, bus.WorkersConsumer, nil)
		if err != nil {
			t.Fatalf("await workers consumer: %v", err)
		}
		msg := fetchOne(t, cons)
		if _, err := worker.js.Publish(ctx, bus.ResultSubject(job, video), []byte(`{}`)); err != nil {
			t.Fatalf("publish result: %v", err)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("ack frame: %v", err)
		}
		worker.settle(t)
		checkKEDALag(t, srv, frames-1)
	})

	refusals := []struct {
		name      string
		c         *natsClient
		subscribe bool
		subject   string
	}{
		{"worker publishes frames", worker, false, bus.FrameSubject(job, video)},
		{"worker publishes events", worker, false, bus.EventSubject(job, video)},
		{"worker creates a stream", worker, false, "$JS.API.STREAM.CREATE.X"},
		{"worker deletes the frames stream", worker, false, "$JS.API.STREAM.DELETE." + bus.FramesStream},
		{"worker takes video tasks", worker, false, "$JS.API.CONSUMER.MSG.NEXT." + bus.VideosStream + "." + bus.IngestConsumer},
		{"worker reads job records", worker, false, "$JS.API.DIRECT.GET.KV_" + bus.JobsBucket + ".$KV." + bus.JobsBucket + "." + job},
		{"worker writes job records", worker, false, "$KV." + bus.JobsBucket + "." + job},
		{"worker cancels a job", worker, false, bus.CancelSubject(job)},
		{"worker reads results", worker, true, bus.ResultsSubject + ".>"},
		{"worker listens to everything", worker, true, ">"},
		{"ingest publishes results", ingest, false, bus.ResultSubject(job, video)},
		{"ingest creates a stream", ingest, false, "$JS.API.STREAM.CREATE.X"},
		{"ingest purges the frames stream", ingest, false, "$JS.API.STREAM.PURGE." + bus.FramesStream},
		{"ingest takes frames", ingest, false, "$JS.API.CONSUMER.MSG.NEXT." + bus.FramesStream + "." + bus.WorkersConsumer},
		{"ingest writes job records", ingest, false, "$KV." + bus.JobsBucket + "." + job},
		{"ingest fakes a heartbeat", ingest, false, "$KV." + bus.WorkersBucket + ".w1"},
		{"ingest reads results", ingest, true, bus.ResultsSubject + ".>"},
		// Every JetStream answer lands on an inbox: job records, video
		// tasks with their sources, replayed results, other workers' frames.
		{"worker reads every inbox", worker, true, "_INBOX.>"},
		{"worker reads the coordinator's inbox", worker, true, bus.InboxPrefix(bus.RoleCoordinator) + ".>"},
		{"worker reads ingest's inbox", worker, true, bus.InboxPrefix(bus.RoleIngest) + ".>"},
		{"ingest reads every inbox", ingest, true, "_INBOX.>"},
		{"ingest reads the coordinator's inbox", ingest, true, bus.InboxPrefix(bus.RoleCoordinator) + ".>"},
		{"ingest reads the workers' inbox", ingest, true, bus.InboxPrefix(bus.RoleWorker) + ".>"},
		{"coordinator reads every inbox", coord, true, "_INBOX.>"},
		{"coordinator fakes a heartbeat", coord, false, "$KV." + bus.WorkersBucket + ".w1"},
		{"coordinator leaves vidpipe's subjects", coord, false, "other.subject"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if tc.subscribe {
				sub, err := tc.c.nc.Subscribe(tc.subject, func(*nats.Msg) {})
				if err != nil {
					t.Fatalf("subscribe %s: %v", tc.subject, err)
				}
				defer sub.Unsubscribe()
			} else if err := tc.c.nc.Publish(tc.subject, []byte(`{}`)); err != nil {
				t.Fatalf("publish %s: %v", tc.subject, err)
			}
			tc.c.expectRefused(t, tc.subject)
		})
	}

	// Through the JetStream API the refused request gets no answer, so the
	// test waits for the server's refusal, not for a timeout, and then
	// checks that nothing was created.
	t.Run("worker cannot create a stream through the API", func(t *testing.T) {
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := worker.js.CreateStream(rctx, jetstream.StreamConfig{Name: "X", Subjects: []string{"x.>"}})
			done <- err
		}()
		worker.expectRefused(t, "$JS.API.STREAM.CREATE.X")
		rcancel()
		if err := <-done; err == nil {
			t.Fatal("create stream X as worker: no error")
		}
		if _, err := coord.js.Stream(ctx, "X"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("stream X after a refused create: %v, want not found", err)
		}
	})

	t.Run("admin may do anything", func(t *testing.T) {
		admin := dial(t, srv, "admin")
		if _, err := admin.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ADMIN", Subjects: []string{"admin.>"}, MaxBytes: 1 << 20}); err != nil {
			t.Fatalf("create stream: %v", err)
		}
		if err := admin.js.DeleteStream(ctx, "ADMIN"); err != nil {
			t.Fatalf("delete stream: %v", err)
		}
		if _, err := admin.nc.SubscribeSync(">"); err != nil {
			t.Fatalf("subscribe >: %v", err)
		}
		if err := admin.nc.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		select {
		case err := <-admin.errs:
			t.Fatalf("admin got %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

// startNATS runs a server from nats.conf on free loopback ports with its
// store in a temporary directory; the accounts, users, permissions and
// limits are the file's own.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	return startNATSWith(t, nil)
}

// startNATSWith is startNATS with the file's options changed by edit first.
func startNATSWith(t *testing.T, edit func(*server.Options)) *server.Server {
	t.Helper()
	setNATSPasswords(t)
	opts, err := server.ProcessConfigFile(natsConf)
	if err != nil {
		t.Fatalf("process %s: %v", natsConf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	if edit != nil {
		edit(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("new server from %s: %v", natsConf, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats server from %s not ready", natsConf)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// natsClient is one role's connection; errs receives every asynchronous
// error the server sends, permission violations included.
type natsClient struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

// dial connects as user with the inbox prefix vidpipe's processes of that
// role use (bus.InboxOption); admin keeps the default one.
func dial(t *testing.T, srv *server.Server, user string) *natsClient {
	t.Helper()
	c := &natsClient{errs: make(chan error, 256)}
	inbox := func(*nats.Options) error { return nil }
	if user != "admin" {
		var err error
		if inbox, err = bus.InboxOption(bus.Role(user)); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("infra-test-"+user), inbox,
		nats.UserInfo(user, password(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.errs <- err }))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatalf("jetstream as %s: %v", user, err)
	}
	c.nc = nc
	return c
}

func isRefusal(err error, subject string) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`)
}

// expectRefused waits for the server's permissions violation naming
// subject; any other error first fails the test.
func (c *natsClient) expectRefused(t *testing.T, subject string) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	select {
	case err := <-c.errs:
		if !isRefusal(err, subject) {
			t.Fatalf("got %v, want a permissions violation for %q", err, subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no permissions violation for %q: the server allowed it", subject)
	}
}

// settle proves the client has had no error so far. The server answers a
// client's operations in order and the client calls its error handler in
// order, so once the refusal of a publish that no role may make arrives,
// every earlier error has arrived too.
func (c *natsClient) settle(t *testing.T) {
	t.Helper()
	const probe = "infra.test.probe"
	if err := c.nc.Publish(probe, nil); err != nil {
		t.Fatalf("publish probe: %v", err)
	}
	c.expectRefused(t, probe)
}

func fetchOne(t *testing.T, cons jetstream.Consumer) jetstream.Msg {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var got jetstream.Msg
	for msg := range batch.Messages() {
		got = msg
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got == nil {
		t.Fatal("fetch: no message")
	}
	return got
}

// jsz is the part of the monitoring endpoint's /jsz answer that KEDA's
// nats-jetstream scaler reads (pkg/scalers/nats_jetstream_scaler.go in
// kedacore/keda): lag = num_pending + num_ack_pending of the consumer.
type jsz struct {
	Accounts []struct {
		Name    string `json:"name"`
		Streams []struct {
			Name      string `json:"name"`
			Consumers []struct {
				Name          string `json:"name"`
				NumPending    int    `json:"num_pending"`
				NumAckPending int    `json:"num_ack_pending"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// checkKEDALag queries the server's monitoring endpoint exactly as KEDA does
// with the worker ScaledObject's trigger metadata, and checks that it finds
// the consumer and sees want frames of lag.
func checkKEDALag(t *testing.T, srv *server.Server, want int) {
	t.Helper()
	md := workerTrigger(t).Metadata
	url := fmt.Sprintf("http://%s/jsz?acc=%s&consumers=true&config=true", srv.MonitorAddr(), md["account"])
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	var z jsz
	if err := json.NewDecoder(resp.Body).Decode(&z); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	for _, a := range z.Accounts {
		if a.Name != md["account"] {
			continue
		}
		for _, s := range a.Streams {
			if s.Name != md["stream"] {
				continue
			}
			for _, c := range s.Consumers {
				if c.Name == md["consumer"] {
					if lag := c.NumPending + c.NumAckPending; lag != want {
						t.Fatalf("KEDA would see lag %d, want %d", lag, want)
					}
					return
				}
			}
		}
	}
	t.Fatalf("%s has no account %q with stream %q and consumer %q: KEDA would find nothing to scale on", url, md["account"], md["stream"], md["consumer"])
}
