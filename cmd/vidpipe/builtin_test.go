package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vidpipe/vidpipe/internal/samples"
)

// TestBuiltinFindsPeople is the README's first command, scored: the
// built-in model runs on vtest.avi (every 4th frame, at 320 to keep CI
// short) and `vidpipe eval` scores its detections on the held-out frames
// against the teacher's labels it was distilled from
// (tools/distil/labels/holdout.json, the last fifth of the video, never
// trained on). Untrained weights score 0; the shipped ones find the
// pedestrians.
func TestBuiltinFindsPeople(t *testing.T) {
	const every = 4
	dir := t.TempDir()
	code, _, stderr := vidpipe(t, "run", "--imgsz", "320", "--every", "4", "--conf", "0.001", "--iou", "0.6",
		"--no-annotate", "--out", filepath.Join(dir, "out"), samples.Path(t, "vtest.avi"))
	if code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	// The ground truth of the frames analysed: vtest's held-out frames
	// whose number --every kept.
	var gt struct {
		Info        json.RawMessage  `json:"info"`
		Images      []map[string]any `json:"images"`
		Annotations []map[string]any `json:"annotations"`
		Categories  json.RawMessage  `json:"categories"`
	}
	readJSON(t, filepath.Join("..", "..", "tools", "distil", "labels", "holdout.json"), &gt)
	kept := map[float64]bool{}
	images := gt.Images[:0]
	for _, img := range gt.Images {
		if img["video"] == "vtest" && int(img["frame"].(float64))%every == 0 {
			images = append(images, img)
			kept[img["id"].(float64)] = true
		}
	}
	anns := gt.Annotations[:0]
	for _, a := range gt.Annotations {
		if kept[a["image_id"].(float64)] {
			anns = append(anns, a)
		}
	}
	gt.Images, gt.Annotations = images, anns
	if len(images) < 30 {
		t.Fatalf("%d held-out vtest frames in the labels, want at least 30", len(images))
	}
	b, err := json.Marshal(gt)
	if err != nil {
		t.Fatal(err)
	}
	gtPath := filepath.Join(dir, "gt.json")
	if err := os.WriteFile(gtPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := vidpipe(t, "eval", "--json", "--gt", gtPath, filepath.Join(dir, "out", "vtest", "detections.jsonl"))
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, stderr)
	}
	var r struct {
		AP50     float64 `json:"AP50"`
		PerClass map[string]struct {
			AP50 float64 `json:"AP50"`
			GT   int     `json:"gt"`
		} `json:"per_class"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("eval output: %v\n%s", err, stdout)
	}
	person := r.PerClass["person"]
	t.Logf("%d held-out frames, %d people: person AP50 %.3f, mAP50 %.3f", len(images), person.GT, person.AP50, r.AP50)
	const minPersonAP50 = 0.85 // 0.971 on these 40 frames when the model shipped
	if person.GT == 0 || person.AP50 < minPersonAP50 {
		t.Errorf("person AP50 %.3f on %d labelled people: want at least %.2f", person.AP50, person.GT, minPersonAP50)
	}
}
