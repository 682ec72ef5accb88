package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/internal/clustertest"
)

// binary is the vidpipe command built once for these tests: they run it as
// a user would.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(runArgsEnv) != "" { // TestRunChild runs vidpipe in-process
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "vidpipe-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "vidpipe")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build vidpipe: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	clustertest.RemoveBuilds()
	os.RemoveAll(dir)
	os.Exit(code)
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("atoi %q: %v", s, err)
	}
	return n
}

// vidpipe runs the binary and returns its exit code, stdout and stderr.
func vidpipe(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "panic:") {
		t.Fatalf("vidpipe %v panicked:\n%s", args, stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
