package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// evalGT is MODEL.md §7's example: one image (frame 3 of a clip), two
// people, the first found.
const evalGT = `{"images":[{"id":1,"file_name":"clip_000003.jpg","width":640,"height":480}],
"categories":[{"id":1,"name":"person"},{"id":3,"name":"car"}],
"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,50,50],"area":2500,"iscrowd":0},
{"id":2,"image_id":1,"category_id":1,"bbox":[100,0,50,50],"area":2500,"iscrowd":0}]}`

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvalCommand(t *testing.T) {
	dir := t.TempDir()
	gt := writeFile(t, filepath.Join(dir, "gt.json"), evalGT)
	for _, tc := range []struct {
		name, dets string
	}{
		{"coco results", writeFile(t, filepath.Join(dir, "dt.json"), `[{"image_id":1,"category_id":1,"bbox":[0,0,50,50],"score":0.9}]`)},
		{"vidpipe jsonl", writeFile(t, filepath.Join(dir, "out", "clip", "detections.jsonl"),
			`{"frame":3,"pts":0.1,"detections":[{"class_id":0,"class":"person","conf":0.9,"box":[0,0,50,50]}]}`+"\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := vidpipe(t, "eval", "--gt", gt, "--json", tc.dets)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
			}
			want := []string{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl", "per_class"}
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Errorf("keys %v, want %v", keys, want)
			}
			var ap, aps float64
			var per map[string]struct {
				AP, AP50 float64
				GT       int `json:"gt"`
			}
			for _, u := range []error{json.Unmarshal(got["AP"], &ap), json.Unmarshal(got["APs"], &aps), json.Unmarshal(got["per_class"], &per)} {
				if u != nil {
					t.Fatal(u)
				}
			}
			if math.Abs(ap-51.0/101) > 1e-9 || aps != -1 {
				t.Errorf("AP %v, APs %v; want 51/101 and -1", ap, aps)
			}
			if p, ok := per["person"]; !ok || len(per) != 1 || p.GT != 2 || math.Abs(p.AP50-51.0/101) > 1e-9 {
				t.Errorf("per_class %+v, want person only (car has no ground truth)", per)
			}
		})
	}
	t.Run("table", func(t *testing.T) {
		code, stdout, stderr := vidpipe(t, "eval", "--gt", gt, filepath.Join(dir, "dt.json"))
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for _, line := range []string{
			" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505",
			" Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000",
			"person  0.505  0.505       2",
		} {
			if !strings.Contains(stdout, line) {
				t.Errorf("no line %q in\n%s", line, stdout)
			}
		}
	})
}

func TestEvalCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	gt := writeFile(t, filepath.Join(dir, "gt.json"), evalGT)
	dt := writeFile(t, filepath.Join(dir, "dt.json"), `[]`)
	badGT := writeFile(t, filepath.Join(dir, "bad_gt.json"), strings.Replace(evalGT, "[100,0,50,50]", "[100,0,50]", 1))
	badDT := writeFile(t, filepath.Join(dir, "bad_dt.json"), `[{"image_id":1,"category_id":1,"bbox":[0,0,50,50]`)
	for _, tc := range []struct {
		name      string
		args      []string
		file, why string
	}{
		{"bbox length", []string{"--gt", badGT, dt}, badGT, "annotations[1]: annotation 2: invalid input: bbox has 3 numbers, want 4"},
		{"truncated detections", []string{"--gt", gt, badDT}, badDT, "unexpected EOF"},
		{"missing ground truth", []string{"--gt", filepath.Join(dir, "nope.json"), dt}, filepath.Join(dir, "nope.json"), "not found"},
		{"not ground truth", []string{"--gt", dt, dt}, dt, "want an object, found an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := vidpipe(t, append([]string{"eval"}, tc.args...)...)
			if code == 0 {
				t.Fatalf("exit 0\n%s", stdout)
			}
			if !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, tc.why) {
				t.Errorf("stderr does not name %s and say %q:\n%s", tc.file, tc.why, stderr)
			}
		})
	}
}
