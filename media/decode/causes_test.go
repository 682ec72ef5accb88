package decode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenNamesTrueCause checks that a refused format and an oversized
// picture are named as such, not as FFmpeg's generic EINVAL or EBUSY.
func TestOpenNamesTrueCause(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string, args ...string) []byte {
		p := filepath.Join(dir, name)
		if err := ffmpeg(append(args, p)...); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// MXF can reference other files: its demuxer is not allowed.
	mxf := gen("clip.mxf", "-f", "lavfi", "-i", "testsrc=s=96x64:r=25:d=1", "-c:v", "mpeg2video")
	y4m := gen("small.y4m", "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=1", "-pix_fmt", "yuv420p")
	if !bytes.Contains(y4m, []byte(" W64 H48 ")) {
		t.Fatalf("y4m header %q", y4m[:40])
	}
	// Raw JPEGs FFmpeg reads with its mjpeg demuxer, SOF patched.
	mjpeg := gen("tiny.mjpeg", "-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=1", "-c:v", "mjpeg", "-f", "mjpeg")
	sof := []byte{0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x30, 0x00, 0x40}
	if bytes.Count(mjpeg, sof) != 5 {
		t.Fatalf("want 5 baseline SOFs for 64x48 in the JPEG stream, have %d", bytes.Count(mjpeg, sof))
	}
	tests := []struct {
		name string
		path string
		want error
		msg  string
	}{
		{"mxf", write("clip.mxf", mxf), ErrFormatNotAllowed, "mxf is not on the allow-list (mov,mp4,"},
		{"y4m claiming 60000x60000", write("huge.y4m", bytes.Replace(y4m, []byte(" W64 H48 "), []byte(" W60000 H60000 "), 1)),
			ErrTooLarge, "60000x60000 frames exceed the limit of 67108864 pixels"},
		{"y4m claiming 20000x20000", write("big.y4m", bytes.Replace(y4m, []byte(" W64 H48 "), []byte(" W20000 H20000 "), 1)),
			ErrTooLarge, "20000x20000 frames exceed the limit of 67108864 pixels"},
		{"mjpeg claiming 60000x60000", write("huge.mjpeg", bytes.ReplaceAll(mjpeg, sof, []byte{0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60})),
			ErrTooLarge, "60000x60000 frames exceed the limit of 67108864 pixels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(context.Background(), tt.path, nil, Options{})
			if err == nil {
				d.Close()
				t.Fatalf("Open succeeded, want %v", tt.want)
			}
			t.Logf("%v", err)
			if !errors.Is(err, tt.want) || errors.Is(err, ErrCorrupt) {
				t.Errorf("Open: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			for _, generic := range []string{"Invalid argument", "Device or resource busy"} {
				if strings.Contains(err.Error(), generic) {
					t.Errorf("error %q hides the cause behind %q", err, generic)
				}
			}
		})
	}
}

// TestRawMJPEGDecodes: a short raw MJPEG stream, which FFmpeg probes as a
// pipe of JPEG images (jpeg_pipe), is a video of all its frames.
func TestRawMJPEGDecodes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "raw.mjpeg")
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc=s=96x64:r=10:d=1", "-c:v", "mjpeg", "-f", "mjpeg", p); err != nil {
		t.Fatal(err)
	}
	d, err := Open(context.Background(), p, nil, Options{Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := 0
	for {
		if _, err := d.Next(context.Background()); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 10 {
		t.Errorf("%d frames, want 10", n)
	}
}
