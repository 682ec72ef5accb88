package detect

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// FuzzNMS feeds arbitrary float rows, NaN and Inf included: NMS must not
// panic, must agree with the literal reference port and must honour MaxDet,
// Conf and the class range.
func FuzzNMS(f *testing.F) {
	seed := func(vals ...float32) []byte {
		b := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	f.Add(seed(5, 5, 10, 10, 0.9, 0.8, 5, 5, 10, 10, 0.9, 0.7), uint8(6), uint8(3), false, false, uint8(2))
	f.Add(seed(nan, 5, 10, 10, 0.9, 0.8, 1, 2, inf, -inf, 0.5, 0.6, 3e38, -3e38, 3e38, 3e38, 1, 1), uint8(6), uint8(0), true, false, uint8(1))
	f.Add(seed(1, 1, 1, 1, inf, 1, 0, 2, 2, 2, 2, 1, nan, 1), uint8(7), uint8(200), false, true, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cols, conf uint8, multi, agnostic bool, maxDet uint8) {
		c := 6 + int(cols)%90
		vals := make([]float32, len(data)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		opt := NMSOptions{Conf: float32(conf) / 255, IoU: 0.45, MaxDet: int(maxDet%8) + 1, MultiLabel: multi, Agnostic: agnostic}
		dets, err := NMS(nil, vals, len(vals)/c, c, opt)
		if err != nil {
			t.Fatalf("valid input rejected: %v", err)
		}
		if want := referenceNMS(vals, len(vals)/c, c, opt); !slices.Equal(dets, want) {
			t.Fatalf("got %+v, reference NMS %+v", dets, want)
		}
		if len(dets) > opt.MaxDet {
			t.Fatalf("%d detections, MaxDet %d", len(dets), opt.MaxDet)
		}
		for _, d := range dets {
			if !(d.Conf > opt.Conf) {
				t.Fatalf("detection %+v does not pass conf %v", d, opt.Conf)
			}
			if d.ClassID < 0 || d.ClassID >= c-5 {
				t.Fatalf("class %d outside [0, %d)", d.ClassID, c-5)
			}
			if !finite(d.Box.X1) || !finite(d.Box.Y1) || !finite(d.Box.X2) || !finite(d.Box.Y2) {
				t.Fatalf("non-finite box %+v", d.Box)
			}
		}
	})
}
