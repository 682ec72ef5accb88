package yolo

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/safetensors"
)

// Training-form parameter counts at width 0.5, depth 0.33, 80 classes.
//
// yolov5s and repyolov5s rep=all are the published numbers (MODEL.md §2).
// A RepVGG block in place of a 3x3 Conv(c1→c2) keeps the 3x3 conv and its BN
// and adds a 1x1 conv (c1·c2) with its BN (2·c2), plus an identity BN (2·c1)
// when c1 == c2 at stride 1. For the six stride-2 blocks (no identity):
//
//	layer  c1→c2    c1·c2 + 2·c2
//	1      32→64     2048 +  128 =   2176
//	3      64→128    8192 +  256 =   8448
//	5     128→256   32768 +  512 =  33280
//	7     256→512  131072 + 1024 = 132096
//	18    128→128   16384 +  256 =  16640
//	21    256→256   65536 +  512 =  66048
//	                         sum    258688
//
// so rep=downsample has 7,235,389 + 258,688 = 7,494,077. The eleven bottleneck
// blocks (c→c, with identity: c² + 4c) add 231,808 more, which gives the
// published 7,725,885 and cross-checks the table.
func TestParams(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want int64
	}{
		{"yolov5s", Config{}, 7_235_389},
		{"repyolov5s downsample", Config{Arch: ArchRepYOLOv5s, Rep: RepDownsample}, 7_494_077},
		{"repyolov5s all", Config{Arch: ArchRepYOLOv5s, Rep: RepAll}, 7_725_885},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Build(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := onnx.Params(m.Graph); got != tt.want {
				t.Errorf("Params = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConvFLOPs(t *testing.T) {
	m, err := Build(Config{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := onnx.ConvFLOPs(m.Graph, []int64{1, 3, 640, 640})
	if err != nil {
		t.Fatal(err)
	}
	// ultralytics reports 16.4-16.5 GFLOPs for yolov5s at 640.
	const want = 16.45e9
	t.Logf("yolov5s 640: %.4g conv FLOPs", float64(got))
	if math.Abs(float64(got)-want)/want > 0.01 {
		t.Errorf("ConvFLOPs = %d, want %.4g within 1%%", got, want)
	}
}

func TestGraphInterface(t *testing.T) {
	m, err := Build(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 7 || len(m.OpsetImports) != 1 || m.OpsetImports[0] != (onnx.OpsetID{Version: 13}) {
		t.Errorf("ir_version %d, opsets %v; want 7 and opset 13", m.IRVersion, m.OpsetImports)
	}
	checkValue := func(vi *onnx.ValueInfo, name string, dims ...onnx.Dim) {
		t.Helper()
		if vi.Name != name || vi.Type == nil || vi.Type.Tensor == nil || vi.Type.Tensor.ElemType != onnx.Float ||
			!slices.Equal(vi.Type.Tensor.Shape, dims) {
			t.Errorf("value %s: %+v, want %s float %v", vi.Name, vi.Type.Tensor, name, dims)
		}
	}
	batch := onnx.Dim{Param: "batch"}
	checkValue(m.Graph.Inputs[0], "images", batch, onnx.Dim{Value: 3}, onnx.Dim{Value: 640}, onnx.Dim{Value: 640})
	checkValue(m.Graph.Outputs[0], "output0", batch, onnx.Dim{Value: 25200}, onnx.Dim{Value: 85})

	meta := map[string]string{}
	for _, kv := range m.Metadata {
		meta[kv.Key] = kv.Value
	}
	if meta["stride"] != "32" {
		t.Errorf("stride metadata %q, want 32", meta["stride"])
	}
	if n := meta["names"]; !strings.HasPrefix(n, "{0: 'person', 1: 'bicycle', 2: 'car',") || !strings.HasSuffix(n, "78: 'hair drier', 79: 'toothbrush'}") {
		t.Errorf("names metadata %.60q...", n)
	}
	names, err := ClassNames(m)
	if err != nil || !slices.Equal(names, COCO80()) {
		t.Errorf("ClassNames = %v, %v; want COCO80", names, err)
	}

	ops := map[string]int{}
	for _, n := range m.Graph.Nodes {
		ops[n.OpType]++
		if n.OpType == "Conv" && len(n.Inputs) == 3 && !strings.HasPrefix(n.Name, "/model.24.") {
			t.Errorf("conv %s has a bias; training form keeps it in the BN", n.Name)
		}
	}
	// 57 Conv modules (60 convs minus the 3 Detect ones) each carry a BN and a SiLU.
	if ops["Conv"] != 60 || ops["BatchNormalization"] != 57 || ops["Resize"] != 2 || ops["MaxPool"] != 3 {
		t.Errorf("op counts %v", ops)
	}
	if err := onnx.Encode(m); len(err) == 0 {
		t.Error("Encode returned no bytes")
	}
}

// TestRepBranches checks which blocks get which branches, by state_dict name.
func TestRepBranches(t *testing.T) {
	tests := []struct {
		rep     string
		present []string
		absent  []string
	}{
		{RepDownsample,
			[]string{"model.1.rbr_dense.conv.weight", "model.1.rbr_1x1.bn.running_var", "model.21.rbr_1x1.conv.weight", "model.2.m.0.cv2.conv.weight"},
			// layers 18 and 21 map c→c but at stride 2: no identity.
			[]string{"model.18.rbr_identity.weight", "model.1.conv.weight", "model.2.m.0.cv2.rbr_dense.conv.weight"}},
		{RepAll,
			[]string{"model.2.m.0.cv2.rbr_identity.running_mean", "model.6.m.2.cv2.rbr_1x1.conv.weight", "model.23.m.0.cv2.rbr_dense.bn.bias"},
			[]string{"model.2.m.0.cv2.conv.weight", "model.21.rbr_identity.weight", "model.0.rbr_dense.conv.weight"}},
	}
	for _, tt := range tests {
		t.Run(tt.rep, func(t *testing.T) {
			m, err := Build(Config{Arch: ArchRepYOLOv5s, Rep: tt.rep})
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, in := range m.Graph.Initializers {
				have[in.Name] = true
			}
			for _, n := range tt.present {
				if !have[n] {
					t.Errorf("missing initializer %s", n)
				}
			}
			for _, n := range tt.absent {
				if have[n] {
					t.Errorf("unexpected initializer %s", n)
				}
			}
		})
	}
}

// TestImageSizes runs a narrow model at several sizes and batch 2 in ONNX
// Runtime, so the decode constants and reshapes agree with the runtime.
func TestImageSizes(t *testing.T) {
	for _, size := range []int{320, 416, 640} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			cfg := Config{Arch: ArchRepYOLOv5s, Rep: RepAll, Width: 0.125, ImgSize: size, Classes: 2}
			m, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a := 0
			for _, s := range []int{8, 16, 32} {
				a += 3 * (size / s) * (size / s)
			}
			if got := m.Graph.Outputs[0].Type.Tensor.Shape[1].Value; got != int64(a) {
				t.Errorf("declared anchors %d, want %d", got, a)
			}
			in := make([]float32, 2*3*size*size)
			for i := range in {
				in[i] = float32(i%251) / 251
			}
			out := runORT(t, onnx.Encode(m), in, []int64{2, 3, int64(size), int64(size)})[0]
			if want := []int64{2, int64(a), 7}; !slices.Equal(out.shape, want) {
				t.Fatalf("output0 shape %v, want %v", out.shape, want)
			}
			// The last row is the bottom-right P5 cell, whose centre must lie near it.
			last := out.data[(a-1)*7:]
			if cx, cy := last[0], last[1]; cx < float32(size-32-16) || cy < float32(size-32-16) || cx > float32(size+16) || cy > float32(size+16) {
				t.Errorf("last anchor centre (%g, %g), want near (%d, %d)", cx, cy, size-16, size-16)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		substr string
	}{
		{"arch", Config{Arch: "yolov8n"}, "yolov8n"},
		{"rep on yolov5s", Config{Rep: RepAll}, "rep"},
		{"rep", Config{Arch: ArchRepYOLOv5s, Rep: "some"}, "some"},
		{"width negative", Config{Width: -0.5}, "width"},
		{"width huge", Config{Width: 100}, "width"},
		{"width NaN", Config{Width: math.NaN()}, "width"},
		{"depth", Config{Depth: -1}, "depth"},
		{"image size not a multiple of 32", Config{ImgSize: 600}, "600"},
		{"image size negative", Config{ImgSize: -640}, "-640"},
		{"image size huge", Config{ImgSize: 1 << 20}, "image size"},
		{"classes", Config{Classes: -1}, "classes"},
		{"names count", Config{Classes: 3, Names: []string{"a", "b"}}, "2 class names for 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("Build error = %v, want %v mentioning %q", err, ErrConfig, tt.substr)
			}
		})
	}
}

// shortSource returns one value too few for one tensor.
type shortSource struct {
	Source
	name string
}

func (s shortSource) Tensor(name string, shape []int) ([]float32, error) {
	v, err := s.Source.Tensor(name, shape)
	if name == s.name && err == nil {
		v = v[1:]
	}
	return v, err
}

func TestSourceErrors(t *testing.T) {
	file, err := safetensors.Open(smallWeights)
	if err != nil {
		t.Fatal(err)
	}
	small := smallConfig(file)
	missing := small
	missing.Rep = RepDownsample // its bottlenecks have plain convs, which the file lacks
	wrongShape := small
	wrongShape.Classes = 4
	short := small
	short.Weights = shortSource{Seeded(1), "model.9.cv2.bn.running_var"}
	tests := []struct {
		name   string
		cfg    Config
		want   error
		substr []string
	}{
		{"missing tensor", missing, safetensors.ErrMissing, []string{"model.2.m.0.cv2.conv.weight", smallWeights}},
		{"wrong shape", wrongShape, safetensors.ErrShape, []string{"model.24.m.0.weight", smallWeights, "[24 8 1 1]", "[27 8 1 1]"}},
		{"short tensor", short, ErrWeight, []string{"model.9.cv2.bn.running_var"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build error = %v, want %v", err, tt.want)
			}
			for _, s := range tt.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestSeeded(t *testing.T) {
	src := Seeded(7)
	a, err := src.Tensor("model.3.conv.weight", []int{64, 32, 3, 3})
	if err != nil {
		t.Fatal(err)
	}
	// Values depend on (seed, name) only, not on what was drawn before.
	if _, err := src.Tensor("model.2.cv1.conv.weight", []int{16, 32, 1, 1}); err != nil {
		t.Fatal(err)
	}
	again, _ := src.Tensor("model.3.conv.weight", []int{64, 32, 3, 3})
	other, _ := Seeded(8).Tensor("model.3.conv.weight", []int{64, 32, 3, 3})
	if !slices.Equal(a, again) || slices.Equal(a, other) {
		t.Error("seeded weights are not a function of (seed, name)")
	}
	bound := float32(math.Sqrt(6.0 / (32 * 9)))
	for _, v := range a {
		if v < -bound || v > bound {
			t.Fatalf("conv weight %g outside ±%g", v, bound)
		}
	}

	ranges := []struct {
		name   string
		lo, hi float32
	}{
		{"model.3.bn.weight", 0.5, 1.5},
		{"model.3.bn.bias", -0.2, 0.2},
		{"model.3.rbr_identity.running_mean", -0.2, 0.2},
		{"model.3.bn.running_var", 0.5, 2},
	}
	for _, r := range ranges {
		t.Run(r.name, func(t *testing.T) {
			v, err := src.Tensor(r.name, []int{1000})
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := slices.Min(v), slices.Max(v)
			if lo < r.lo || hi > r.hi || hi-lo < 0.9*(r.hi-r.lo) {
				t.Errorf("values span [%g, %g], want most of [%g, %g]", lo, hi, r.lo, r.hi)
			}
		})
	}

	t.Run("detect bias priors", func(t *testing.T) {
		v, err := src.Tensor("model.24.m.2.bias", []int{3 * 85})
		if err != nil {
			t.Fatal(err)
		}
		obj := math.Log(8 / math.Pow(640.0/32, 2)) // -3.91 at stride 32
		cls := math.Log(0.6 / (80 - 0.99999))
		pt := 1 / math.Sqrt(512) // PyTorch's default bias bound at yolov5s' P5 width
		for a := range 3 {
			if d := float64(v[a*85+4]) - obj; math.Abs(d) > pt+1e-6 {
				t.Errorf("anchor %d obj bias %g, want %g ± %g", a, v[a*85+4], obj, pt)
			}
			if d := float64(v[a*85+5]) - cls; math.Abs(d) > pt+1e-6 {
				t.Errorf("anchor %d cls bias %g, want %g ± %g", a, v[a*85+5], cls, pt)
			}
		}
	})

	for _, bad := range []struct {
		name  string
		shape []int
	}{
		{"model.3.conv.scale", []int{4}},
		{"model.3.bn.weight", []int{2, 2}},
		{"model.3.bn.weight", []int{0}},
		{"model.24.m.0.bias", []int{10}},
	} {
		t.Run("reject "+bad.name, func(t *testing.T) {
			if _, err := src.Tensor(bad.name, bad.shape); !errors.Is(err, ErrWeight) || !strings.Contains(err.Error(), bad.name) {
				t.Errorf("Tensor(%s, %v) error = %v, want %v naming it", bad.name, bad.shape, err, ErrWeight)
			}
		})
	}
}

func TestBuildDeterministic(t *testing.T) {
	cfg := Config{Arch: ArchRepYOLOv5s, Rep: RepAll, Width: 0.125, ImgSize: 128, Seed: 3}
	a, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onnx.Encode(a), onnx.Encode(b)) {
		t.Error("two builds of one config differ")
	}
}

// TestSeededOutputSpread runs the seeded 640 models and checks that scores
// neither vanish nor saturate, so downstream tests see varied detections.
func TestSeededOutputSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, 3*640*640)
	for i := range in {
		in[i] = r.Float32()
	}
	for _, cfg := range []Config{{}, {Arch: ArchRepYOLOv5s, Rep: RepAll}} {
		t.Run(cfg.Arch+cfg.Rep, func(t *testing.T) {
			m, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := runORT(t, onnx.Encode(m), in, []int64{1, 3, 640, 640})[0]
			for _, col := range []struct {
				name string
				at   int
			}{{"obj", 4}, {"cls0", 5}, {"cls79", 84}} {
				v := make([]float64, 0, 25200)
				for a := range 25200 {
					v = append(v, float64(out.data[a*85+col.at]))
				}
				sort.Float64s(v)
				q := func(p float64) float64 { return v[int(p*float64(len(v)-1))] }
				t.Logf("%s: min %.3g p10 %.3g p50 %.3g p90 %.3g p99 %.3g max %.3g", col.name, q(0), q(.1), q(.5), q(.9), q(.99), q(1))
				// Spread: a decade between p10 and p99, nothing pinned at 0 or 1.
				if q(.99) < 10*q(.1) || q(.5) <= 0 || q(.5) >= 0.5 || q(1) >= 1 {
					t.Errorf("%s scores do not spread", col.name)
				}
			}
		})
	}
}

func TestPyDict(t *testing.T) {
	names := []string{"person", "it's", `say "hi"`, `both ' and "`, "tab\there", `back\slash`, "naïve"}
	got := pyDict(names)
	// What Python 3 prints for str(dict(enumerate(names))).
	want := `{0: 'person', 1: "it's", 2: 'say "hi"', 3: 'both \' and "', 4: 'tab\there', 5: 'back\\slash', 6: 'naïve'}`
	if got != want {
		t.Errorf("pyDict =\n%s\nwant\n%s", got, want)
	}
}

// BenchmarkBuild reports the time to build (and seed) a 640 model.
func BenchmarkBuild(b *testing.B) {
	for _, cfg := range []Config{{Arch: ArchYOLOv5s}, {Arch: ArchRepYOLOv5s, Rep: RepAll}} {
		b.Run(cfg.Arch+"-"+cmp.Or(cfg.Rep, "none"), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(cfg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/build")
		})
	}
}
