package detect

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The fixtures come from testdata/gen_fixtures.py (torch, torchvision, cv2).

type nmsConfig struct {
	Name       string  `json:"name"`
	Conf       float32 `json:"conf"`
	IoU        float64 `json:"iou"`
	MaxDet     int     `json:"max_det"`
	MaxNMS     int     `json:"max_nms"`
	Classes    []int   `json:"classes"`
	Agnostic   bool    `json:"agnostic"`
	MultiLabel bool    `json:"multi_label"`
	Counts     []int   `json:"counts"`
	Offset     int     `json:"offset"`
}

type lbCase struct {
	Src       string  `json:"src"`
	SrcW      int     `json:"src_w"`
	SrcH      int     `json:"src_h"`
	SrcOffset int     `json:"src_offset"`
	DstW      int     `json:"dst_w"`
	DstH      int     `json:"dst_h"`
	Gain      float64 `json:"gain"`
	DW        float64 `json:"dw"` // letterbox's half pads, before int(round(dw ± 0.1))
	DH        float64 `json:"dh"`
	Top       int     `json:"top"`
	Left      int     `json:"left"`
	NewW      int     `json:"new_w"`
	NewH      int     `json:"new_h"`
	OutOffset int     `json:"out_offset"`
}

type fixtureMeta struct {
	COCO80 []string `json:"coco80"`
	NMS    struct {
		Images  int         `json:"images"`
		Rows    int         `json:"rows"`
		NC      int         `json:"nc"`
		Slots   int         `json:"slots"`
		Configs []nmsConfig `json:"configs"`
		Scale   []struct {
			W     int `json:"w"`
			H     int `json:"h"`
			Count int `json:"count"`
		} `json:"scale"`
	} `json:"nms"`
	Letterbox []lbCase `json:"letterbox"`
	Decode    struct {
		NC      int   `json:"nc"`
		InW     int   `json:"in_w"`
		InH     int   `json:"in_h"`
		Strides []int `json:"strides"`
		Rows    int   `json:"rows"`
	} `json:"decode"`
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture (regenerate with /usr/bin/python3 testdata/gen_fixtures.py): %v", err)
	}
	return b
}

func loadMeta(t testing.TB) fixtureMeta {
	t.Helper()
	var m fixtureMeta
	if err := json.Unmarshal(readFixture(t, "fixtures.json"), &m); err != nil {
		t.Fatalf("decode fixtures.json: %v", err)
	}
	return m
}

func readFloats(t testing.TB, name string) []float32 {
	t.Helper()
	b := readFixture(t, name)
	if len(b)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a float32 array", name, len(b))
	}
	f := make([]float32, len(b)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

// nmsInput rebuilds the dense [images, rows, 5+nc] predictions from the
// quantised sparse records; every value is exact in float32.
func nmsInput(t testing.TB, m fixtureMeta) []float32 {
	t.Helper()
	b := readFixture(t, "nms_input.bin")
	n := m.NMS
	fields := 5 + 2*n.Slots
	if len(b) != n.Images*n.Rows*fields*2 {
		t.Fatalf("nms_input.bin: %d bytes, want %d", len(b), n.Images*n.Rows*fields*2)
	}
	cols := 5 + n.NC
	pred := make([]float32, n.Images*n.Rows*cols)
	for r := range n.Images * n.Rows {
		f := func(i int) uint16 { return binary.LittleEndian.Uint16(b[2*(r*fields+i):]) }
		row := pred[r*cols : (r+1)*cols]
		row[0] = float32(int16(f(0))) / 16
		row[1] = float32(int16(f(1))) / 16
		row[2] = float32(f(2)) / 16
		row[3] = float32(f(3)) / 16
		row[4] = float32(f(4)) / 65536
		for s := range n.Slots {
			row[5+int(f(5+s))] = float32(f(5+n.Slots+s)) / 65536
		}
	}
	return pred
}

func TestNMSFixtures(t *testing.T) {
	m := loadMeta(t)
	pred := nmsInput(t, m)
	want := readFloats(t, "nms_expected.bin")
	cols := 5 + m.NMS.NC
	per := m.NMS.Rows * cols
	for _, c := range m.NMS.Configs {
		t.Run(c.Name, func(t *testing.T) {
			opt := NMSOptions{Conf: c.Conf, IoU: c.IoU, MaxDet: c.MaxDet, MaxCandidates: c.MaxNMS,
				Classes: c.Classes, Agnostic: c.Agnostic, MultiLabel: c.MultiLabel}
			p, err := NewPostprocessor(opt)
			if err != nil {
				t.Fatal(err)
			}
			off := c.Offset
			var dets []Detection
			for img := range m.NMS.Images {
				dets, err = p.NMS(dets, pred[img*per:(img+1)*per], m.NMS.Rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				exp := want[6*off : 6*(off+c.Counts[img])]
				off += c.Counts[img]
				if len(dets) != c.Counts[img] {
					t.Fatalf("image %d: %d detections, torchvision kept %d", img, len(dets), c.Counts[img])
				}
				for i, d := range dets {
					e := exp[6*i : 6*i+6]
					got := []float32{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2}
					for k := range got {
						if math.Abs(float64(got[k]-e[k])) > 1e-4 {
							t.Fatalf("image %d det %d: box %v, want %v", img, i, got, e[:4])
						}
					}
					if d.Conf != e[4] || float32(d.ClassID) != e[5] {
						t.Fatalf("image %d det %d: conf %v class %d, want %v class %v", img, i, d.Conf, d.ClassID, e[4], e[5])
					}
				}
			}
		})
	}
}

func TestScaleBackFixture(t *testing.T) {
	m := loadMeta(t)
	pred := nmsInput(t, m)
	want := readFloats(t, "scale_expected.bin")
	cols := 5 + m.NMS.NC
	off := 0
	for _, s := range m.NMS.Scale {
		dets, err := NMS(nil, pred[:m.NMS.Rows*cols], m.NMS.Rows, cols, DefaultNMSOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != s.Count {
			t.Fatalf("%dx%d: %d detections, want %d", s.W, s.H, len(dets), s.Count)
		}
		lb, err := Plan(s.W, s.H, 640, 640)
		if err != nil {
			t.Fatal(err)
		}
		lb.ScaleBack(dets, s.W, s.H)
		var worst float64
		for i, d := range dets {
			e := want[4*(off+i) : 4*(off+i)+4]
			got := []float32{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2}
			for k := range got {
				diff := math.Abs(float64(got[k] - e[k]))
				worst = max(worst, diff)
				// scale_boxes divides in float32 too; allow a few ulps at ~1000 px.
				if diff > 1e-4*max(1, math.Abs(float64(e[k]))) {
					t.Fatalf("%dx%d det %d: box %v, want %v", s.W, s.H, i, got, e)
				}
			}
		}
		t.Logf("scale back to %dx%d: %d boxes, max |diff| %.3g px", s.W, s.H, len(dets), worst)
		off += s.Count
	}
}

func TestLetterboxFixtures(t *testing.T) {
	m := loadMeta(t)
	blob := readFixture(t, "letterbox.bin")
	for _, c := range m.Letterbox {
		for _, format := range []PixelFormat{RGB24, BGR24} {
			name := c.Src + "_to_" + itoa(c.DstW) + "x" + itoa(c.DstH) + map[PixelFormat]string{RGB24: "_rgb", BGR24: "_bgr"}[format]
			t.Run(name, func(t *testing.T) {
				lb, err := Plan(c.SrcW, c.SrcH, c.DstW, c.DstH)
				if err != nil {
					t.Fatal(err)
				}
				dw, dh := float64(lb.DstW-lb.NewW)/2, float64(lb.DstH-lb.NewH)/2
				if lb.Gain != c.Gain || dw != c.DW || dh != c.DH || lb.Top != c.Top ||
					lb.Left != c.Left || lb.NewW != c.NewW || lb.NewH != c.NewH {
					t.Fatalf("plan %+v, ultralytics gain %v dw %v dh %v top %d left %d new %dx%d",
						lb, c.Gain, c.DW, c.DH, c.Top, c.Left, c.NewW, c.NewH)
				}
				src := slices.Clone(blob[c.SrcOffset : c.SrcOffset+3*c.SrcW*c.SrcH])
				if format == BGR24 {
					for i := 0; i < len(src); i += 3 {
						src[i], src[i+2] = src[i+2], src[i]
					}
				}
				n := 3 * c.DstW * c.DstH
				want := blob[c.OutOffset : c.OutOffset+n]
				dst := make([]float32, n)
				if err := letterboxFloat(dst, src, 3*c.SrcW, lb, format); err != nil {
					t.Fatal(err)
				}
				maxd, sum := 0, 0
				for i, v := range dst {
					d := int(math.Round(float64(v)*255)) - int(want[i])
					d = max(d, -d)
					maxd = max(maxd, d)
					sum += d
				}
				mean := float64(sum) / float64(n)
				t.Logf("vs cv2: max |diff| %d/255, mean %.4f/255 over %d values", maxd, mean, n)
				// cv2 rounds in 11-bit fixed point; its scalar path alone would
				// leave a mean near 0.12, so the mean bound catches a drift.
				if maxd > 1 || mean > 0.02 {
					t.Fatalf("letterbox differs from cv2: max %d, mean %.4f", maxd, mean)
				}
			})
		}
	}
}

func itoa(v int) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDecodeFixture(t *testing.T) {
	m := loadMeta(t)
	d := m.Decode
	raw := readFloats(t, "decode_heads.bin")
	want := readFloats(t, "decode_expected.bin")
	levels, err := YOLOv5Levels(d.InW, d.InH)
	if err != nil {
		t.Fatal(err)
	}
	if got := DecodedRows(levels); got != d.Rows {
		t.Fatalf("DecodedRows %d, want %d", got, d.Rows)
	}
	no := 5 + d.NC
	var conv, perm [][]float32
	off := 0
	for _, l := range levels {
		n := 3 * no * l.NY * l.NX
		h := raw[off : off+n]
		off += n
		conv = append(conv, h)
		// Build the [3, ny, nx, no] layout from the conv layout.
		p := make([]float32, n)
		cells := l.NY * l.NX
		for a := range 3 {
			for j := range no {
				for c := range cells {
					p[(a*cells+c)*no+j] = h[(a*no+j)*cells+c]
				}
			}
		}
		perm = append(perm, p)
	}
	for _, tc := range []struct {
		name   string
		heads  [][]float32
		layout HeadLayout
	}{{"conv", conv, LayoutConv}, {"permuted", perm, LayoutPermuted}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeHeads(nil, tc.heads, levels, d.NC, tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d values, want %d", len(got), len(want))
			}
			var worst float64
			for i := range got {
				diff := math.Abs(float64(got[i] - want[i]))
				worst = max(worst, diff/max(1, math.Abs(float64(want[i]))))
				// Relative beyond 1: one float32 ulp at 300 px is 3e-5.
				if diff > 1e-5*max(1, math.Abs(float64(want[i]))) {
					t.Fatalf("value %d (row %d col %d): %v, want %v", i, i/no, i%no, got[i], want[i])
				}
			}
			t.Logf("max relative diff vs torch %.3g", worst)
		})
	}
}

func TestCOCO80MatchesTorchvision(t *testing.T) {
	m := loadMeta(t)
	if !slices.Equal(COCO80, m.COCO80) {
		t.Fatalf("COCO80 differs from torchvision's list:\n got %q\nwant %q", COCO80, m.COCO80)
	}
}
