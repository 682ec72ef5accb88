package bus

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// These fuzz the JSON messages the coordinator and ingest take from the
// bus, which any holder of the role's credentials can publish: whatever
// the bytes, a decoder answers a validated value or an ErrBadMessage, and
// what it accepts survives its own encoder unchanged, so nothing accepted
// can fail later for what it held.

func sampleEvents() []Event {
	return []Event{
		{Type: VideoStarted, Job: "job1", Video: "vtest_avi", Source: "s3://videos/cams/vtest.avi",
			Width: 768, Height: 576, FPS: 10, Duration: 79.5, FramesEstimate: 795, Codec: "msmpeg4v3"},
		{Type: VideoEnded, Job: "job1", Video: "vtest_avi", Source: "/data/vtest.avi",
			Frames: 795, Decoded: 795, DecodeSeconds: 4.25},
		{Type: VideoEnded, Job: "job1", Video: "cut", Source: "/data/cut.mp4",
			Frames: 45, Decoded: 45, Truncated: true, Expected: 90, Missing: 45},
		{Type: VideoEnded, Job: "job1", Video: "ts", Source: "/data/cut.ts", Frames: 28, Decoded: 28, CorruptFrames: 1, Truncated: true},
		{Type: VideoEnded, Job: "j", Video: "missing", Source: "/nope.mp4", Error: "open /nope.mp4: no such file or directory"},
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, e := range sampleEvents() {
		b, err := EncodeEvent(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"type":"end","job":"j","video":"v","frames":-1}`,
		`{"type":"end","job":"j","video":"v","missing":5,"expected":3,"truncated":true}`,
		`{"type":"end","job":"j","video":"v","missing":5}`,
		`{"type":"start","job":"j","video":"v","fps":1e400}`,
		`{"type":"end","job":"j","video":"v","frames":1e3}`,
		`{"type":"end","job":"j","video":"v","Frames":3,"frames":4}`,
		`null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if err := DecodeEvent(b, &e); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		if ValidName("job", e.Job) != nil || ValidName("video", e.Video) != nil || (e.Type != VideoStarted && e.Type != VideoEnded) ||
			e.Frames < 0 || e.Missing < 0 || e.Missing > e.Expected || (e.Missing > 0 && !e.Truncated) {
			t.Fatalf("accepted an invalid event %+v", e)
		}
		enc, err := EncodeEvent(&e)
		if err != nil {
			t.Fatalf("encode an accepted event: %v", err)
		}
		var again Event
		if err := DecodeEvent(enc, &again); err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
	})
}

func FuzzDecodeTask(f *testing.F) {
	for _, task := range []Task{
		{Job: "job1", Video: "vtest_avi", Source: "s3://videos/vtest.avi", Size: 640},
		{Job: "job1", Video: "cam-2", Source: "/data/cam2.mp4", Every: 5, Size: 320, Preprocess: PreprocessFast, Conf: 0.25, IoU: 0.45, MaxDet: 300},
		{Job: "j", Video: "v", Source: "x.ts", FPS: 2.5, Size: 4096, Preprocess: PreprocessExact},
	} {
		b, err := EncodeTask(&task)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"job":"j","video":"v","source":"a","size":641}`,
		`{"job":"j","video":"v","source":"a","size":640,"every":2,"fps":1}`,
		`{"job":"j","video":"v","source":"a","size":640,"conf":1.5}`,
		`{"job":"j","video":"v","source":"a","size":640,"max_det":30001}`,
		`{"job":"j","video":"v","source":"a","size":640,"preprocess":"slow"}`,
		`{"job":"j","video":"v","source":"","size":640}`,
		`{"job":"j.k","video":"v","source":"a","size":640}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var task Task
		if err := DecodeTask(b, &task); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		if err := task.Validate(); err != nil {
			t.Fatalf("accepted a task that does not validate: %v", err)
		}
		if task.Size < 32 || task.Size > 4096 || task.MaxDet > MaxDet || task.Source == "" {
			t.Fatalf("accepted %+v", task)
		}
		enc, err := EncodeTask(&task)
		if err != nil {
			t.Fatalf("encode an accepted task: %v", err)
		}
		var again Task
		if err := DecodeTask(enc, &again); err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if !reflect.DeepEqual(task, again) {
			t.Fatalf("round trip changed the task:\n%+v\n%+v", task, again)
		}
	})
}

// FuzzResultRoundTrip adds to FuzzDecodeResult the properties: only
// ErrBadMessage, and an accepted result re-encodes (EncodeResult refuses
// non-finite numbers) to the same result.
func FuzzResultRoundTrip(f *testing.F) {
	for _, r := range []Result{
		{Job: "job1", Video: "vtest_avi", Seq: 41, Index: 82, PTS: 3.28,
			Detections: []Detection{{ClassID: 0, Class: "person", Conf: 0.87, Box: [4]float32{10.5, 20, 110.25, 300}}},
			Worker:     "w1", Batch: 8, PublishedUnixNano: 1764200000123456789, DoneUnixNano: 1764200000223456789,
			DecodeMS: 2.5, QueueMS: 40, InferMS: 12.5, PostMS: 0.25},
		{Job: "job1", Video: "v", Seq: 10, Index: 20, Error: "frame job1/v#10: bad pixels", Worker: "w2"},
		{Job: "j", Video: "v", Detections: []Detection{}},
	} {
		b, err := EncodeResult(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"job":"j","video":"v","seq":1,"frame":2,"detections":[{"conf":1e39}]}`))
	f.Add([]byte(`{"job":"j","video":"v","pts":1e308,"detections":[{"box":[1,2,3]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		if err := DecodeResult(b, &r); err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		enc, err := EncodeResult(&r)
		if err != nil {
			t.Fatalf("encode an accepted result: %v", err)
		}
		var again Result
		if err := DecodeResult(enc, &again); err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the result:\n%+v\n%+v", r, again)
		}
	})
}

// FuzzJobStateOf: ingest reads job records from KV, where the coordinator
// writes them; a record of any shape is a known state or ErrBadMessage.
func FuzzJobStateOf(f *testing.F) {
	for _, s := range []JobState{JobQueued, JobRunning, JobSucceeded, JobFailed, JobCancelled} {
		b, err := json.Marshal(map[string]any{"id": "job1", "state": s, "videos": []string{"a"}, "dispatched": true})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"state":"running"}`))
	f.Add([]byte(`{"state":1}`))
	f.Add([]byte(`{"State":"FAILED","state":"QUEUED"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := JobStateOf(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		switch s {
		case JobQueued, JobRunning:
			if s.Final() {
				t.Fatalf("%s is final", s)
			}
		case JobSucceeded, JobFailed, JobCancelled:
			if !s.Final() {
				t.Fatalf("%s is not final", s)
			}
		default:
			t.Fatalf("accepted state %q", s)
		}
	})
}
