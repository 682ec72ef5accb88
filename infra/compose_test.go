package infra

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml as `docker compose` does (schema
// validation, interpolation, merge keys, profiles), with env as the only
// environment.
func loadCompose(t *testing.T, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(repoRoot), cli.WithName("vidpipe"),
		cli.WithEnv(env), cli.WithProfiles(profiles), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return opts.LoadProject(ctx)
}

func mustLoadCompose(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	p, err := loadCompose(t, append([]string{"VIDPIPE_TOKEN=test-token"}, env...), profiles...)
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("%s has no service %s (profiles %v)", composeFile, name, p.Profiles)
	}
	return s
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// flag returns the value after name in a command line.
func flag(cmd []string, name string) string {
	if i := slices.Index(cmd, name); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

func gpuRequests(s types.ServiceConfig) []types.DeviceRequest {
	if s.Deploy == nil || s.Deploy.Resources.Reservations == nil {
		return nil
	}
	return s.Deploy.Resources.Reservations.Devices
}

func TestComposeServices(t *testing.T) {
	p := mustLoadCompose(t, nil, "*")
	for _, name := range []string{"nats", "s3", "s3-init", "coordinator", "ingest", "worker", "worker-cpu"} {
		service(t, p, name)
	}

	nats := service(t, p, "nats")
	conf, err := filepath.Abs(natsConf)
	if err != nil {
		t.Fatal(err)
	}
	mounted := slices.ContainsFunc(nats.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && v.Source == conf && v.Target == flag(nats.Command, "-c")
	})
	if !mounted {
		t.Errorf("nats runs %q without %s mounted there", nats.Command, natsConf)
	}
	if !slices.ContainsFunc(nats.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeVolume && v.Target == "/data" }) {
		t.Error("no volume at /data, nats.conf's store_dir: JetStream would lose its streams on recreate")
	}

	for _, name := range []string{"nats", "s3", "coordinator", "ingest", "worker", "worker-cpu"} {
		if s := service(t, p, name); s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck for depends_on to wait on", name)
		}
	}
	deps := map[string]map[string]string{
		"s3-init":     {"s3": types.ServiceConditionHealthy},
		"coordinator": {"nats": types.ServiceConditionHealthy, "s3-init": types.ServiceConditionCompletedSuccessfully},
		"ingest":      {"nats": types.ServiceConditionHealthy, "coordinator": types.ServiceConditionHealthy},
		"worker":      {"nats": types.ServiceConditionHealthy, "coordinator": types.ServiceConditionHealthy},
		"worker-cpu":  {"nats": types.ServiceConditionHealthy, "coordinator": types.ServiceConditionHealthy},
	}
	for name, want := range deps {
		s := service(t, p, name)
		for dep, cond := range want {
			if got := s.DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with condition %q, want %q", name, dep, got, cond)
			}
		}
	}

	if r := service(t, p, "ingest").Deploy; r == nil || r.Replicas == nil || *r.Replicas != 2 {
		t.Error("ingest does not run 2 replicas")
	}
	for _, name := range []string{"coordinator", "ingest", "worker", "worker-cpu"} {
		if g := service(t, p, name).StopGracePeriod; g == nil || time.Duration(*g) < 60*time.Second {
			t.Errorf("%s stop_grace_period %v, want at least 60s to drain", name, g)
		}
	}
}

// vidpipe services: the subcommand they run and their NATS user.
var composeRoles = map[string]string{
	"coordinator": "coordinator",
	"ingest":      "ingest",
	"worker":      "worker",
	"worker-cpu":  "worker",
}

func TestComposeVidpipeServices(t *testing.T) {
	flags := vidpipeFlags(t)
	stages := parseDockerfile(t)
	stageNames := map[string]bool{}
	for _, s := range stages {
		stageNames[s.Name] = true
	}
	// With no passwords in the environment, the local-development defaults
	// apply; with them, both ends of each connection must get the same one.
	envs := map[string][]string{"dev defaults": nil, "set": nil}
	for _, r := range natsRoles {
		envs["set"] = append(envs["set"], r.env+"="+password(r.user))
	}
	for envName, e := range envs {
		p := mustLoadCompose(t, e, "*")
		nats := service(t, p, "nats")
		for name, role := range composeRoles {
			t.Run(envName+"/"+name, func(t *testing.T) {
				s := service(t, p, name)
				cmd := []string(s.Command)
				if len(cmd) == 0 || cmd[0] != role {
					t.Fatalf("command %q does not run %s", cmd, role)
				}
				checkFlags(t, name, cmd, flags)
				if got := flag(cmd, "--nats"); got != "nats://nats:4222" {
					t.Errorf("--nats %q, want nats://nats:4222", got)
				}
				if got := flag(cmd, "--nats-user"); got != role {
					t.Errorf("--nats-user %q, want %s", got, role)
				}
				var want string
				for _, r := range natsRoles {
					if r.user == role {
						want = env(nats, r.env)
					}
				}
				if got := env(s, "VIDPIPE_NATS_PASSWORD"); got == "" || got != want {
					t.Errorf("VIDPIPE_NATS_PASSWORD %q, want %q as the nats server has for %s", got, want, role)
				}
				if s.Build == nil || !stageNames[s.Build.Target] {
					t.Errorf("build target is not a stage of %s", dockerfile)
				}
				if env(s, "VIDPIPE_S3_ENDPOINT") == "" || env(s, "AWS_ACCESS_KEY_ID") != env(service(t, p, "s3"), "ROOT_ACCESS_KEY_ID") {
					t.Error("no S3 endpoint, or credentials that differ from the store's")
				}
			})
		}
	}
}

func TestComposeGPU(t *testing.T) {
	p := mustLoadCompose(t, nil, "*")
	worker := service(t, p, "worker")
	ok := slices.ContainsFunc(gpuRequests(worker), func(d types.DeviceRequest) bool {
		return d.Driver == "nvidia" && slices.Contains(d.Capabilities, "gpu") && d.Count != 0
	})
	if !ok {
		t.Errorf("worker reserves %+v, want an nvidia device with the gpu capability", gpuRequests(worker))
	}
	if flag(worker.Command, "--device") != "cuda" || worker.Build.Target != "gpu" {
		t.Errorf("worker runs %q from target %q, want --device cuda from gpu", worker.Command, worker.Build.Target)
	}
	cpu := service(t, p, "worker-cpu")
	if !slices.Contains(cpu.Profiles, "cpu") || cpu.Build.Target != "cpu" || gpuRequests(cpu) != nil {
		t.Errorf("worker-cpu: profiles %v, target %q, devices %v; want profile cpu, target cpu, no GPU", cpu.Profiles, cpu.Build.Target, gpuRequests(cpu))
	}

	// What each way of starting brings up, and whether it needs a GPU.
	tests := []struct {
		profiles []string
		worker   string
		gpu      bool
	}{
		{nil, "", false},
		{[]string{"cpu"}, "worker-cpu", false},
		{[]string{"gpu"}, "worker", true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(append([]string{"profiles"}, tc.profiles...), "-"), func(t *testing.T) {
			p := mustLoadCompose(t, nil, tc.profiles...)
			for _, name := range []string{"nats", "s3", "s3-init", "coordinator", "ingest"} {
				service(t, p, name)
			}
			var workers []string
			gpu := false
			for name, s := range p.Services {
				if composeRoles[name] == "worker" {
					workers = append(workers, name)
				}
				gpu = gpu || gpuRequests(s) != nil
			}
			if want := []string{tc.worker}; tc.worker == "" && len(workers) != 0 || tc.worker != "" && !slices.Equal(workers, want) {
				t.Errorf("workers %v, want %q", workers, tc.worker)
			}
			if gpu != tc.gpu {
				t.Errorf("needs a GPU: %v, want %v", gpu, tc.gpu)
			}
		})
	}
}

func TestComposeRequiresToken(t *testing.T) {
	_, err := loadCompose(t, nil, "*")
	if err == nil || !strings.Contains(err.Error(), "set VIDPIPE_TOKEN") {
		t.Fatalf("load without VIDPIPE_TOKEN: %v, want the required-variable error", err)
	}
	p := mustLoadCompose(t, nil)
	if got := env(service(t, p, "coordinator"), "VIDPIPE_TOKEN"); got != "test-token" {
		t.Errorf("coordinator VIDPIPE_TOKEN %q, want the environment's", got)
	}
}

// The deployed NATS server must be the version the tests ran nats.conf on.
func TestNATSImageMatchesGoMod(t *testing.T) {
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 (v(\d+\.\d+)\.\S+)`).FindSubmatch(readFile(t, repoRoot+"/go.mod"))
	if m == nil {
		t.Fatal("no github.com/nats-io/nats-server/v2 in go.mod")
	}
	version := string(m[1])
	want := "nats:" + string(m[2]) + "-alpine"
	if img := service(t, mustLoadCompose(t, nil), "nats").Image; img != want {
		t.Errorf("compose nats image %s, want %s (go.mod has nats-server %s)", img, want, version)
	}
	if img := buildK8s(t).statefulSets["nats"].Spec.Template.Spec.Containers[0].Image; img != want {
		t.Errorf("k8s nats image %s, want %s (go.mod has nats-server %s)", img, want, version)
	}
}
