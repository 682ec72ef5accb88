package infer

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLibraryPath(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory:", err)
	}
	tests := []struct {
		name, lib, cache, want string
	}{
		{name: "default", want: filepath.Join(home, ".cache/vidpipe/onnxruntime-1.24.1/libonnxruntime.so.1")},
		{name: "cache", cache: "/srv/cache", want: "/srv/cache/onnxruntime-1.24.1/libonnxruntime.so.1"},
		{name: "lib wins", lib: "/opt/ort/libonnxruntime.so", cache: "/srv/cache", want: "/opt/ort/libonnxruntime.so"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("VIDPIPE_ORT_LIB", tt.lib)
			t.Setenv("VIDPIPE_CACHE", tt.cache)
			if got := LibraryPath(); got != tt.want {
				t.Errorf("LibraryPath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInitMissingLibrary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	err := Init(path)
	if !errors.Is(err, ErrNoLibrary) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Init(%s) = %v, want ErrNoLibrary and fs.ErrNotExist", path, err)
	}
	for _, s := range []string{path, "run scripts/setup.sh"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	// Open reports it too, naming the model.
	_, err = Open(t.Context(), newTestModel(dynamicBatch, 8, 8, 4).bytes(), "m.onnx", Options{LibraryPath: path})
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "m.onnx") {
		t.Errorf("Open with a missing library = %v, want ErrNoLibrary naming m.onnx", err)
	}
}

func TestInitConcurrent(t *testing.T) {
	lib := LibraryPath()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = Init(lib) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Init #%d: %v", i, err)
		}
	}
	// ONNX Runtime loads once per process: another library is refused.
	other := filepath.Join(t.TempDir(), "other.so")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Init(other); err == nil || !strings.Contains(err.Error(), "already initialised from "+lib) {
		t.Errorf("Init(%s) after Init(%s) = %v, want an already-initialised error", other, lib, err)
	}
}

// TestInitBadLibrary gives Init a file that is not a shared library. A
// process loads ONNX Runtime once, so the check runs in a child process.
func TestInitBadLibrary(t *testing.T) {
	if path := os.Getenv("VIDPIPE_TEST_BAD_ORT_LIB"); path != "" {
		err := Init(path)
		if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), path) ||
			!strings.Contains(err.Error(), "run scripts/setup.sh") {
			t.Fatalf("Init(%s) = %v, want ErrNoLibrary naming the path and scripts/setup.sh", path, err)
		}
		// The outcome is final: the same error again, and for the real library.
		if again := Init(path); again != err {
			t.Errorf("second Init = %v, want the first error %v", again, err)
		}
		if again := Init(LibraryPath()); again != err {
			t.Errorf("Init(%s) after a failed Init = %v, want the first error", LibraryPath(), again)
		}
		return
	}
	bad := writeModel(t, "libonnxruntime.so.1", []byte("not an ELF file"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitBadLibrary$", "-test.v")
	cmd.Env = append(os.Environ(), "VIDPIPE_TEST_BAD_ORT_LIB="+bad)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInitBadLibrary") {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}
