package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vidpipe/vidpipe/internal/samples"
)

// Clip is one uploaded video: its object, and its frames by ffprobe.
type Clip struct {
	Name   string // the video's name in a job: the object's base name
	URI    string
	Path   string // the local copy, under the cluster's Dir
	Frames int
}

// ClipOptions cut a clip of vtest.avi (768x576, 10 fps).
type ClipOptions struct {
	Start   float64 // seconds into vtest.avi
	Seconds float64
	// Scale, when set, is ffmpeg's scale filter argument ("320:-2"): a
	// smaller picture decodes faster.
	Scale string
}

// UploadClip cuts a clip of vtest.avi to H.264 at <Dir>/<prefix>/<name>.mp4
// and puts it at s3://videos/<prefix>/<name>.mp4.
func (c *Cluster) UploadClip(prefix, name string, o ClipOptions) Clip {
	c.T.Helper()
	if err := os.MkdirAll(filepath.Join(c.Dir, prefix), 0o755); err != nil {
		c.T.Fatal(err)
	}
	path := filepath.Join(c.Dir, prefix, name+".mp4")
	args := []string{"-ss", fmt.Sprint(o.Start), "-i", samples.Path(c.T, "vtest.avi"), "-t", fmt.Sprint(o.Seconds)}
	if o.Scale != "" {
		args = append(args, "-vf", "scale="+o.Scale)
	}
	samples.FFmpeg(c.T, append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path)...)
	body, err := os.ReadFile(path)
	if err != nil {
		c.T.Fatal(err)
	}
	key := prefix + "/" + name + ".mp4"
	c.Put("videos", key, body)
	return Clip{Name: name, URI: "s3://videos/" + key, Path: path, Frames: samples.FrameCount(c.T, path)}
}

// UploadClips cuts n clips of vtest.avi, 15 s apart, as
// s3://videos/clips/cam<i>.mp4 and returns each clip's frame count by
// ffprobe, by video name.
func (c *Cluster) UploadClips(n int, seconds string) map[string]int {
	c.T.Helper()
	secs, err := strconv.ParseFloat(seconds, 64)
	if err != nil {
		c.T.Fatalf("clip length %q: %v", seconds, err)
	}
	counts := map[string]int{}
	for i := range n {
		cl := c.UploadClip("clips", fmt.Sprintf("cam%d", i+1), ClipOptions{Start: float64(i * 15), Seconds: secs})
		counts[cl.Name] = cl.Frames
	}
	return counts
}

// Put writes an object with the server's root credentials.
func (c *Cluster) Put(bucket, key string, body []byte) {
	c.T.Helper()
	PutObject(c.T, c.S3.Client(), bucket, key, body)
}

// Get reads an object with the server's root credentials.
func (c *Cluster) Get(bucket, key string) []byte {
	c.T.Helper()
	return GetObject(c.T, c.S3.Client(), bucket, key)
}

// PutObject writes an object, failing the test on error.
func PutObject(tb testing.TB, c *s3.Client, bucket, key string, body []byte) {
	tb.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		tb.Fatalf("put %s: %v", key, err)
	}
}

// GetObject reads an object, failing the test on error.
func GetObject(tb testing.TB, c *s3.Client, bucket, key string) []byte {
	tb.Helper()
	b, err := getObject(c, bucket, key)
	if err != nil {
		tb.Fatalf("get %s: %v", key, err)
	}
	return b
}

func getObject(c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}
