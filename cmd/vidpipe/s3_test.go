package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vidpipe/vidpipe/coordinator/jobs"
	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/internal/samples"
	"github.com/vidpipe/vidpipe/results"
)

func putObject(t testing.TB, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func getObject(t testing.TB, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRunS3EndToEnd reads videos from a real S3 server (versitygw), writes
// the results back to it, and checks `vidpipe query` against a brute-force
// scan of the JSONL it wrote.
func TestRunS3EndToEnd(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket(t, "vidpipe")
	c := srv.Client()
	dir := t.TempDir()

	// One MP4 with its moov at the end (no faststart: the reader must seek)
	// and one with faststart, plus a file the prefix listing must skip.
	late := filepath.Join(dir, "late.mp4")
	fast := filepath.Join(dir, "fast.mp4")
	samples.FFmpeg(t, "-i", samples.Path(t, "vtest.avi"), "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", late)
	samples.FFmpeg(t, "-ss", "20", "-i", samples.Path(t, "vtest.avi"), "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", fast)
	for name, p := range map[string]string{"videos/cam1/late.mp4": late, "videos/cam2/fast.mp4": fast} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, c, "vidpipe", name, b)
	}
	putObject(t, c, "vidpipe", "videos/README.txt", []byte("not a video"))

	code, stdout, stderr := vidpipe(t, "run", "--s3-endpoint", srv.Endpoint, "--out", "s3://vidpipe/results", "--job", "j1",
		"--imgsz", "256", "--conf", "0.02", "s3://vidpipe/videos/")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, srv.SecretKey) {
		t.Fatal("the S3 secret key appears in the logs")
	}
	for _, key := range []string{"results/j1/summary.json", "results/j1/job.json",
		"results/j1/late/detections.parquet", "results/j1/late/detections.jsonl", "results/j1/late/annotated.mp4", "results/j1/late/stats.json",
		"results/j1/fast/detections.parquet"} {
		getObject(t, c, "vidpipe", key)
	}
	var job jobs.Record
	if err := json.Unmarshal(getObject(t, c, "vidpipe", "results/j1/job.json"), &job); err != nil || len(job.Videos) != 2 || len(job.Model.SHA256) != 64 {
		t.Fatalf("job.json: %v %+v", err, job)
	}

	// Brute force: every detection in the JSONL files.
	type det struct {
		video string
		frame int
		class string
		conf  float32
	}
	var all []det
	classes := map[string]int{}
	for _, v := range []string{"late", "fast"} {
		sc := bufio.NewScanner(bytes.NewReader(getObject(t, c, "vidpipe", "results/j1/"+v+"/detections.jsonl")))
		n := 0
		for sc.Scan() {
			var l detLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			for _, d := range l.Detections {
				all = append(all, det{v, l.Frame, d.Class, d.Conf})
				classes[d.Class]++
			}
			n++
		}
		if n != 20 {
			t.Errorf("%s: %d lines, want 20", v, n)
		}
	}
	if len(all) == 0 {
		t.Fatal("no detections at conf 0.02: the query comparison proves nothing")
	}
	top := ""
	for cl, n := range classes {
		if top == "" || n > classes[top] || (n == classes[top] && cl < top) {
			top = cl
		}
	}
	var confs []float32
	for _, d := range all {
		if d.class == top {
			confs = append(confs, d.conf)
		}
	}
	sort.Slice(confs, func(i, j int) bool { return confs[i] < confs[j] })
	minConf := confs[len(confs)/2]
	var want []string
	for _, d := range all {
		if d.class == top && d.conf >= minConf && d.video == "late" && d.frame >= 5 && d.frame < 15 {
			want = append(want, d.video+"/"+itoa(d.frame))
		}
	}

	code, stdout, stderr = vidpipe(t, "query", "--s3-endpoint", srv.Endpoint, "s3://vidpipe/results", "--job", "j1", "--video", "late",
		"--class", top, "--min-conf", formatFloat(minConf), "--from", "0.5", "--to", "0:01.5", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("query: exit %d\n%s", code, stderr)
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var r results.Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("query output %q: %v", sc.Text(), err)
		}
		got = append(got, r.Video+"/"+itoa(int(r.Frame)))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("query found %v\nbrute force %v", got, want)
	}
	t.Logf("query: %d of %d detections (class %s, conf >= %.4f, late, 0.5-1.5 s)", len(got), len(all), top, minConf)

	code, stdout, _ = vidpipe(t, "query", "--s3-endpoint", srv.Endpoint, "s3://vidpipe/results", "--count-by", "video", "--format", "csv")
	if code != 0 || !strings.Contains(stdout, "late,") || !strings.Contains(stdout, "fast,") {
		t.Errorf("count by video: exit %d\n%s", code, stdout)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func formatFloat(f float32) string {
	b, _ := json.Marshal(f)
	return string(b)
}
