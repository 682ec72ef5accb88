package infer

import (
	"fmt"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// DeviceKind is the kind of processor a Session runs on.
type DeviceKind int

// Device kinds.
const (
	CPU DeviceKind = iota
	CUDA
)

func (k DeviceKind) String() string {
	switch k {
	case CPU:
		return "cpu"
	case CUDA:
		return "cuda"
	}
	return fmt.Sprintf("DeviceKind(%d)", int(k))
}

// Device names a processor: the CPU, or CUDA GPU number Ordinal.
type Device struct {
	Kind    DeviceKind
	Ordinal int
}

func (d Device) String() string {
	if d.Kind == CUDA {
		return fmt.Sprintf("cuda:%d", d.Ordinal)
	}
	return d.Kind.String()
}

// maxOrdinal bounds CUDA device numbers; no machine has more GPUs, and it
// keeps a typo such as "cuda:100000000" from reaching the driver.
const maxOrdinal = 1023

// ParseDevice parses "cpu" (or ""), "cuda" (GPU 0) and "cuda:N", ignoring case.
func ParseDevice(s string) (Device, error) {
	kind, ord, hasOrd := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	switch kind {
	case "", "cpu":
		if hasOrd {
			return Device{}, fmt.Errorf("parse device %q: %w: cpu takes no ordinal", s, ErrBadDevice)
		}
		return Device{Kind: CPU}, nil
	case "cuda":
		if !hasOrd {
			return Device{Kind: CUDA}, nil
		}
		// Atoi alone would accept "+1" and "-1"; an ordinal is plain digits.
		if ord == "" || strings.Trim(ord, "0123456789") != "" {
			return Device{}, fmt.Errorf("parse device %q: %w: ordinal %q is not a non-negative integer", s, ErrBadDevice, ord)
		}
		n, err := strconv.Atoi(ord)
		if err != nil || n > maxOrdinal {
			return Device{}, fmt.Errorf("parse device %q: %w: ordinal %s is above %d", s, ErrBadDevice, ord, maxOrdinal)
		}
		return Device{Kind: CUDA, Ordinal: n}, nil
	}
	return Device{}, fmt.Errorf("parse device %q: %w: want cpu, cuda or cuda:N", s, ErrBadDevice)
}

// cudaHelp says which ONNX Runtime build the CUDA provider needs. The npm
// package scripts/setup.sh installs from carries libonnxruntime.so.1 with the
// CUDA provider bridge but not the provider libraries themselves (npm fetches
// those from NuGet at install time).
const cudaHelp = "device cuda needs the GPU build of ONNX Runtime " + ORTVersion +
	" (CUDA 12, cuDNN 9): put libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so" +
	" from the onnxruntime-gpu " + ORTVersion + " release (or the Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package)" +
	" beside the library, or point VIDPIPE_ORT_LIB at that release's libonnxruntime.so.1"

// cudaProviderOptions are the CUDA provider settings for d.
func cudaProviderOptions(d Device) map[string]string {
	return map[string]string{"device_id": strconv.Itoa(d.Ordinal)}
}

// appendCUDA adds the CUDA execution provider for d to so.
func appendCUDA(so *ort.SessionOptions, d Device) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w on %s: %w; %s", ErrNoCUDA, d, err, cudaHelp)
	}
	defer co.Destroy()
	// Update is where ONNX Runtime first loads the provider library, so a
	// CPU-only install fails here rather than when the provider is appended.
	if err := co.Update(cudaProviderOptions(d)); err != nil {
		return fmt.Errorf("%w on %s: %w; %s", ErrNoCUDA, d, err, cudaHelp)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("%w on %s: %w; %s", ErrNoCUDA, d, err, cudaHelp)
	}
	return nil
}
