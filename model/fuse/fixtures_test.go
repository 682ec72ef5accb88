package fuse

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// fixture is one entry of testdata/fixtures.json, written by gen_fixtures.py.
type fixture struct {
	Name         string   `json:"name"`
	Note         string   `json:"note"`
	Input        string   `json:"input"`
	InputShape   []int64  `json:"input_shape"`
	Output       string   `json:"output"`
	OutputShape  []int64  `json:"output_shape"`
	BNBefore     int      `json:"bn_before"`
	ConvsBefore  int      `json:"convs_before"`
	ConvsAfter   int      `json:"convs_after"`
	RepVGG       int      `json:"repvgg"`
	Branches     []string `json:"branches"`
	ParamsBefore int64    `json:"params_before"`
	ParamsAfter  int64    `json:"params_after"`
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []fixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatalf("decode fixtures.json: %v", err)
	}
	if len(fs) == 0 {
		t.Fatal("fixtures.json lists no fixtures")
	}
	return fs
}

// TestTorchFixtures fuses each torch export and checks it against torch's
// own output and against the unfused graph under ONNX Runtime.
func TestTorchFixtures(t *testing.T) {
	worst := 0.0
	for _, fx := range loadFixtures(t) {
		t.Run(fx.Name, func(t *testing.T) {
			path := filepath.Join("testdata", fx.Name+".onnx")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnx.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pristine, err := onnx.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in := readBin(t, filepath.Join("testdata", fx.Name+".in.bin"))
			want := readBin(t, filepath.Join("testdata", fx.Name+".out.bin"))

			// Sanity: ONNX Runtime on the unfused export agrees with torch.
			orig, _ := newSession(t, raw, fx.Input, fx.Output).run(t, in, fx.InputShape)
			if d := maxAbsDiff(t, orig, want); d > 1e-4 {
				t.Fatalf("unfused export vs torch: max abs diff %g", d)
			}

			ops := countOps(m.Graph)
			if ops["BatchNormalization"] != fx.BNBefore || ops["Conv"] != fx.ConvsBefore {
				t.Fatalf("fixture has %d BN and %d Conv nodes, fixtures.json says %d and %d",
					ops["BatchNormalization"], ops["Conv"], fx.BNBefore, fx.ConvsBefore)
			}
			rep, err := Model(m)
			if err != nil {
				t.Fatalf("Model: %v", err)
			}
			t.Log(rep)

			ops = countOps(m.Graph)
			if ops["BatchNormalization"] != 0 {
				t.Errorf("%d BatchNormalization nodes left", ops["BatchNormalization"])
			}
			if ops["Conv"] != fx.ConvsAfter {
				t.Errorf("%d Conv nodes, want %d", ops["Conv"], fx.ConvsAfter)
			}
			if ops["Identity"] != 0 || ops["Constant"] != 0 {
				t.Errorf("weight providers left behind: %v", ops)
			}
			ix := onnx.NewIndex(m.Graph)
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Conv" {
					if w := ix.Initializers[n.Inputs[1]]; w == nil || !reflect.DeepEqual(w.Dims[2:], []int64{3, 3}) {
						t.Errorf("conv %s is not a 3x3 conv with an initializer weight", n.Name)
					}
					if len(n.Inputs) != 3 {
						t.Errorf("conv %s has no bias", n.Name)
					}
				}
			}
			if len(rep.Skipped) != 0 {
				t.Errorf("skipped: %v", rep.Skipped)
			}
			if len(rep.Fusions) != fx.RepVGG {
				t.Errorf("%d fusions, want %d RepVGG blocks: %+v", len(rep.Fusions), fx.RepVGG, rep.Fusions)
			}
			for _, f := range rep.Fusions {
				if f.Kind != KindRepVGG || !reflect.DeepEqual(f.Branches, fx.Branches) {
					t.Errorf("fusion %+v, want kind %s with branches %v", f, KindRepVGG, fx.Branches)
				}
			}
			if rep.ParamsAfter != fx.ParamsAfter {
				t.Errorf("params after %d, want %d", rep.ParamsAfter, fx.ParamsAfter)
			}
			if fx.ParamsBefore != 0 && rep.ParamsBefore != fx.ParamsBefore {
				t.Errorf("params before %d, torch counts %d", rep.ParamsBefore, fx.ParamsBefore)
			}
			checkRewrite(t, pristine, m, rep)
			fused := roundTrip(t, m)

			got, _ := newSession(t, fused, fx.Input, fx.Output).run(t, in, fx.InputShape)
			dt := maxAbsDiff(t, got, want)
			d, scale := equivalence(t, raw, fused, fx.Input, fx.Output, fx.InputShape, in)
			t.Logf("max abs diff: fused vs unfused %.3g (9 inputs, outputs up to %.3g), fused vs torch %.3g", d, scale, dt)
			if d > 1e-4 || dt > 1e-4 {
				t.Errorf("fused output differs: %g vs unfused, %g vs torch (limit 1e-4)", d, dt)
			}
			worst = max(worst, d)
		})
	}
	t.Logf("largest fused vs unfused difference over all fixtures: %.3g", worst)
}
