package decode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"
)

// TestLetterboxersOption: explicit counts stand, negatives are refused and
// the automatic count follows GOMAXPROCS, capped, within letterboxBytes.
func TestLetterboxersOption(t *testing.T) {
	if _, err := Open(context.Background(), clips["tiny.mp4"], nil, Options{Letterboxers: -1}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("Letterboxers -1: %v, want ErrBadOptions", err)
	}
	if got := Letterboxers(5, 8192, 8192, 640); got != 5 {
		t.Errorf("explicit 5 letterboxers became %d", got)
	}
	if got, want := Letterboxers(0, 1920, 1080, 640), min(runtime.GOMAXPROCS(0), maxLetterboxers); got != want {
		t.Errorf("1080p: %d letterboxers, want %d", got, want)
	}
	if got := Letterboxers(0, 8192, 8192, 640); got != 1 {
		t.Errorf("8192x8192: %d letterboxers, want 1", got)
	}
	if got := Letterboxers(0, 64, 48, 64); got != 1 {
		t.Errorf("64x48 into 64x64: %d letterboxers, want 1", got)
	}
	if n := Letterboxers(0, 3840, 2160, 640); n > 1 && int64(n)*(3*3840*2160+2*(PictureBytes(3840, 2160)+3*640*640)) > letterboxBytes {
		t.Errorf("4K: %d letterboxers hold over %d bytes", n, letterboxBytes)
	}
}

// TestFanOutMatchesSerial decodes whole videos twice in lockstep, one
// letterboxer against several, and requires the same frames, the same
// letterbox bytes, the same Stats after every call and the same ending.
func TestFanOutMatchesSerial(t *testing.T) {
	sizeChange := sizeChangeClip(t)
	pal8, bottomUp := rawClips(t)
	if recs, _, _ := decodeAll(t, sizeChange, nil, Options{Size: 32}, 0); len(recs) != 20 || recs[0].Width != 1920 || recs[19].Width != 322 {
		t.Fatalf("size change clip: %+v; want 20 frames, 1920 wide, then 322", recs)
	}
	tests := []struct {
		name, path string
		opts       Options
	}{
		{"vtest.avi", clips["vtest.avi"], Options{}},
		{"Megamind.avi", clips["Megamind.avi"], Options{}},
		{"tree.avi", clips["tree.avi"], Options{}},                   // rgb24, upscaled
		{"Megamind_bugy.avi", clips["Megamind_bugy.avi"], Options{}}, // missing timestamps
		{"rot90.mp4", clips["rot90.mp4"], Options{}},
		{"rot180.mp4", clips["rot180.mp4"], Options{}},
		{"rot270.mp4", clips["rot270.mp4"], Options{}},
		{"odd422.mkv", clips["odd422.mkv"], Options{}}, // converted at the coded size
		{"odd10.mkv", clips["odd10.mkv"], Options{}},
		{"hd1080.mp4", clips["hd1080.mp4"], Options{}},
		{"damaged.avi", clips["damaged.avi"], Options{}},
		{"truncated_fast.mp4", clips["truncated_fast.mp4"], Options{}},
		{"allbad.avi", clips["allbad.avi"], Options{}}, // ErrCorrupt, no frame
		{"size change", sizeChange, Options{}},
		{"raw pal8", pal8, Options{}},                // a palette to copy
		{"raw bgr24 bottom-up", bottomUp, Options{}}, // negative strides
		{"vtest.avi every 3", clips["vtest.avi"], Options{Every: 3}},
		{"vfr.mp4 fps 3", clips["vfr.mp4"], Options{FPS: 3}},
		{"vtest.avi every 1000", clips["vtest.avi"], Options{Every: 1000}},
	}
	for _, tt := range tests {
		for _, pre := range []Preprocess{PreprocessExact, PreprocessFast} {
			for _, n := range []int{0, 3} {
				t.Run(fmt.Sprintf("%s/%s/letterboxers=%d", tt.name, pre, n), func(t *testing.T) {
					serial := tt.opts
					serial.Size, serial.Preprocess, serial.Letterboxers = 640, pre, 1
					fanned := serial
					fanned.Letterboxers = n
					open := func(o Options) (*Decoder, error) { return Open(context.Background(), tt.path, nil, o) }
					frames, err := lockstep(t, open, serial, fanned, nil)
					t.Logf("%d frames, then %v", frames, err)
				})
			}
		}
	}
}

// lockstep runs a serial and a fanned-out decoder side by side to their
// common end, which it returns with the frame count, failing at the first
// difference. wrap, if set, replaces both decoders' boxers.
func lockstep(t *testing.T, open func(Options) (*Decoder, error), serial, fanned Options, wrap func(boxer) boxer) (int, error) {
	t.Helper()
	ctx := context.Background()
	var ds [2]*Decoder
	for i, o := range []Options{serial, fanned} {
		d, err := open(o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer func() {
			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		if wrap != nil {
			mk := d.newBoxer
			d.newBoxer = func() boxer { return wrap(mk()) }
		}
		ds[i] = d
	}
	if ds[0].boxers != 1 {
		t.Fatalf("serial decoder has %d letterboxers", ds[0].boxers)
	}
	for n := 0; ; n++ {
		fa, ea := ds[0].Next(ctx)
		fb, eb := ds[1].Next(ctx)
		if n == 0 && eb == nil && (ds[1].boxers > 1) != (ds[1].fan != nil) {
			t.Fatalf("%d letterboxers, fanned out: %v", ds[1].boxers, ds[1].fan != nil)
		}
		if sa, sb := ds[0].Stats(), ds[1].Stats(); sa != sb {
			t.Fatalf("call %d: Stats\n%+v serial\n%+v fanned out", n, sa, sb)
		}
		if ea != nil || eb != nil {
			if fmt.Sprint(ea) != fmt.Sprint(eb) {
				t.Fatalf("call %d: %v serial, %v fanned out", n, ea, eb)
			}
			if ds[1].fan != nil {
				t.Errorf("letterboxers still running after %v", eb)
			}
			return n, eb
		}
		if !bytes.Equal(fa.Letterbox, fb.Letterbox) {
			t.Fatalf("frame %d: letterboxes differ", fa.Index)
		}
		a, b := *fa, *fb
		a.Letterbox, b.Letterbox = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("call %d:\n%+v serial\n%+v fanned out", n, a, b)
		}
	}
}

// sizeChangeClip is an H.264 transport stream whose pictures change size
// mid-stream: ten of 1920x1080 (coded 1920x1088), then ten of 322x240
// (coded 336x240).
func sizeChangeClip(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	x264 := []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	var parts []string
	for i, size := range []string{"1920x1080", "322x240"} {
		p := filepath.Join(dir, fmt.Sprintf("part%d.ts", i))
		if err := ffmpeg(append(append([]string{"-ss", fmt.Sprint(i), "-t", "1", "-i", clips["vtest.avi"], "-s", size}, x264...), p)...); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, "file '"+p+"'\n")
	}
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte(parts[0]+parts[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "switch.ts")
	if err := ffmpeg("-f", "concat", "-safe", "0", "-i", list, "-c", "copy", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawClips are 10 frames of uncompressed video in AVI: 160x120 paletted,
// and 162x120 BGR24 stored bottom-up (positive biHeight, which FFmpeg's
// muxer never writes), which the decoder hands out with negative strides.
func rawClips(t *testing.T) (pal8, bottomUp string) {
	t.Helper()
	dir := t.TempDir()
	pal8, bgr := filepath.Join(dir, "pal8.avi"), filepath.Join(dir, "bgr24.avi")
	for _, c := range []struct{ path, size, pixFmt string }{{pal8, "160x120", "pal8"}, {bgr, "162x120", "bgr24"}} {
		if err := ffmpeg("-i", clips["vtest.avi"], "-t", "1", "-s", c.size, "-pix_fmt", c.pixFmt, "-c:v", "rawvideo", c.path); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bgr)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("strf"))
	if i < 0 {
		t.Fatal("bgr24.avi has no strf chunk")
	}
	height := b[i+16 : i+20] // BITMAPINFOHEADER biHeight, negative: top-down
	binary.LittleEndian.PutUint32(height, uint32(-int32(binary.LittleEndian.Uint32(height))))
	bottomUp = filepath.Join(dir, "bgr24up.avi")
	if err := os.WriteFile(bottomUp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(context.Background(), bottomUp, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.NextPicture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ls := p.Frame.Linesize()[0]; ls >= 0 {
		t.Fatalf("bottom-up BGR24 decodes with stride %d, want a negative one", ls)
	}
	return pal8, bottomUp
}

// TestFanOutErrorsInPlace: an error from decoding (the reader failing
// halfway) and one from a letterboxer (injected at frame 7) come after the
// frames before them, named as on the serial path, with its Stats.
func TestFanOutErrorsInPlace(t *testing.T) {
	path := clips["faststart.mp4"]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	serial := Options{Size: 320, Letterboxers: 1}
	fanned := Options{Size: 320, Letterboxers: 3}

	t.Run("reader", func(t *testing.T) {
		open := func(o Options) (*Decoder, error) {
			return Open(context.Background(), path, &failingReader{r: bytes.NewReader(b), at: int64(len(b) * 9 / 10)}, o)
		}
		n, err := lockstep(t, open, serial, fanned, nil)
		if !errors.Is(err, errBroken) || n == 0 {
			t.Fatalf("%d frames, then %v; want some, then %v", n, err, errBroken)
		}
	})

	t.Run("letterbox", func(t *testing.T) {
		ts := pictureTS(t, path, 7)
		open := func(o Options) (*Decoder, error) { return Open(context.Background(), path, nil, o) }
		wrap := func(b boxer) boxer { return failingBoxer{boxer: b, ts: ts} }
		n, err := lockstep(t, open, serial, fanned, wrap)
		if !errors.Is(err, errBroken) || n != 7 {
			t.Fatalf("%d frames, then %v; want 7, then %v", n, err, errBroken)
		}
	})
}

var errBroken = errors.New("broken")

// failingReader fails every read from offset at on.
type failingReader struct {
	r   io.ReadSeeker
	at  int64
	pos int64
}

func (f *failingReader) Read(b []byte) (int, error) {
	if f.pos >= f.at {
		return 0, errBroken
	}
	n, err := f.r.Read(b[:min(int64(len(b)), f.at-f.pos)])
	f.pos += int64(n)
	return n, err
}

func (f *failingReader) Seek(off int64, whence int) (int64, error) {
	n, err := f.r.Seek(off, whence)
	f.pos = n
	return n, err
}

// failingBoxer fails on the picture with timestamp ts.
type failingBoxer struct {
	boxer
	ts int64
}

func (f failingBoxer) apply(dst *canvas, j boxJob) error {
	if bestEffortTimestamp(j.src) == f.ts {
		return errBroken
	}
	return f.boxer.apply(dst, j)
}

// pictureTS is the timestamp of path's picture i.
func pictureTS(t *testing.T, path string, i int) int64 {
	t.Helper()
	d, err := Open(context.Background(), path, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for {
		p, err := d.NextPicture(context.Background())
		if err != nil {
			t.Fatalf("picture %d: %v", i, err)
		}
		if p.Index == i {
			return p.TS
		}
	}
}

// gate holds pictures in the letterboxers so that frames stay in flight:
// the first until a later one is held, the later ones until open is closed.
type gate struct {
	first int64 // the first picture's timestamp
	once  sync.Once
	held  chan struct{} // closed once a later picture is held
	open  chan struct{}
}

type gateBoxer struct {
	boxer
	g *gate
}

func (b gateBoxer) apply(dst *canvas, j boxJob) error {
	g := b.g
	if bestEffortTimestamp(j.src) == g.first {
		<-g.held
	} else {
		g.once.Do(func() { close(g.held) })
		<-g.open
	}
	return b.boxer.apply(dst, j)
}

// gated opens path fanned out as opts say, behind a gate.
func gated(t *testing.T, ctx context.Context, path string, opts Options) (*Decoder, *gate) {
	t.Helper()
	g := &gate{first: pictureTS(t, path, 0), held: make(chan struct{}), open: make(chan struct{})}
	d, err := Open(ctx, path, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	mk := d.newBoxer
	d.newBoxer = func() boxer { return gateBoxer{boxer: mk(), g: g} }
	return d, g
}

// TestFanOutCancel cancels a Next that waits on frames being letterboxed:
// it and every later call say so, the letterboxers stop and nothing counts
// as kept that was not returned.
func TestFanOutCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, g := gated(t, ctx, clips["h264.mp4"], Options{Size: 320, Letterboxers: 3})
	defer d.Close()
	if _, err := d.Next(ctx); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := d.Next(ctx)
		errc <- err
	}()
	<-g.held // a frame is being letterboxed, and Next waits for it
	cancel()
	close(g.open) // the letterboxer finishes the picture in hand
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next: %v, want context.Canceled", err)
	}
	if d.fan != nil {
		t.Error("letterboxers still running after cancellation")
	}
	if st := d.Stats(); st.Kept != 1 {
		t.Errorf("Kept %d, want the 1 frame returned", st.Kept)
	}
	if _, err := d.Next(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v, want the cancellation again", err)
	}
}

// TestFanOutCloseInFlight closes decoders with frames in flight: held in a
// letterboxer, queued behind it, or letterboxed and not yet handed out.
func TestFanOutCloseInFlight(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		d, g := gated(t, context.Background(), clips["h264.mp4"], Options{Size: 320, Letterboxers: 3})
		if _, err := d.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(d.fan.queue); n == 0 {
			t.Fatal("no frame in flight")
		}
		go close(g.open)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Next(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Next after Close: %v, want ErrClosed", err)
		}
	})
	t.Run("any point", func(t *testing.T) {
		for stop := range 12 {
			d, err := Open(context.Background(), clips["h264.mp4"], nil, Options{Size: 320, Letterboxers: 4})
			if err != nil {
				t.Fatal(err)
			}
			for range stop {
				if _, err := d.Next(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		}
	})
}

// TestFanOutWithNextPicture: NextPicture after a fanned-out Next hands out
// the frames read ahead as the serial path's pictures and goes on
// serially; with sampling it refuses. NextPicture first keeps Next serial.
func TestFanOutWithNextPicture(t *testing.T) {
	path := clips["h264.mp4"]
	ctx := context.Background()
	t.Run("mixed", func(t *testing.T) {
		serial, err := Open(ctx, path, nil, Options{Size: 320, Letterboxers: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer serial.Close()
		// The gate keeps frame 1 in flight when Next returns frame 0.
		fanned, g := gated(t, ctx, path, Options{Size: 320, Letterboxers: 3})
		defer fanned.Close()
		ds := [2]*Decoder{serial, fanned}
		// Next, NextPicture four times, then alternately to the end.
		for call := 0; ; call++ {
			if call == 1 {
				if len(fanned.fan.queue) == 0 {
					t.Fatal("no frame read ahead")
				}
				close(g.open)
			}
			raw := call >= 1 && (call < 5 || call%2 == 1)
			var got [2]any
			var errs [2]error
			for i, d := range ds {
				if raw {
					p, err := d.NextPicture(ctx)
					if err == nil {
						q := *p
						q.Frame = nil
						got[i] = q
					}
					errs[i] = err
				} else {
					f, err := d.Next(ctx)
					if err == nil {
						g := *f
						g.Letterbox = bytes.Clone(f.Letterbox)
						got[i] = g
					}
					errs[i] = err
				}
			}
			if fmt.Sprint(errs[0]) != fmt.Sprint(errs[1]) || !reflect.DeepEqual(got[0], got[1]) {
				t.Fatalf("call %d (picture %v):\n%+v, %v serial\n%+v, %v fanned out", call, raw, got[0], errs[0], got[1], errs[1])
			}
			if sa, sb := ds[0].Stats(), ds[1].Stats(); sa != sb {
				t.Fatalf("call %d: Stats\n%+v serial\n%+v fanned out", call, sa, sb)
			}
			if errs[0] != nil {
				if !errors.Is(errs[0], io.EOF) {
					t.Fatal(errs[0])
				}
				break
			}
		}
	})
	t.Run("sampling", func(t *testing.T) {
		d, g := gated(t, ctx, path, Options{Size: 320, Letterboxers: 3, Every: 2})
		defer d.Close()
		if _, err := d.Next(ctx); err != nil {
			t.Fatal(err)
		}
		close(g.open) // frame 2 stays in flight until the next call
		if _, err := d.NextPicture(ctx); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("NextPicture after a sampled fan-out: %v, want ErrBadOptions", err)
		}
	})
	t.Run("picture first", func(t *testing.T) {
		d, err := Open(ctx, path, nil, Options{Size: 320, Letterboxers: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.NextPicture(ctx); err != nil {
			t.Fatal(err)
		}
		f, err := d.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Index != 1 || d.fan != nil {
			t.Errorf("Next after NextPicture: frame %d, fanned out: %v; want frame 1, serial", f.Index, d.fan != nil)
		}
	})
}
