package decode

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
		opts Options
		want error
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.mp4"), Options{}, fs.ErrNotExist},
		{"zero bytes", clips["empty.mp4"], Options{}, ErrCorrupt},
		{"text file", clips["text.txt"], Options{}, ErrNotVideo},
		{"audio only", clips["audio.m4a"], Options{}, ErrNotVideo},
		{"audio with cover art", clips["cover.m4a"], Options{}, ErrNotVideo},
		{"mp4 without moov", clips["truncated.mp4"], Options{}, ErrCorrupt},
		{"concat script", clips["concat.ffconcat"], Options{}, ErrFormatNotAllowed},
		{"unknown codec", clips["unknown_codec.avi"], Options{}, ErrNoDecoder},
		{"over max pixels", clips["h264.mp4"], Options{MaxPixels: 768*576 - 1}, ErrTooLarge},
		// FFmpeg's probe decodes this one under the pixel cap and cannot
		// say why it failed; the message names both causes.
		{"raw stream over max pixels", clips["tiny.ts"], Options{MaxPixels: 64*48 - 1}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(context.Background(), tt.path, nil, tt.opts)
			if err == nil {
				d.Close()
				t.Fatalf("Open succeeded, want %v", tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "open "+tt.path+": ") {
				t.Errorf("error %q does not name the input", err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestOpenAtMaxPixels(t *testing.T) {
	recs, _, _ := decodeAll(t, clips["h264.mp4"], nil, Options{MaxPixels: 768 * 576, Size: 32}, 0)
	if len(recs) != 20 {
		t.Fatalf("decoded %d frames, want 20", len(recs))
	}
}

// TestDamagedStreams checks that damaged inputs still yield what decodes,
// as many frames as ffprobe gets, with the damage counted.
func TestDamagedStreams(t *testing.T) {
	tests := []struct {
		clip        string
		wantMissing bool
	}{
		{"damaged.avi", false},       // noise over parts of the movie data
		{"truncated_fast.mp4", true}, // faststart MP4 cut at 60%
	}
	for _, tt := range tests {
		t.Run(tt.clip, func(t *testing.T) {
			path := clips[tt.clip]
			recs, st, info := decodeAll(t, path, nil, Options{Size: 64}, 0)
			t.Logf("%d frames of %d indexed; stats %+v", len(recs), info.Frames, st)
			if want := ffprobeCount(t, path); len(recs) != want {
				t.Errorf("decoded %d frames, ffprobe %d", len(recs), want)
			}
			if len(recs) == 0 {
				t.Fatal("no frames")
			}
			if !st.Damaged() || st.Corrupt == 0 {
				t.Errorf("stats %+v do not show the damage", st)
			}
			if want := int(info.Frames) - st.Packets; tt.wantMissing && (want <= 0 || st.Missing != want) {
				t.Errorf("Missing %d, want %d", st.Missing, want)
			}
			for i := 1; i < len(recs); i++ {
				if recs[i].Index != recs[i-1].Index+1 || recs[i].PTS <= recs[i-1].PTS {
					t.Errorf("frame %d: Index %d PTS %.3f after Index %d PTS %.3f", i, recs[i].Index, recs[i].PTS, recs[i-1].Index, recs[i-1].PTS)
				}
			}
		})
	}
}

// TestNoDecodablePicture checks that a video whose every packet is broken
// ends with ErrCorrupt, not a silent io.EOF.
func TestNoDecodablePicture(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, clips["allbad.avi"], nil, Options{Size: 32})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer d.Close()
	_, err = d.Next(ctx)
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, io.EOF) {
		t.Fatalf("Next: %v, want ErrCorrupt", err)
	}
	if st := d.Stats(); st.DecodeErrors == 0 {
		t.Errorf("stats %+v count no decode error", st)
	}
	t.Logf("%v", err)
}
