package u8input_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/internal/samples"
	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/detect"
	"github.com/vidpipe/vidpipe/model/half"
	"github.com/vidpipe/vidpipe/model/infer"
	"github.com/vidpipe/vidpipe/model/layout"
	"github.com/vidpipe/vidpipe/model/onnx"
	"github.com/vidpipe/vidpipe/model/u8input"
)

func open(t testing.TB, model []byte, name string, batch int) (*infer.Session, *layout.Layout) {
	t.Helper()
	if err := infer.Init(infer.LibraryPath()); err != nil {
		t.Fatal(err)
	}
	s, l, err := layout.Open(context.Background(), model, name, infer.Options{Threads: 2, MaxBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, l
}

// toBytes returns the uint8-input form of model.
func toBytes(t testing.TB, model []byte) []byte {
	t.Helper()
	m, err := onnx.Decode(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := u8input.Convert(m); err != nil {
		t.Fatal(err)
	}
	return onnx.Encode(m)
}

// feed writes imgs to s's input: as floats (detect.Planar), as a worker
// feeds a float model, or as the bytes themselves.
func feed(t testing.TB, s *infer.Session, imgs [][]byte) {
	t.Helper()
	n := len(imgs)
	if s.Bytes() {
		in, err := s.InputBytes(n)
		if err != nil {
			t.Fatal(err)
		}
		per := len(in) / n
		for i, img := range imgs {
			copy(in[i*per:(i+1)*per], img)
		}
	} else {
		in, err := s.Input(n)
		if err != nil {
			t.Fatal(err)
		}
		per := len(in) / n
		for i, img := range imgs {
			detect.Planar(in[i*per:(i+1)*per], img)
		}
	}
}

// run feeds imgs to s and returns a copy of every output value.
func run(t testing.TB, s *infer.Session, imgs [][]byte) [][]float32 {
	t.Helper()
	feed(t, s, imgs)
	outs, err := s.Run(context.Background(), len(imgs))
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]float32, len(outs))
	for i, o := range outs {
		got[i] = append([]float32(nil), o.Data...)
	}
	return got
}

// TestSameOutputAsFloatInput is issue 12's uint8 must-show: on real frames
// the uint8-input model gives bit for bit the outputs of the float model
// fed detect.Planar's floats, for the float32 and both float16 forms.
func TestSameOutputAsFloatInput(t *testing.T) {
	const size, batch = 64, 3
	imgs := append(samples.Frames(t, "vtest.avi", size, 50, 2), samples.Frames(t, "Megamind.avi", size, 50, 1)...)
	m, err := builtin.Build(size)
	if err != nil {
		t.Fatal(err)
	}
	fp32 := onnx.Encode(m)
	if _, err := half.Mixed(m); err != nil {
		t.Fatal(err)
	}
	mixed := onnx.Encode(m)
	full, err := onnx.Decode(fp32)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := half.Convert(full); err != nil {
		t.Fatal(err)
	}
	for name, model := range map[string][]byte{"fp32": fp32, "fp16 mixed": mixed, "fp16 full": onnx.Encode(full)} {
		t.Run(name, func(t *testing.T) {
			fs, fl := open(t, model, name, batch)
			bs, bl := open(t, toBytes(t, model), name+" u8", batch)
			if fl.Bytes || !bl.Bytes || bl.Size != size || bl.Kind != fl.Kind || bl.Classes != fl.Classes {
				t.Fatalf("layouts %s and %s: want the same but for uint8 input", fl, bl)
			}
			if _, err := bs.Input(1); !errors.Is(err, infer.ErrBadInput) {
				t.Errorf("float Input of a uint8 model: %v, want ErrBadInput", err)
			}
			if _, err := fs.InputBytes(1); !errors.Is(err, infer.ErrBadInput) {
				t.Errorf("InputBytes of a float model: %v, want ErrBadInput", err)
			}
			for _, n := range []int{batch, 1} {
				want, got := run(t, fs, imgs[:n]), run(t, bs, imgs[:n])
				for o := range want {
					diff := 0
					for i := range want[o] {
						if math.Float32bits(want[o][i]) != math.Float32bits(got[o][i]) {
							diff++
						}
					}
					if diff > 0 || len(want[o]) != len(got[o]) {
						t.Errorf("batch %d output %d: %d of %d values differ", n, o, diff, len(want[o]))
					}
				}
			}
		})
	}
}

func TestConvertRefuses(t *testing.T) {
	d := onnx.Dim{Value: 4}
	model := func(in *onnx.ValueInfo) *onnx.Model {
		return &onnx.Model{Graph: &onnx.Graph{Inputs: []*onnx.ValueInfo{in}}}
	}
	for name, m := range map[string]*onnx.Model{
		"no graph":   {},
		"uint8":      model(onnx.TensorValue("images", onnx.Uint8, d, d, d, onnx.Dim{Value: 3})),
		"int64":      model(onnx.TensorValue("images", onnx.Int64, d, onnx.Dim{Value: 3}, d, d)),
		"1 channel":  model(onnx.TensorValue("images", onnx.Float, d, onnx.Dim{Value: 1}, d, d)),
		"rank 3":     model(onnx.TensorValue("images", onnx.Float, onnx.Dim{Value: 3}, d, d)),
		"two inputs": {Graph: &onnx.Graph{Inputs: []*onnx.ValueInfo{onnx.TensorValue("a", onnx.Float, d, onnx.Dim{Value: 3}, d, d), onnx.TensorValue("b", onnx.Float, d, onnx.Dim{Value: 3}, d, d)}}},
	} {
		err := u8input.Convert(m)
		if !errors.Is(err, u8input.ErrInput) && !errors.Is(err, onnx.ErrNoGraph) {
			t.Errorf("%s: %v, want ErrInput", name, err)
		}
	}
}

// BenchmarkInput is the worker's choice of input form on the CPU: a batch
// of 4 real frames through the built-in model, as floats (detect.Planar in
// Go, then the model) or as bytes (copied, then the model converting
// them). The two forms alternate within each iteration, which one first
// alternating too, so that load from other processes falls on both alike;
// it reports each form's ms per frame and u8/float, the time ratio.
//
//	go test -run '^$' -bench Input -benchtime 10x ./model/u8input/
func BenchmarkInput(b *testing.B) {
	const batch = 4
	for _, size := range []int{320, 640} {
		b.Run(fmt.Sprintf("%d/batch%d", size, batch), func(b *testing.B) {
			imgs := samples.Frames(b, "vtest.avi", size, 10, batch)
			m, err := builtin.Build(size)
			if err != nil {
				b.Fatal(err)
			}
			model := onnx.Encode(m)
			fs, _ := open(b, model, "float", batch)
			bs, _ := open(b, toBytes(b, model), "u8", batch)
			var took [2]time.Duration
			step := func(k int, s *infer.Session) {
				t0 := time.Now()
				feed(b, s, imgs)
				if _, err := s.Run(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				took[k] += time.Since(t0)
			}
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					step(0, fs)
					step(1, bs)
				} else {
					step(1, bs)
					step(0, fs)
				}
				i++
			}
			per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(i*batch) }
			b.ReportMetric(per(took[0]), "float-ms/frame")
			b.ReportMetric(per(took[1]), "u8-ms/frame")
			b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "u8/float")
		})
	}
}

// BenchmarkInputPrep isolates what BenchmarkInput compares: the input
// conversion alone, through a model that only sums its input per image
// (ReduceSum, common to both forms), 4 frames a batch. Float: detect.Planar
// in Go; u8: the bytes copied, ONNX Runtime transposing, casting and
// dividing them.
//
//	go test -run '^$' -bench InputPrep -benchtime 20x ./model/u8input/
func BenchmarkInputPrep(b *testing.B) {
	const batch = 4
	for _, size := range []int{320, 640} {
		b.Run(fmt.Sprintf("%d/batch%d", size, batch), func(b *testing.B) {
			imgs := samples.Frames(b, "vtest.avi", size, 10, batch)
			n, d := onnx.Dim{Param: "N"}, onnx.Dim{Value: int64(size)}
			g := &onnx.Graph{
				Name:         "sum",
				Nodes:        []*onnx.Node{{Name: "sum", OpType: "ReduceSum", Inputs: []string{"images", "axes"}, Outputs: []string{"output0"}, Attrs: []*onnx.Attribute{onnx.Int("keepdims", 0)}}},
				Initializers: []*onnx.Tensor{onnx.NewInt64("axes", []int64{3}, []int64{1, 2, 3})},
				Inputs:       []*onnx.ValueInfo{onnx.TensorValue("images", onnx.Float, n, onnx.Dim{Value: 3}, d, d)},
				Outputs:      []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float, n)},
			}
			model := onnx.Encode(&onnx.Model{IRVersion: 8, OpsetImports: []onnx.OpsetID{{Version: 17}}, Graph: g})
			if err := infer.Init(infer.LibraryPath()); err != nil {
				b.Fatal(err)
			}
			var sess [2]*infer.Session
			for k, mb := range [][]byte{model, toBytes(b, model)} {
				s, err := infer.Open(context.Background(), mb, "sum", infer.Options{Threads: 2, MaxBatch: batch})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				sess[k] = s
			}
			var took [2]time.Duration
			i := 0
			for b.Loop() {
				for j := range 2 {
					k := (i + j) % 2
					t0 := time.Now()
					feed(b, sess[k], imgs)
					if _, err := sess[k].Run(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					took[k] += time.Since(t0)
				}
				i++
			}
			per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(i*batch) }
			b.ReportMetric(per(took[0]), "float-ms/frame")
			b.ReportMetric(per(took[1]), "u8-ms/frame")
			b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "u8/float")
		})
	}
}
