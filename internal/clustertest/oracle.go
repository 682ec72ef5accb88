package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vidpipe/vidpipe/coordinator/jobs"
)

// Tally is what the outputs hold of one video against ffprobe's count. Each
// detections.jsonl line carries its frame's index, the id the frame was
// published under (the job samples every frame), so a frame missing from the
// outputs is a gap and a frame written twice a duplicate.
type Tally struct {
	Video    string
	State    string
	Expected int // frames ffprobe decodes from the clip
	Lines    int // lines in detections.jsonl
	// Failed are frames the job recorded as failed (poison frames): accounted
	// for, not lost.
	Failed int
	// Lost frames are in the clip and neither in the outputs nor recorded as
	// failed; Duplicated counts lines beyond the first per frame, and lines
	// naming a frame the clip does not have.
	Lost, Duplicated int
	// Unordered counts lines whose frame comes before the previous line's.
	Unordered int
	// Missing lists the first lost frames, for the failure message.
	Missing []int
}

// Count reads each video's detections.jsonl from the results bucket and
// counts gaps and duplicates against expected (frames by video name). A
// video with no detections in the record counts as all frames missing; a
// video not in expected is counted with no expectation (every line a
// duplicate), so a stray output cannot pass unnoticed.
func (c *Cluster) Count(rec *jobs.Record, expected map[string]int) []Tally {
	c.T.Helper()
	var out []Tally
	for _, v := range rec.Videos {
		t := Tally{Video: v.Name, State: v.State, Expected: expected[v.Name]}
		if v.Stats != nil {
			t.Failed = v.Stats.FailedFrames
		}
		seen := make([]int, t.Expected)
		if uri := v.Results["detections_json"]; uri != "" {
			bucket, key, ok := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
			if !ok || !strings.HasPrefix(uri, "s3://") {
				c.T.Fatalf("video %s: detections at %q, want s3://bucket/key", v.Name, uri)
			}
			body, err := getObject(c.S3.Client(), bucket, key)
			if err != nil {
				c.T.Errorf("video %s: %s listed but not readable: %v", v.Name, uri, err)
			}
			prev := -1
			sc := bufio.NewScanner(bytes.NewReader(body))
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				var l struct {
					Frame *int `json:"frame"`
				}
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Frame == nil {
					c.T.Fatalf("%s line %d: %q is not a detections line (%v)", uri, t.Lines+1, sc.Bytes(), err)
				}
				t.Lines++
				if *l.Frame < prev {
					t.Unordered++
				}
				prev = *l.Frame
				if f := *l.Frame; f >= 0 && f < t.Expected {
					seen[f]++
					if seen[f] > 1 {
						t.Duplicated++
					}
				} else {
					t.Duplicated++
				}
			}
		}
		gaps := 0
		for f, n := range seen {
			if n == 0 {
				gaps++
				if len(t.Missing) < 10 {
					t.Missing = append(t.Missing, f)
				}
			}
		}
		t.Lost = max(gaps-t.Failed, 0)
		out = append(out, t)
	}
	return out
}

// Sum adds tallies up: the job's figures.
func Sum(ts []Tally) Tally {
	var s Tally
	for _, t := range ts {
		s.Expected += t.Expected
		s.Lines += t.Lines
		s.Failed += t.Failed
		s.Lost += t.Lost
		s.Duplicated += t.Duplicated
	}
	return s
}

func (t Tally) String() string {
	s := fmt.Sprintf("%s (%s): %d of %d frames in the outputs, %d failed, %d lost, %d duplicated, %d out of order",
		t.Video, t.State, t.Lines, t.Expected, t.Failed, t.Lost, t.Duplicated, t.Unordered)
	if len(t.Missing) > 0 {
		s += fmt.Sprintf(", first missing %v", t.Missing)
	}
	return s
}

// CheckExactlyOnce fails the test unless every video succeeded with every
// frame of its clip in the outputs once, and the job's statistics agree.
func (c *Cluster) CheckExactlyOnce(rec *jobs.Record, counts map[string]int) {
	c.T.Helper()
	ts := c.Count(rec, counts)
	for _, t := range ts {
		if t.State != "succeeded" || t.Lines != t.Expected || t.Lost+t.Duplicated+t.Failed+t.Unordered != 0 {
			c.T.Errorf("video %s", t)
		}
	}
	total := Sum(ts).Lines
	if rec.Stats == nil || rec.Stats.Frames != total || rec.Stats.FailedFrames != 0 {
		c.T.Errorf("job stats %+v, want %d frames and none failed", rec.Stats, total)
	}
}
