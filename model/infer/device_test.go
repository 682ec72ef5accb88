package infer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	tests := []struct {
		in      string
		want    Device
		wantErr string
	}{
		{in: "", want: Device{Kind: CPU}},
		{in: "cpu", want: Device{Kind: CPU}},
		{in: " CPU ", want: Device{Kind: CPU}},
		{in: "cuda", want: Device{Kind: CUDA}},
		{in: "cuda:0", want: Device{Kind: CUDA}},
		{in: "cuda:3", want: Device{Kind: CUDA, Ordinal: 3}},
		{in: "CUDA:1", want: Device{Kind: CUDA, Ordinal: 1}},
		{in: "gpu", wantErr: "want cpu, cuda or cuda:N"},
		{in: "cuda:-1", wantErr: `ordinal "-1" is not a non-negative integer`},
		{in: "cuda:+1", wantErr: "not a non-negative integer"},
		{in: "cuda:x", wantErr: `ordinal "x" is not a non-negative integer`},
		{in: "cuda:", wantErr: "not a non-negative integer"},
		{in: "cuda:1:2", wantErr: "not a non-negative integer"},
		{in: "cuda:99999999999999999999", wantErr: "is above 1023"},
		{in: "cpu:0", wantErr: "cpu takes no ordinal"},
		{in: "tpu:0", wantErr: "want cpu, cuda or cuda:N"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDevice(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadDevice) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDevice(%q) = %v, %v; want ErrBadDevice saying %q", tt.in, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.in) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDevice(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			// String round-trips through ParseDevice.
			if again, err := ParseDevice(got.String()); err != nil || again != got {
				t.Errorf("ParseDevice(%q) = %v, %v; want %v", got.String(), again, err, got)
			}
		})
	}
}

func TestCUDAProviderOptions(t *testing.T) {
	for _, d := range []Device{{Kind: CUDA}, {Kind: CUDA, Ordinal: 2}} {
		got := cudaProviderOptions(d, false)
		if want := d.String()[len("cuda:"):]; len(got) != 1 || got["device_id"] != want {
			t.Errorf("cudaProviderOptions(%v) = %v, want device_id %s", d, got, want)
		}
		if got := cudaProviderOptions(d, true); got["use_tf32"] != "0" {
			t.Errorf("cudaProviderOptions(%v, fp32) = %v, want use_tf32 0", d, got)
		}
	}
}

// TestCUDAUnavailable opens a model on CUDA with the ONNX Runtime that
// scripts/setup.sh installs, which lacks the CUDA provider libraries: Open
// must fail with ErrNoCUDA and say which build is needed.
func TestCUDAUnavailable(t *testing.T) {
	lib := LibraryPath()
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_cuda.so")); err == nil {
		t.Skipf("%s has the CUDA provider beside it; this test covers the CPU-only install", lib)
	}
	model := newTestModel(dynamicBatch, 8, 8, 4).bytes()
	for _, dev := range []string{"cuda", "cuda:1"} {
		t.Run(dev, func(t *testing.T) {
			s, err := Open(context.Background(), model, "gpu.onnx", Options{Device: dev})
			if err == nil {
				s.Close()
				t.Fatal("Open on cuda succeeded without the CUDA provider")
			}
			t.Logf("error: %v", err)
			if errors.Is(err, ErrNoLibrary) {
				t.Fatal(err)
			}
			if !errors.Is(err, ErrNoCUDA) {
				t.Errorf("error does not wrap ErrNoCUDA")
			}
			for _, s := range []string{"gpu.onnx", dev, "GPU build of ONNX Runtime 1.24 or later", "cuDNN 9",
				"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so", "LD_LIBRARY_PATH", "scripts/gpu-pack.sh"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not mention %q", s)
				}
			}
		})
	}
}
