package torchpt

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/vidpipe/vidpipe/model/pickle"
)

// exercise reads everything a caller would from a file that opened.
func exercise(t *testing.T, f *File) {
	for _, n := range f.Names() {
		shape, ok := f.Shape(n)
		if !ok {
			t.Fatalf("Names lists %s but Shape does not know it", n)
		}
		if _, err := f.Tensor(n, shape); err != nil && !errors.Is(err, ErrDtype) {
			t.Fatalf("Tensor(%s): %v", n, err)
		}
	}
	_ = f.YAML()
	_ = f.ClassNames()
	_ = f.Strides()
	_ = f.Modules()
}

// FuzzOpen: whole files (seeds: the small fixtures).
func FuzzOpen(f *testing.F) {
	if b, err := os.ReadFile("testdata/dtypes.pt"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(bytes.NewReader(b), int64(len(b)), "fuzz.pt")
		if err == nil {
			exercise(t, file)
		}
	})
}

// FuzzDataPickle: data.pkl alone, in an archive whose storage records have
// exactly the sizes the pickle declares, so mutations reach the torch
// reconstructors and the module walk instead of failing on a missing record.
// Seeds: every fixture's data.pkl.
func FuzzDataPickle(f *testing.F) {
	f.Add([]byte("\x80\x02}."))
	f.Fuzz(func(t *testing.T, pkl []byte) {
		sizes := map[string]int64{}
		var total int64
		pickle.Decode(pkl, pickle.Options{
			Limits: pickle.Limits{MaxOps: 1 << 16, MaxDepth: 64, MaxStack: 1 << 12, MaxMemo: 1 << 12},
			PersistentLoad: func(pid any) (any, error) {
				if tp, ok := pid.(pickle.Tuple); ok && len(tp) == 5 {
					g, _ := tp[1].(pickle.Global)
					key, _ := tp[2].(string)
					n, _ := tp[4].(int64)
					if dt, ok := storageTypes[g.Name]; ok && n >= 0 && n < 1<<16 && total < 1<<20 {
						sizes[key] = n * int64(dt.size)
						total += n * int64(dt.size)
					}
				}
				return nil, nil
			},
		})
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		put := func(name string, b []byte) {
			fw, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(b)
		}
		put("ck/data.pkl", pkl)
		for key, n := range sizes {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			put("ck/data/"+key, b)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		file, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz.pt")
		if err == nil {
			exercise(t, file)
		}
	})
}
