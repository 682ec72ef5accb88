package eval

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/results"
	"github.com/vidpipe/vidpipe/storage"
)

// localOpener opens local paths as vidpipe's commands do, without S3.
type localOpener struct{}

func (localOpener) Open(ctx context.Context, uri string) (storage.Bucket, string, error) {
	return storage.Open(ctx, uri, storage.Options{})
}

// vdet is one vidpipe detection of a test clip.
type vdet struct {
	frame   int64
	classID int
	class   string
	conf    float32
	box     [4]float32 // x1, y1, x2, y2
}

// clipDets: a person on frame 3, a car on frame 5, a motorcycle on frame 7,
// each on its own spot, and a person on frame 9, which no image shows.
var clipDets = []vdet{
	{3, 0, "person", 0.9, [4]float32{10, 20, 60, 120}},
	{5, 2, "car", 0.8, [4]float32{200, 100, 300, 160}},
	{7, 3, "motorcycle", 0.7, [4]float32{400, 300, 480, 360}},
	{9, 0, "person", 0.6, [4]float32{0, 0, 40, 40}},
}

// writeClip writes video's detections.jsonl and detections.parquet under
// dir, as the coordinator does (frames 0..9, most without detections).
func writeClip(t *testing.T, dir, video string, dets []vdet) string {
	t.Helper()
	vdir := filepath.Join(dir, video)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	jf, err := os.Create(filepath.Join(vdir, results.JSONLFile))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := os.Create(filepath.Join(vdir, results.ParquetFile))
	if err != nil {
		t.Fatal(err)
	}
	pw := results.NewWriter(pf, results.WriterOptions{})
	enc := json.NewEncoder(jf)
	type jd struct {
		ClassID int        `json:"class_id"`
		Class   string     `json:"class"`
		Conf    float32    `json:"conf"`
		Box     [4]float32 `json:"box"`
	}
	for f := range int64(10) {
		line := struct {
			Frame      int64   `json:"frame"`
			PTS        float64 `json:"pts"`
			Detections []jd    `json:"detections"`
		}{Frame: f, PTS: float64(f) / 10, Detections: []jd{}}
		for _, d := range dets {
			if d.frame != f {
				continue
			}
			line.Detections = append(line.Detections, jd{d.classID, d.class, d.conf, d.box})
			row := results.Row{Job: "j1", Video: video, Frame: f, PTS: line.PTS, ClassID: int32(d.classID), Class: d.class, Conf: d.conf,
				X1: d.box[0], Y1: d.box[1], X2: d.box[2], Y2: d.box[3]}
			if err := pw.Add(row); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Encode(line); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []func() error{pw.Close, pf.Close, jf.Close} {
		if err := c(); err != nil {
			t.Fatal(err)
		}
	}
	return vdir
}

// clipGT is ground truth for clipDets' first three frames, in COCO-91 ids
// (the motorcycle's category named otherwise, so only its id can match),
// each image naming its frame another way.
func clipGT(video string) map[string]any {
	img := func(id int64, name string, extra ...any) map[string]any {
		m := map[string]any{"id": id, "file_name": name, "width": 640, "height": 480}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		if video != "" {
			m["video"] = video
		}
		return m
	}
	box := func(id, img, cat int64, x1, y1, x2, y2 float64) map[string]any {
		return map[string]any{"id": id, "image_id": img, "category_id": cat, "bbox": []float64{x1, y1, x2 - x1, y2 - y1}, "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
	}
	return map[string]any{
		"images":      []any{img(10, "clip_000003.jpg"), img(11, "frames/000005.png"), img(12, "still.jpg", "frame", 7)},
		"categories":  []any{map[string]any{"id": 1, "name": "person"}, map[string]any{"id": 3, "name": "car"}, map[string]any{"id": 4, "name": "motorbike"}},
		"annotations": []any{box(1, 10, 1, 10, 20, 60, 120), box(2, 11, 3, 200, 100, 300, 160), box(3, 12, 4, 400, 300, 480, 360)},
	}
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadBoth(t *testing.T, gtPath, dets string) (*Result, *Detections, error) {
	t.Helper()
	ctx := context.Background()
	gt, err := LoadGroundTruth(ctx, localOpener{}, gtPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDetections(ctx, localOpener{}, dets, gt)
	if err != nil {
		return nil, nil, err
	}
	return Evaluate(gt, d), d, nil
}

// Every frame rule and both class rules must hold for AP to be 1: each
// detection sits on its own spot.
func TestEvalVidpipeResults(t *testing.T) {
	dir := t.TempDir()
	vdir := writeClip(t, dir, "clip", clipDets)
	for _, tc := range []struct {
		name, gtVideo, dets string
	}{
		{"jsonl", "", filepath.Join(vdir, results.JSONLFile)},
		{"parquet", "", filepath.Join(vdir, results.ParquetFile)},
		{"folder", "", dir},
		{"video field", "clip", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gt := writeJSON(t, filepath.Join(t.TempDir(), "gt.json"), clipGT(tc.gtVideo))
			res, d, err := loadBoth(t, gt, tc.dets)
			if err != nil {
				t.Fatal(err)
			}
			checkStats(t, res.Stats, map[string]float64{"AP": 1, "AP50": 1, "AR100": 1})
			if c := d.Counts; c.Kept != 3 || c.OffImage != 1 || c.OffClass != 0 || !slices.Equal(c.Videos, []string{"clip"}) {
				t.Errorf("counts %+v, want 3 kept, 1 off image (frame 9), video clip", c)
			}
		})
	}
}

func TestEvalVidpipeMapping(t *testing.T) {
	dir := t.TempDir()
	writeClip(t, dir, "clip", clipDets)
	t.Run("0-based by name", func(t *testing.T) {
		doc := clipGT("")
		doc["categories"] = []any{map[string]any{"id": 0, "name": "person"}, map[string]any{"id": 1, "name": "car"}}
		doc["annotations"] = doc["annotations"].([]any)[:2]
		doc["annotations"].([]any)[0].(map[string]any)["category_id"] = 0
		doc["annotations"].([]any)[1].(map[string]any)["category_id"] = 1
		res, d, err := loadBoth(t, writeJSON(t, filepath.Join(t.TempDir(), "gt.json"), doc), dir)
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, res.Stats, map[string]float64{"AP": 1, "AR100": 1})
		if c := d.Counts; c.Kept != 2 || !slices.Equal(c.Classes, []string{"motorcycle"}) {
			t.Errorf("counts %+v, want 2 kept and motorcycle unmapped (no id fallback for a 0-based GT)", c)
		}
	})
	t.Run("other video", func(t *testing.T) {
		res, _, err := loadBoth(t, writeJSON(t, filepath.Join(t.TempDir(), "gt.json"), clipGT("other")), dir)
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, res.Stats, map[string]float64{"AP": 0, "AR100": 0})
	})
	t.Run("two videos need video fields", func(t *testing.T) {
		two := t.TempDir()
		writeClip(t, two, "a", clipDets)
		writeClip(t, two, "b", nil)
		gt := writeJSON(t, filepath.Join(t.TempDir(), "gt.json"), clipGT(""))
		if _, _, err := loadBoth(t, gt, two); !errors.Is(err, ErrNoMatch) {
			t.Errorf("err %v, want ErrNoMatch", err)
		}
		res, _, err := loadBoth(t, writeJSON(t, filepath.Join(t.TempDir(), "gt.json"), clipGT("a")), two)
		if err != nil {
			t.Fatal(err)
		}
		checkStats(t, res.Stats, map[string]float64{"AP": 1})
	})
	t.Run("no frame names", func(t *testing.T) {
		doc := clipGT("")
		doc["images"] = []any{map[string]any{"id": 10, "file_name": "a.jpg"}}
		gt := writeJSON(t, filepath.Join(t.TempDir(), "gt.json"), doc)
		if _, _, err := loadBoth(t, gt, dir); !errors.Is(err, ErrNoMatch) {
			t.Errorf("err %v, want ErrNoMatch", err)
		}
	})
}

func TestImageFrame(t *testing.T) {
	seven := int64(7)
	for _, tc := range []struct {
		im    Image
		frame int64
		ok    bool
	}{
		{Image{FileName: "vtest_000123.jpg"}, 123, true},
		{Image{FileName: "000123.jpg"}, 123, true},
		{Image{FileName: "a/b_c/x_42.png"}, 42, true},
		{Image{FileName: `dir\clip_5.jpg`}, 5, true},
		{Image{FileName: "clip_000003.jpg", Frame: &seven}, 7, true},
		{Image{FileName: "clip-3.jpg"}, 0, false},
		{Image{FileName: "clip_.jpg"}, 0, false},
		{Image{FileName: "clip_x1.jpg"}, 0, false},
		{Image{FileName: ""}, 0, false},
	} {
		f, ok := imageFrame(tc.im)
		if f != tc.frame || ok != tc.ok {
			t.Errorf("%+v: frame %d %v, want %d %v", tc.im, f, ok, tc.frame, tc.ok)
		}
	}
}
