package workers

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"

	"github.com/vidpipe/vidpipe/model/builtin"
	"github.com/vidpipe/vidpipe/model/detect"
)

// TestSessionsInputForms opens the built-in model in each input form a
// worker can feed: the uint8 form, converted at load, takes the frame's
// bytes and gives the float form's outputs exactly; a model that takes
// uint8 already cannot be fed floats.
func TestSessionsInputForms(t *testing.T) {
	ctx := context.Background()
	const size = 128
	path, err := builtin.Path(size)
	if err != nil {
		t.Fatal(err)
	}
	rgb := testImage(size)
	outs := map[string][]float32{}
	for _, in := range []string{InputAuto, InputFloat, InputU8} {
		m, err := LoadModel(ctx, path, size, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		set, err := OpenSessions(ctx, m, SessionOptions{Sessions: 1, Threads: 1, Batch: 1, Device: "cpu", Input: in}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("input %q: %v", in, err)
		}
		defer set.Close()
		sess := set.List[0]
		if got := sess.Bytes(); got != (in == InputU8) || set.Layout.Bytes != got {
			t.Fatalf("input %q: session takes bytes %v, layout %v", in, got, set.Layout.Bytes)
		}
		if sess.Bytes() {
			b, err := sess.InputBytes(1)
			if err != nil {
				t.Fatal(err)
			}
			copy(b, rgb)
		} else {
			f, err := sess.Input(1)
			if err != nil {
				t.Fatal(err)
			}
			detect.Planar(f, rgb)
		}
		o, err := sess.Run(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		outs[in] = slices.Clone(o[0].Data)
	}
	if !slices.Equal(outs[InputFloat], outs[InputU8]) || !slices.Equal(outs[InputAuto], outs[InputFloat]) {
		t.Error("the uint8 form's outputs differ from the float form's")
	}

	// A model converted to uint8 on disk keeps it under auto and u8, and
	// refuses float.
	m, err := LoadModel(ctx, path, size, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, err := convert(m, SessionOptions{Device: "cpu", Input: InputU8})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/u8.onnx"
	if err := os.WriteFile(dir, b, 0o644); err != nil {
		t.Fatal(err)
	}
	u8, err := LoadModel(ctx, dir, size, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convert(u8, SessionOptions{Device: "cpu", Input: InputFloat}); err == nil {
		t.Error("a uint8 model was fed floats")
	}
	if got, err := convert(u8, SessionOptions{Device: "cpu", Input: InputU8}); err != nil || !slices.Equal(got, b) {
		t.Errorf("a uint8 model under u8: converted again (%v)", err)
	}
	if _, err := convert(u8, SessionOptions{Device: "cpu", Input: "rgb"}); err == nil {
		t.Error("input form rgb was taken")
	}
}
