package infer

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime release vidpipe is built and tested against.
const ORTVersion = "1.24.1"

// LibraryPath returns where the ONNX Runtime shared library is expected:
// $VIDPIPE_ORT_LIB if set, else $VIDPIPE_CACHE (default ~/.cache/vidpipe)
// followed by onnxruntime-1.24.1/libonnxruntime.so.1, as scripts/setup.sh
// installs it.
func LibraryPath() string {
	if p := os.Getenv("VIDPIPE_ORT_LIB"); p != "" {
		return p
	}
	cache := os.Getenv("VIDPIPE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		cache = filepath.Join(home, ".cache", "vidpipe")
	}
	return filepath.Join(cache, "onnxruntime-"+ORTVersion, "libonnxruntime.so.1")
}

// env is the process-wide ONNX Runtime environment. ONNX Runtime allows one
// per process, so the first Init that gets as far as loading the library
// decides the outcome for every later call.
var env struct {
	mu   sync.Mutex
	done bool
	path string
	err  error
}

// Init loads the ONNX Runtime library at path and creates the process-wide
// environment. It is safe for concurrent use: the first call that loads a
// library wins, and every later call returns its result (or an error if it
// names a different library). A path that does not exist is always reported
// as such and never recorded, so a later call with a correct path can still
// succeed. The environment lives until the process exits.
func Init(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("init onnx runtime %s: %w: %w (run scripts/setup.sh)", path, ErrNoLibrary, err)
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.done {
		if env.err == nil && path != env.path {
			return fmt.Errorf("init onnx runtime %s: already initialised from %s", path, env.path)
		}
		return env.err
	}
	env.done = true
	env.path = path
	ort.SetSharedLibraryPath(path)
	// ONNX Runtime logs straight to stderr, bypassing slog; keep it to errors.
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		env.err = fmt.Errorf("init onnx runtime %s: %w: %w (run scripts/setup.sh)", path, ErrNoLibrary, err)
	}
	return env.err
}
