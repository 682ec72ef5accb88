package eval

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vidpipe/vidpipe/results"
	"github.com/vidpipe/vidpipe/storage"
)

const okImages = `"images":[{"id":1,"file_name":"a_1.jpg"}],"categories":[{"id":1,"name":"person"}]`

func TestReadGroundTruthBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not json", `hello`, "invalid character"},
		{"array", `[]`, "want an object, found an array"},
		{"truncated", `{` + okImages + `,"annotations":[{"id":1,`, "unexpected EOF"},
		{"trailing data", `{` + okImages + `} {}`, "data after the top-level value"},
		{"no images", `{"images":[],"categories":[{"id":1}]}`, "no images or no categories"},
		{"bbox length", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3]}]}`, "annotations[0]: annotation 1: invalid input: bbox has 3 numbers, want 4"},
		{"bbox missing", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1}]}`, "bbox has 0 numbers"},
		{"bbox string", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":"1,2,3,4"}]}`, "annotations[0]"},
		{"negative width", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,-3,4]}]}`, "negative width"},
		{"overflow", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,1e999,4]}]}`, "annotations[0]"},
		{"negative area", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4],"area":-1}]}`, "area -1"},
		{"bad iscrowd", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4],"iscrowd":"yes"}]}`, "want 0, 1 or a boolean"},
		{"annotation id", `{` + okImages + `,"annotations":[{"image_id":1,"category_id":1,"bbox":[1,2,3,4]}]}`, "annotation without an id"},
		{"duplicate annotation", `{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4]},{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4]}]}`, "duplicate annotation id 1"},
		{"duplicate image", `{"images":[{"id":1},{"id":1}],"categories":[{"id":1}]}`, "images[1]: invalid input: duplicate image id 1"},
		{"image id", `{"images":[{"file_name":"x.jpg"}],"categories":[{"id":1}]}`, "image without an id"},
		{"string image id", `{"images":[{"id":"a"}],"categories":[{"id":1}]}`, "images[0]"},
		{"negative frame", `{"images":[{"id":1,"frame":-2}],"categories":[{"id":1}]}`, "negative frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadGroundTruth("gt.json", strings.NewReader(tc.doc))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "gt.json") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrInvalid naming gt.json and saying %q", err, tc.want)
			}
		})
	}
	// An annotation of an image or category the file does not list is left
	// out, as pycocotools leaves it.
	gt, err := ReadGroundTruth("gt.json", strings.NewReader(`{`+okImages+`,"annotations":[{"id":1,"image_id":9,"category_id":1,"bbox":[1,2,3,4]},{"id":2,"image_id":1,"category_id":1,"bbox":[1,2,3,4],"iscrowd":true}],"info":{"year":2017}}`))
	if err != nil || gt.Annotations != 1 || gt.Dropped != 1 {
		t.Errorf("gt %+v, err %v: want 1 annotation kept, 1 dropped", gt, err)
	}
}

func TestReadCOCOResultsBadInput(t *testing.T) {
	gt := makeGT(t, []int64{1}, map[int64]string{1: "person"}, []ann{{id: 1, img: 1, cat: 1, box: m1}})
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"object", `{"image_id":1}`, "want an array, found an object"},
		{"no score", `[{"image_id":1,"category_id":1,"bbox":[1,2,3,4]}]`, "[0]: invalid input: want image_id, category_id, bbox and score"},
		{"bbox length", `[{"image_id":1,"category_id":1,"bbox":[1,2,3,4]
,"score":0.5},{"image_id":1,"category_id":1,"bbox":[1,2,3,4,5],"score":0.5}]`, "[1]: invalid input: bbox has 5 numbers"},
		{"negative height", `[{"image_id":1,"category_id":1,"bbox":[1,2,3,-4],"score":0.5}]`, "negative width or height"},
		{"not json", `[{"image_id":1,]`, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ReadCOCOResults("dt.json", strings.NewReader(tc.doc), NewDetections(gt))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "dt.json") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrInvalid naming dt.json and saying %q", err, tc.want)
			}
		})
	}
	d := NewDetections(gt)
	if err := ReadCOCOResults("dt.json", strings.NewReader(`[{"image_id":7,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]`), d); err != nil || d.Counts.OffImage != 1 {
		t.Errorf("a detection on an unknown image: err %v, counts %+v; want it counted and dropped", err, d.Counts)
	}
}

func TestReadJSONLBadInput(t *testing.T) {
	gt := makeGT(t, []int64{1}, map[int64]string{1: "person"}, []ann{{id: 1, img: 1, cat: 1, box: m1}})
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not json", "{\"frame\":0,\"detections\":[]}\nnope\n", "line 2: invalid input"},
		{"no frame", `{"detections":[]}`, "line 1: invalid input: no frame"},
		{"box length", `{"frame":1,"detections":[{"class_id":0,"class":"person","conf":0.5,"box":[1,2,3]}]}`, "line 1: detections[0]: invalid input: bbox has 3 numbers"},
		{"box order", `{"frame":1,"detections":[{"class_id":0,"class":"person","conf":0.5,"box":[5,2,3,4]}]}`, "x2 < x1"},
		{"no conf", `{"frame":1,"detections":[{"class_id":0,"class":"person","box":[1,2,3,4]}]}`, "want class_id, class, conf and box"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVidpipeReader(NewDetections(gt))
			if err != nil {
				t.Fatal(err)
			}
			err = v.readJSONL(context.Background(), "clip/detections.jsonl", "clip", strings.NewReader(tc.doc))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "clip/detections.jsonl") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrInvalid naming the file and saying %q", err, tc.want)
			}
		})
	}
}

func TestLoadBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gtPath := filepath.Join(dir, "gt.json")
	if err := os.WriteFile(gtPath, gtJSON(t, []int64{1}, map[int64]string{1: "person"}, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	gt, err := LoadGroundTruth(ctx, localOpener{}, gtPath)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	if _, err := LoadGroundTruth(ctx, localOpener{}, missing); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing ground truth: %v, want ErrNotFound naming %s", err, missing)
	}
	if _, err := LoadGroundTruth(ctx, localOpener{}, dir); !errors.Is(err, ErrInvalid) {
		t.Errorf("a folder as ground truth: %v, want ErrInvalid", err)
	}
	if _, err := LoadDetections(ctx, localOpener{}, missing, gt); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing detections: %v, want ErrNotFound naming %s", err, missing)
	}
	if _, err := LoadDetections(ctx, localOpener{}, gtPath+".txt", gt); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing folder: %v, want ErrNotFound", err)
	}
	txt := filepath.Join(dir, "dets.txt")
	if err := os.WriteFile(txt, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDetections(ctx, localOpener{}, txt, gt); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "want a COCO results .json") {
		t.Errorf("unknown format: %v, want ErrInvalid", err)
	}
	if _, err := LoadDetections(ctx, localOpener{}, t.TempDir(), gt); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "no detections.jsonl or detections.parquet") {
		t.Errorf("empty folder: %v", err)
	}
	notParquet := filepath.Join(dir, "clip", results.ParquetFile)
	if err := os.MkdirAll(filepath.Dir(notParquet), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notParquet, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDetections(ctx, localOpener{}, notParquet, gt); err == nil || !strings.Contains(err.Error(), notParquet) {
		t.Errorf("not parquet: %v, want an error naming %s", err, notParquet)
	}
}

func TestLimitReader(t *testing.T) {
	for _, tc := range []struct {
		size  int
		large bool
	}{{10, false}, {11, true}} {
		_, err := io.ReadAll(&limitReader{r: bytes.NewReader(make([]byte, tc.size)), limit: 10})
		if errors.Is(err, ErrTooLarge) != tc.large {
			t.Errorf("%d bytes, limit 10: err %v", tc.size, err)
		}
	}
}

// Decoders of outside bytes never panic, and what they accept evaluates.
func FuzzReadGroundTruth(f *testing.F) {
	f.Add([]byte(`{` + okImages + `,"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4],"iscrowd":1}]}`))
	f.Add(gtJSON(f, []int64{1, 2}, map[int64]string{1: "a", 0: "b"}, []ann{{id: 3, img: 2, cat: 0, box: m1, area: 10}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		gt, err := ReadGroundTruth("gt.json", bytes.NewReader(b))
		if err != nil {
			return
		}
		d := NewDetections(gt)
		_ = ReadCOCOResults("dt.json", strings.NewReader(`[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]`), d)
		Evaluate(gt, d)
	})
}

func FuzzReadCOCOResults(f *testing.F) {
	f.Add([]byte(`[{"image_id":1,"category_id":1,"bbox":[0,0,50,50],"score":0.5},{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.9}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		gt := makeGT(t, []int64{1}, map[int64]string{1: "person"}, []ann{{id: 1, img: 1, cat: 1, box: m1}, {id: 2, img: 1, cat: 1, box: lg, crowd: true}})
		d := NewDetections(gt)
		if ReadCOCOResults("dt.json", bytes.NewReader(b), d) == nil {
			Evaluate(gt, d)
		}
	})
}
