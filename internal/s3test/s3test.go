// Package s3test runs a real versitygw S3 server (posix backend) on loopback
// for tests, and a fault-injecting proxy to put in front of it.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a running versitygw. Its root credentials are random per server.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the posix backend's root: one folder per bucket

	t       testing.TB
	bin     string
	logPath string
	cmd     *exec.Cmd
	exited  chan error
}

// Binary returns the versitygw executable: $VERSITYGW, else
// $(go env GOPATH)/bin/versitygw, else the one on PATH.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			p := filepath.Join(dir, "bin", "versitygw")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return exec.LookPath("versitygw")
}

// Start runs versitygw on a free loopback port with its data in t.TempDir(),
// waits until it answers HTTP, and kills it when the test ends. A missing
// binary fails the test: run scripts/setup.sh --test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("versitygw not found (%v): run scripts/setup.sh --test", err)
	}
	dir := t.TempDir()
	s := &Server{
		AccessKey: "vgw" + randHex(8),
		SecretKey: randHex(20),
		Region:    "us-east-1",
		Dir:       filepath.Join(dir, "root"),
	}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "versitygw.log")
	// The port is picked by the kernel, then handed over; another process can
	// take it in between, so a start that dies early is tried again.
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		cmd, exited, err := launch(bin, addr, s, logPath)
		if err != nil {
			t.Fatal(err)
		}
		s.Endpoint = "http://" + addr
		if err := waitReady(s.Endpoint, exited, 15*time.Second); err != nil {
			stop(cmd, exited)
			lastErr = err
			continue
		}
		s.t, s.bin, s.logPath, s.cmd, s.exited = t, bin, logPath, cmd, exited
		t.Cleanup(s.Stop)
		return s
	}
	logTail, _ := os.ReadFile(logPath)
	t.Fatalf("start versitygw: %v\nlog:\n%s", lastErr, tail(logTail, 2000))
	return nil
}

// Stop kills the server, as an outage does: its data stay in Dir, and
// Restart brings it back on the same port. Stopping twice is harmless.
func (s *Server) Stop() {
	if s.cmd != nil {
		stop(s.cmd, s.exited)
		s.cmd = nil
	}
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("s3test: Restart of a running server")
	}
	addr := strings.TrimPrefix(s.Endpoint, "http://")
	cmd, exited, err := launch(s.bin, addr, s, s.logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := waitReady(s.Endpoint, exited, 15*time.Second); err != nil {
		stop(cmd, exited)
		logTail, _ := os.ReadFile(s.logPath)
		s.t.Fatalf("restart versitygw on %s: %v\nlog:\n%s", addr, err, tail(logTail, 2000))
	}
	s.cmd, s.exited = cmd, exited
}

func launch(bin, addr string, s *Server, logPath string) (*exec.Cmd, chan error, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--port", addr, "--keep-alive", "--quiet", "posix", s.Dir)
	// Credentials go through the environment, not argv, so they stay out of
	// process listings; inherited VGW_* settings could change the server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey, "VGW_REGION="+s.Region)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, nil
}

func stop(cmd *exec.Cmd, exited chan error) {
	_ = cmd.Process.Kill()
	<-exited
}

// waitReady polls until the server answers any HTTP response (an anonymous
// request gets 403, which proves the S3 router is up).
func waitReady(endpoint string, exited chan error, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err // stop() reads it again
			return fmt.Errorf("versitygw exited early: %v", err)
		default:
		}
		resp, err := client.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw at %s not ready after %v", endpoint, timeout)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Client returns an S3 client for the server with its root credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates bucket name.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// SetEnv points AWS's default credential chain at the server for the rest of
// the test, shutting out the developer's own profiles and IMDS.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	SetCredentialsEnv(t, s.AccessKey, s.SecretKey, s.Region)
}

// SetCredentialsEnv sets the AWS environment to exactly these credentials.
func SetCredentialsEnv(t testing.TB, accessKey, secretKey, region string) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           accessKey,
		"AWS_SECRET_ACCESS_KEY":       secretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_S3":         "",
	} {
		t.Setenv(k, v)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
