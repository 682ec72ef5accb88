package infra

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Paths of the deployment files, relative to this package's directory, where
// `go test` runs.
var (
	repoRoot    = ".."
	composeFile = filepath.Join(repoRoot, "docker-compose.yml")
	dockerfile  = filepath.Join("docker", "Dockerfile")
	natsConf    = filepath.Join("nats", "nats.conf")
	k8sDir      = "k8s"
)

// readFile returns a deployment file's contents or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// vidpipeFlags are the long flags that cmd/vidpipe registers (kingpin's
// Flag("name", ...)), so a misspelt flag in a deployment file is caught
// here rather than by a crash-looping container.
func vidpipeFlags(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "cmd", "vidpipe", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("list cmd/vidpipe: %v", err)
	}
	re := regexp.MustCompile(`\.Flag\("([a-z0-9-]+)"`)
	flags := map[string]bool{"help": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, m := range re.FindAllSubmatch(readFile(t, f), -1) {
			flags[string(m[1])] = true
		}
	}
	return flags
}

// checkFlags reports every --flag of a vidpipe command line that vidpipe
// does not register.
func checkFlags(t *testing.T, where string, args []string, known map[string]bool) {
	t.Helper()
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !known[name] {
			t.Errorf("%s: vidpipe has no flag --%s", where, name)
		}
	}
}
