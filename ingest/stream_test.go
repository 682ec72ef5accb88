package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vidpipe/vidpipe/internal/s3test"
	"github.com/vidpipe/vidpipe/media/decode"
	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/storage"
)

// streamReport is what the helper process prints.
type streamReport struct {
	Frames  int     `json:"frames"`
	Size    int64   `json:"size"`
	Fetched int64   `json:"fetched"`
	Seconds float64 `json:"seconds"`
}

// TestStreamHelper is not a test: TestStreamFromS3 runs it in a child
// process, so that process's peak RSS measures the streaming decode alone.
func TestStreamHelper(t *testing.T) {
	src := os.Getenv("VIDPIPE_STREAM_SOURCE")
	if src == "" {
		t.Skip("helper process for TestStreamFromS3")
	}
	ctx := context.Background()
	var (
		r    io.ReadSeeker
		size int64
		obj  *storage.ObjectReader
	)
	if IsRemote(src) {
		b, key, err := storage.Open(ctx, src, storage.Options{S3Endpoint: os.Getenv("VIDPIPE_S3_ENDPOINT")})
		if err != nil {
			t.Fatal(err)
		}
		if obj, err = storage.NewReadSeeker(ctx, b, key, storage.ReaderOptions{}); err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		r, size = obj, obj.Size()
	}
	t0 := time.Now()
	dec, err := decode.Open(ctx, src, r, decode.Options{Size: 640})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	rep := streamReport{Size: size}
	for {
		_, err := dec.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rep.Frames++
	}
	rep.Seconds = time.Since(t0).Seconds()
	if obj != nil {
		rep.Fetched = obj.BytesFetched()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("REPORT %s\n", b)
}

func runStreamHelper(t *testing.T, src, endpoint string) (streamReport, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VIDPIPE_STREAM_SOURCE="+src, "VIDPIPE_S3_ENDPOINT="+endpoint)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stream helper: %v\n%s", err, out)
	}
	var rep streamReport
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "REPORT "); ok {
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep.Frames == 0 {
		t.Fatalf("stream helper reported nothing:\n%s", out)
	}
	return rep, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
}

// TestStreamFromS3 decodes a video of over 100 MB, an MP4 whose moov atom
// sits at the end, straight from a real S3 server: the bytes fetched stay
// within 10% of the object and the process stays under 300 MB, so nothing
// is downloaded whole. The frame rate against a local copy is logged; the
// target (>= 0.9) is a benchmark figure, not asserted here.
func TestStreamFromS3(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a 150 MB video")
	}
	srv := s3test.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket(t, "videos")
	dir := t.TempDir()
	big := filepath.Join(dir, "big.mp4")
	vtest := filepath.Join(builtin.CacheDir(), "videos", "vtest.avi")
	// MJPEG at high quality, vtest twice over: about 150 MB, moov at the end.
	cmd := exec.Command("ffmpeg", "-y", "-v", "error", "-stream_loop", "1", "-i", vtest, "-c:v", "mjpeg", "-q:v", "2", big)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s (run scripts/setup.sh): %v\n%s", big, err, out)
	}
	ctx := context.Background()
	b, _, err := storage.Open(ctx, "s3://videos", storage.Options{S3Endpoint: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Put(ctx, "cam/big.mp4", f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	remote, rss := runStreamHelper(t, "s3://videos/cam/big.mp4", srv.Endpoint)
	local, _ := runStreamHelper(t, big, "")
	ratio := float64(remote.Fetched) / float64(remote.Size)
	fpsRatio := (float64(remote.Frames) / remote.Seconds) / (float64(local.Frames) / local.Seconds)
	t.Logf("%.0f MB object: fetched %.3fx its size, peak RSS %d MB, %d frames, S3 %.0f frames/s vs local %.0f (%.2f)",
		float64(remote.Size)/1e6, ratio, rss>>20, remote.Frames,
		float64(remote.Frames)/remote.Seconds, float64(local.Frames)/local.Seconds, fpsRatio)
	if remote.Size < 100e6 {
		t.Fatalf("test video is only %d bytes", remote.Size)
	}
	if remote.Frames != local.Frames {
		t.Errorf("%d frames from S3, %d from the local copy", remote.Frames, local.Frames)
	}
	if ratio > 1.1 {
		t.Errorf("fetched %.3fx the object size; want <= 1.1", ratio)
	}
	if rss > 300<<20 {
		t.Errorf("peak RSS %d MB; want < 300 MB", rss>>20)
	}
}
