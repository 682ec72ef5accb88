package infra

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// parseDockerfile parses infra/docker/Dockerfile with BuildKit's own parser;
// parse warnings and lint findings fail the test as errors would.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, dockerfile)))
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfile, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: %s", dockerfile, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("%s:%d: %s: %s", dockerfile, line, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfile, err)
	}
	return stages
}

// image is what a build target ends up with: its stage and every stage it
// is based on, in order.
type image struct {
	name   string
	chain  []instructions.Stage
	env    map[string]string
	user   string
	entry  []string
	copies []*instructions.CopyCommand
}

func target(t *testing.T, stages []instructions.Stage, name string) *image {
	t.Helper()
	byName := map[string]instructions.Stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	var chain []instructions.Stage
	for n := name; ; {
		s, ok := byName[n]
		if !ok {
			break
		}
		chain = append([]instructions.Stage{s}, chain...)
		n = s.BaseName
	}
	if len(chain) == 0 {
		t.Fatalf("%s has no stage %s", dockerfile, name)
	}
	img := &image{name: name, chain: chain, env: map[string]string{}}
	for _, s := range chain {
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					img.env[kv.Key] = kv.Value
				}
			case *instructions.UserCommand:
				img.user = c.User
			case *instructions.EntrypointCommand:
				img.entry = c.CmdLine
			case *instructions.CopyCommand:
				img.copies = append(img.copies, c)
			}
		}
	}
	return img
}

func TestDockerfileStages(t *testing.T) {
	stages := parseDockerfile(t)
	seen := map[string]bool{}
	for _, s := range stages {
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" && !seen[cp.From] {
				t.Errorf("stage %s copies from %q, not an earlier stage", s.Name, cp.From)
			}
		}
		seen[s.Name] = true
	}
	// A plain `docker build` makes the last stage: it must be the CPU image,
	// not one that pulls CUDA.
	if last := stages[len(stages)-1].Name; last != "cpu" {
		t.Errorf("last stage %q, want cpu as the default target", last)
	}
}

func TestDockerImages(t *testing.T) {
	stages := parseDockerfile(t)
	for _, name := range []string{"cpu", "gpu"} {
		t.Run(name, func(t *testing.T) {
			img := target(t, stages, name)
			if !slices.Equal(img.entry, []string{"vidpipe"}) {
				t.Errorf("entrypoint %q, want [vidpipe]", img.entry)
			}
			// Numeric, so Kubernetes can verify runAsNonRoot.
			uid, err := strconv.Atoi(strings.Split(img.user, ":")[0])
			if err != nil || uid == 0 {
				t.Errorf("user %q, want a numeric non-root uid", img.user)
			}
			ortLib := img.env["VIDPIPE_ORT_LIB"]
			if path.Base(ortLib) != "libonnxruntime.so.1" {
				t.Errorf("VIDPIPE_ORT_LIB %q, want a libonnxruntime.so.1", ortLib)
			}
			if img.env["VIDPIPE_CACHE"] == "" {
				t.Error("VIDPIPE_CACHE unset: the cache would land in the home directory")
			}
			ortFrom := ""
			for _, c := range img.copies {
				if strings.TrimSuffix(c.DestPath, "/") == path.Dir(ortLib) {
					ortFrom = c.From
				}
			}
			if want := "ort-" + name; ortFrom != want {
				t.Errorf("%s gets from %q, want %s", path.Dir(ortLib), ortFrom, want)
			}
		})
	}

	gpu := target(t, stages, "gpu")
	ld := strings.Split(gpu.env["LD_LIBRARY_PATH"], ":")
	for _, c := range gpu.copies {
		if c.From == "cuda" && !slices.Contains(ld, strings.TrimSuffix(c.DestPath, "/")) {
			t.Errorf("CUDA libraries copied to %s, not on LD_LIBRARY_PATH %v", c.DestPath, ld)
		}
	}
	if !strings.Contains(gpu.env["NVIDIA_DRIVER_CAPABILITIES"], "compute") || gpu.env["NVIDIA_VISIBLE_DEVICES"] == "" {
		t.Errorf("NVIDIA_DRIVER_CAPABILITIES %q and NVIDIA_VISIBLE_DEVICES %q: the container toolkit would give no CUDA", gpu.env["NVIDIA_DRIVER_CAPABILITIES"], gpu.env["NVIDIA_VISIBLE_DEVICES"])
	}
}

// The CPU image must carry the ONNX Runtime that scripts/setup.sh installs
// and the tests run against.
func TestDockerfileORTVersion(t *testing.T) {
	m := regexp.MustCompile(`(?m)^ort_version=(\S+)$`).FindSubmatch(readFile(t, repoRoot+"/scripts/setup.sh"))
	if m == nil {
		t.Fatal("no ort_version= in scripts/setup.sh")
	}
	want := fmt.Sprintf("onnxruntime-node@%s", m[1])
	for _, s := range parseDockerfile(t) {
		if s.Name != "ort-cpu" {
			continue
		}
		for _, c := range s.Commands {
			if run, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(run.CmdLine, " "), want) {
				return
			}
		}
	}
	t.Errorf("stage ort-cpu does not fetch %s", want)
}
