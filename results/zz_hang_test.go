package results

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

func TestZZHang(t *testing.T) {
	good := writeRows(t, collect(genParams{Seed: 8, Videos: 2, Frames: 40, Dets: 2, Classes: 4}), WriterOptions{RowGroupRows: 50})
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 100000; it++ {
		data := append([]byte{}, good...)
		for k := 0; k < 1+rng.IntN(4); k++ {
			i := rng.IntN(len(data))
			switch rng.IntN(3) {
			case 0:
				data[i] ^= 1 << rng.IntN(8)
			case 1:
				data[i] = byte(rng.IntN(256))
			case 2:
				data[i] = []byte{0, 0xff, 0x7f, 0x80}[rng.IntN(4)]
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			src := NewBytesSource("fuzz.parquet", data)
			Scan(context.Background(), src, Filter{}, func(Row) error { return nil })
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			os.WriteFile("/tmp/hang.parquet", data, 0o644)
			t.Fatalf("iteration %d hangs", it)
		}
	}
}
