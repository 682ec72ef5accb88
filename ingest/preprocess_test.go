package ingest

import (
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/media/decode"
)

// TestPreprocessNamesAgree keeps the names a task may carry and the ones the
// decoder knows the same: a job must not pass validation and then fail at
// every video.
func TestPreprocessNamesAgree(t *testing.T) {
	names := decode.PreprocessNames()
	if !slices.Equal(names, []string{bus.PreprocessExact, bus.PreprocessFast}) {
		t.Fatalf("decode knows %v, bus %v", names, []string{bus.PreprocessExact, bus.PreprocessFast})
	}
	for _, n := range append(names, "") {
		if err := bus.CheckPreprocess(n); err != nil {
			t.Errorf("bus refuses %q: %v", n, err)
		}
		if _, err := decode.ParsePreprocess(n); err != nil {
			t.Errorf("decode refuses %q: %v", n, err)
		}
	}
	for _, n := range []string{"cv2", "EXACT", " fast"} {
		if bus.CheckPreprocess(n) == nil {
			t.Errorf("bus accepts %q", n)
		}
		if _, err := decode.ParsePreprocess(n); err == nil {
			t.Errorf("decode accepts %q", n)
		}
	}
}

// TestVideoOfCarriesPreprocess checks that a task's preprocessing reaches
// the video, and that none leaves the Ingester's own.
func TestVideoOfCarriesPreprocess(t *testing.T) {
	task := bus.Task{Job: "j", Video: "v", Source: "x.mp4", Size: 640, Preprocess: bus.PreprocessFast}
	if err := task.Validate(); err != nil {
		t.Fatal(err)
	}
	if v := videoOf(&task); v.Preprocess != "fast" {
		t.Errorf("video preprocess %q, want fast", v.Preprocess)
	}
	task.Preprocess = ""
	if v := videoOf(&task); v.Preprocess != "" {
		t.Errorf("video preprocess %q, want empty", v.Preprocess)
	}
	task.Preprocess = "cv2"
	if err := task.Validate(); err == nil {
		t.Error("a task with preprocess cv2 validates")
	}
}
