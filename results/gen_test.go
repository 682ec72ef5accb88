package results

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// cocoClasses are the first classes of the COCO set vidpipe's models emit;
// class_id is the index.
var cocoClasses = []string{"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow"}

// genParams describes a synthetic detections table: jobs × videos ×
// frames, 25 fps, detections per frame either fixed or random in [0, 2*Dets].
type genParams struct {
	Seed       uint64
	Jobs       int
	Videos     int
	Frames     int
	Dets       int
	RandomDets bool
	// Classes limits the class vocabulary (0: all of cocoClasses).
	Classes int
}

func (p genParams) String() string {
	return fmt.Sprintf("s%d-j%d-v%d-f%d-d%d-r%t-c%d", p.Seed, p.Jobs, p.Videos, p.Frames, p.Dets, p.RandomDets, p.Classes)
}

// generate calls fn for every row, in the order a job writes them: video by
// video, frame order. The same params always give the same rows, so tests
// can regenerate the expected rows instead of holding them.
func generate(p genParams, fn func(Row)) {
	rng := rand.New(rand.NewPCG(p.Seed, 0x5eed))
	classes := cocoClasses
	if p.Classes > 0 {
		classes = classes[:p.Classes]
	}
	for j := range max(p.Jobs, 1) {
		job := fmt.Sprintf("job-%02d", j)
		for v := range p.Videos {
			video := fmt.Sprintf("video%03d", v)
			for f := range p.Frames {
				n := p.Dets
				if p.RandomDets {
					n = rng.IntN(2*p.Dets + 1)
				}
				for range n {
					// Skewed like street footage: person in ~40% of boxes.
					id := 0
					if rng.Float32() >= 0.4 {
						id = rng.IntN(len(classes))
					}
					x, y := rng.Float32()*1800, rng.Float32()*1000
					fn(Row{
						Job: job, Video: video, Frame: int64(f), PTS: float64(f) / 25,
						ClassID: int32(id), Class: classes[id], Conf: 0.25 + 0.75*rng.Float32(),
						X1: x, Y1: y, X2: x + 1 + rng.Float32()*120, Y2: y + 1 + rng.Float32()*80,
					})
				}
			}
		}
	}
}

func collect(p genParams) []Row {
	var rows []Row
	generate(p, func(r Row) { rows = append(rows, r) })
	return rows
}

// writeRows writes rows to an in-memory detections file.
func writeRows(t testing.TB, rows []Row, opts WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, opts)
	for _, r := range rows {
		if err := w.Add(r); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return buf.Bytes()
}

// matches is the filter's meaning written plainly, the oracle Scan's
// pruning and column-at-a-time evaluation are checked against.
func matches(f Filter, r Row) bool {
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	if !in(f.Jobs, r.Job) || !in(f.Videos, r.Video) || !in(f.Classes, r.Class) {
		return false
	}
	if len(f.ClassIDs) > 0 {
		ok := false
		for _, id := range f.ClassIDs {
			ok = ok || id == r.ClassID
		}
		if !ok {
			return false
		}
	}
	if f.MinConf != 0 && !(r.Conf >= f.MinConf) {
		return false
	}
	if f.From != nil && !(r.PTS >= *f.From) {
		return false
	}
	if f.To != nil && !(r.PTS < *f.To) {
		return false
	}
	if f.FromFrame != nil && r.Frame < *f.FromFrame {
		return false
	}
	if f.ToFrame != nil && r.Frame >= *f.ToFrame {
		return false
	}
	return true
}

func ptr[T any](v T) *T { return &v }
