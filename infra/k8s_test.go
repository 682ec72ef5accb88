package infra

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/vidpipe/vidpipe/bus"
)

// namespace is where infra/k8s puts everything.
const namespace = "vidpipe"

// manifests is what `kubectl apply -k infra/k8s` applies, decoded strictly.
type manifests struct {
	namespaces   map[string]*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	scaled       map[string]*scaledObject
}

// strictDecoder decodes the built-in kinds vidpipe uses, refusing unknown
// and duplicate fields as `kubectl apply --validate=strict` does.
func strictDecoder() runtime.Decoder {
	sch := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme} {
		if err := add(sch); err != nil {
			panic(err) // registering static types cannot fail
		}
	}
	return serializer.NewCodecFactory(sch, serializer.EnableStrict).UniversalDeserializer()
}

// decodeManifest decodes one YAML document into its typed object.
func decodeManifest(dec runtime.Decoder, doc []byte) (any, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("read kind: %w", err)
	}
	if tm.APIVersion == "keda.sh/v1alpha1" && tm.Kind == "ScaledObject" {
		so, err := decodeScaledObject(doc)
		if err != nil {
			return nil, err
		}
		return so, nil
	}
	obj, _, err := dec.Decode(doc, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}

// buildK8s runs kustomize on infra/k8s, as kubectl apply -k does, and
// decodes every resource strictly.
func buildK8s(t *testing.T) *manifests {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	m := &manifests{
		namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		services: map[string]*corev1.Service{}, deployments: map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{}, scaled: map[string]*scaledObject{},
	}
	dec := strictDecoder()
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s %s as yaml: %v", r.GetKind(), r.GetName(), err)
		}
		obj, err := decodeManifest(dec, doc)
		if err != nil {
			t.Errorf("%s %s: %v", r.GetKind(), r.GetName(), err)
			continue
		}
		if ns := r.GetNamespace(); r.GetKind() != "Namespace" && ns != namespace {
			t.Errorf("%s %s in namespace %q, want %q", r.GetKind(), r.GetName(), ns, namespace)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces[o.Name] = o
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Service:
			m.services[o.Name] = o
		case *appsv1.Deployment:
			m.deployments[o.Name] = o
		case *appsv1.StatefulSet:
			m.statefulSets[o.Name] = o
		case *scaledObject:
			m.scaled[o.Name] = o
		case *corev1.Secret:
			t.Errorf("secret %s is in the manifests: secret values are never committed", o.Name)
		default:
			t.Errorf("%s %s: a kind this test does not check", r.GetKind(), r.GetName())
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// The strict decoding is the offline stand-in for schema validation; this
// proves it refuses what a schema would.
func TestStrictDecodingRefusesMistakes(t *testing.T) {
	worker := readFile(t, k8sDir+"/worker.yaml")
	scaled := readFile(t, k8sDir+"/worker-scaledobject.yaml")
	tests := []struct {
		name     string
		doc      []byte
		old, new string
	}{
		{"misspelt pod field", worker, "terminationGracePeriodSeconds:", "terminationGracePeriod:"},
		{"field at the wrong level", worker, "      nodeSelector:", "      template:\n        nodeSelector:"},
		{"wrong type", worker, "--batch=8", "--batch=8\n          tty: maybe"},
		{"misspelt ScaledObject field", scaled, "cooldownPeriod:", "coolDownPeriod:"},
		{"field under the wrong parent", scaled, "    name: worker\n", "    name: worker\n    minReplicaCount: 1\n"},
	}
	dec := strictDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeManifest(dec, tc.doc); err != nil {
				t.Fatalf("the committed manifest does not decode: %v", err)
			}
			bad := bytes.Replace(tc.doc, []byte(tc.old), []byte(tc.new), 1)
			if bytes.Equal(bad, tc.doc) {
				t.Fatalf("%q not found in the manifest", tc.old)
			}
			if _, err := decodeManifest(dec, bad); err == nil {
				t.Fatal("decoded without error")
			}
		})
	}
}

func TestK8sNATS(t *testing.T) {
	m := buildK8s(t)
	if m.namespaces[namespace] == nil {
		t.Errorf("no namespace %s", namespace)
	}
	sts := m.statefulSets["nats"]
	if sts == nil {
		t.Fatal("no nats StatefulSet")
	}
	pod := sts.Spec.Template.Spec
	var cm *corev1.ConfigMap
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			cm = m.configMaps[v.ConfigMap.Name]
		}
	}
	if cm == nil || cm.Data["nats.conf"] != string(readFile(t, natsConf)) {
		t.Errorf("the nats StatefulSet does not mount a ConfigMap holding %s", natsConf)
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"-c", "/etc/nats/nats.conf"}) {
		t.Errorf("nats args %q, want the mounted nats.conf", c.Args)
	}
	for _, r := range natsRoles {
		if ref := secretEnv(c, r.env); ref == nil {
			t.Errorf("nats gets %s from no secret", r.env)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == "/data" }) {
		t.Error("nothing mounted at /data, nats.conf's store_dir")
	}
	svc := m.services["nats"]
	if svc == nil || servicePort(svc, 4222) == nil || servicePort(svc, 8222) == nil {
		t.Error("no nats Service with the client (4222) and monitoring (8222) ports")
	}
}

// vidpipeRoles are the vidpipe processes of infra/k8s: role, NATS user,
// container port of /healthz and /metrics.
var vidpipeRoles = []struct {
	role string
	port int32
}{
	{"coordinator", 8080},
	{"ingest", 9090},
	{"worker", 9090},
}

func TestK8sVidpipe(t *testing.T) {
	m := buildK8s(t)
	flags := vidpipeFlags(t)
	natsPod := m.statefulSets["nats"].Spec.Template.Spec.Containers[0]
	for _, r := range vidpipeRoles {
		t.Run(r.role, func(t *testing.T) {
			d := m.deployments[r.role]
			if d == nil {
				t.Fatalf("no %s Deployment", r.role)
			}
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			if len(c.Args) == 0 || c.Args[0] != r.role {
				t.Errorf("args %q do not start with the subcommand %s", c.Args, r.role)
			}
			checkFlags(t, r.role, c.Args, flags)
			for _, flag := range []string{"--nats=nats://nats:4222", "--nats-user=" + r.role} {
				if !slices.Contains(c.Args, flag) {
					t.Errorf("args %q lack %s", c.Args, flag)
				}
			}
			// The password must be the one the NATS server gives this user.
			got := secretEnv(c, "VIDPIPE_NATS_PASSWORD")
			var want *corev1.SecretKeySelector
			for _, nr := range natsRoles {
				if nr.user == r.role {
					want = secretEnv(natsPod, nr.env)
				}
			}
			if got == nil || want == nil || got.Name != want.Name || got.Key != want.Key {
				t.Errorf("VIDPIPE_NATS_PASSWORD from %v, want the secret key the nats server reads (%v)", got, want)
			}
			port := containerPort(c, r.port)
			if port == nil {
				t.Fatalf("no container port %d", r.port)
			}
			listen := fmt.Sprintf(":%d", r.port)
			if !slices.Contains(c.Args, "--metrics="+listen) && !slices.Contains(c.Args, "--listen="+listen) {
				t.Errorf("args %q serve nothing on %s", c.Args, listen)
			}
			for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != port.Name {
					t.Errorf("%s probe %+v, want GET /healthz on port %s", name, p, port.Name)
				}
			}
			a := d.Spec.Template.Annotations
			if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(r.port)) || a["prometheus.io/path"] != "/metrics" {
				t.Errorf("prometheus annotations %v, want scrape of :%d/metrics", a, r.port)
			}
			if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 60 {
				t.Errorf("termination grace %v, want at least 60 s to drain", g)
			}
			sc := pod.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Error("pod may run as root")
			}
			mounted := func(path string) bool {
				return slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == path })
			}
			if !mounted("/var/cache/vidpipe") || !mounted("/tmp") {
				t.Error("read-only root without writable /var/cache/vidpipe (VIDPIPE_CACHE) and /tmp")
			}
		})
	}

	if svc := m.services["coordinator"]; svc == nil || servicePort(svc, 8080) == nil {
		t.Error("no coordinator Service on 8080")
	}
	if c := m.deployments["coordinator"].Spec.Template.Spec.Containers[0]; secretEnv(c, "VIDPIPE_TOKEN") == nil {
		t.Error("the coordinator gets VIDPIPE_TOKEN from no secret")
	}
}

func TestK8sGPUWorker(t *testing.T) {
	m := buildK8s(t)
	d := m.deployments["worker"]
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	gpu := corev1.ResourceName("nvidia.com/gpu")
	if q, ok := c.Resources.Limits[gpu]; !ok || q.Value() != 1 {
		t.Errorf("limits %v, want nvidia.com/gpu: 1", c.Resources.Limits)
	}
	if !slices.Contains(c.Args, "--device=cuda") {
		t.Errorf("args %q do not select CUDA", c.Args)
	}
	if !strings.Contains(c.Image, "gpu") {
		t.Errorf("image %s is not the gpu build", c.Image)
	}
	if len(pod.NodeSelector) == 0 {
		t.Error("no nodeSelector for GPU nodes")
	}
	if !slices.ContainsFunc(pod.Tolerations, func(tl corev1.Toleration) bool { return tl.Key == string(gpu) }) {
		t.Error("no toleration of the nvidia.com/gpu taint")
	}
	if d.Spec.Replicas != nil {
		t.Error("the worker Deployment sets replicas, which KEDA owns: a re-apply would reset them")
	}
}

func TestKEDAScaledObject(t *testing.T) {
	m := buildK8s(t)
	if len(m.scaled) != 1 {
		t.Fatalf("%d ScaledObjects, want 1", len(m.scaled))
	}
	var so *scaledObject
	for _, s := range m.scaled {
		so = s
	}
	ref := so.Spec.ScaleTargetRef
	if ref.Kind != "" && ref.Kind != "Deployment" || m.deployments[ref.Name] == nil || ref.Name != "worker" {
		t.Errorf("scaleTargetRef %+v, want the worker Deployment", ref)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
		t.Fatalf("triggers %+v, want one nats-jetstream", so.Spec.Triggers)
	}
	md := so.Spec.Triggers[0].Metadata
	if md["stream"] != bus.FramesStream || md["consumer"] != bus.WorkersConsumer || md["account"] != natsAccount {
		t.Errorf("trigger watches %s/%s in account %s, want %s/%s in %s", md["stream"], md["consumer"], md["account"], bus.FramesStream, bus.WorkersConsumer, natsAccount)
	}
	// KEDA resolves the endpoint through cluster DNS: <service>.<namespace>.
	svc := m.services["nats"]
	wantEndpoint := ""
	if p := servicePort(svc, 8222); p != nil {
		wantEndpoint = fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc.Name, svc.Namespace, p.Port)
	}
	if md["natsServerMonitoringEndpoint"] != wantEndpoint {
		t.Errorf("natsServerMonitoringEndpoint %q, want the nats Service's monitoring port %q", md["natsServerMonitoringEndpoint"], wantEndpoint)
	}
	lag, err1 := strconv.Atoi(md["lagThreshold"])
	_, err2 := strconv.Atoi(md["activationLagThreshold"])
	if err1 != nil || err2 != nil || lag < 1 {
		t.Fatalf("lagThreshold %q and activationLagThreshold %q must be integers, lagThreshold at least 1", md["lagThreshold"], md["activationLagThreshold"])
	}
	// The lag KEDA reads cannot exceed the frames the stream holds, so
	// replicas past maxFrames / lagThreshold are never asked for.
	maxFrames := int(bus.DefaultStreamOptions().MaxFramesWaiting)
	for _, a := range m.deployments["coordinator"].Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--frames-waiting="); ok {
			if maxFrames, err1 = strconv.Atoi(v); err1 != nil {
				t.Fatalf("coordinator %s: %v", a, err1)
			}
		}
	}
	if max := so.Spec.MaxReplicaCount; max == nil {
		t.Error("no maxReplicaCount")
	} else if int(*max)*lag > maxFrames {
		t.Errorf("maxReplicaCount %d x lagThreshold %d exceeds the %d frames the stream holds: KEDA could never reach it", *max, lag, maxFrames)
	}
	if so.Spec.MinReplicaCount == nil || so.Spec.CooldownPeriod == nil {
		t.Error("minReplicaCount and cooldownPeriod are not explicit")
	}
}

// workerTrigger is the worker ScaledObject's nats-jetstream trigger.
func workerTrigger(t *testing.T) scaleTrigger {
	t.Helper()
	so, err := decodeScaledObject(readFile(t, k8sDir+"/worker-scaledobject.yaml"))
	if err != nil {
		t.Fatalf("worker ScaledObject: %v", err)
	}
	for _, tr := range so.Spec.Triggers {
		if tr.Type == "nats-jetstream" {
			return tr
		}
	}
	t.Fatal("worker ScaledObject has no nats-jetstream trigger")
	return scaleTrigger{}
}

func secretEnv(c corev1.Container, name string) *corev1.SecretKeySelector {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

func containerPort(c corev1.Container, port int32) *corev1.ContainerPort {
	for i, p := range c.Ports {
		if p.ContainerPort == port {
			return &c.Ports[i]
		}
	}
	return nil
}

func servicePort(svc *corev1.Service, port int32) *corev1.ServicePort {
	if svc == nil {
		return nil
	}
	for i, p := range svc.Spec.Ports {
		if p.Port == port {
			return &svc.Spec.Ports[i]
		}
	}
	return nil
}
