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

// cudaHelp says what the CUDA provider needs. The library scripts/setup.sh
// installs (onnxruntime-node's libonnxruntime.so.1) has the CUDA provider
// bridge compiled in but not the provider libraries themselves: npm's
// install script would fetch those from NuGet. The bridge is a C++ interface
// that only libraries of one ONNX Runtime version, all compiled with CUDA,
// may cross; onnxruntime_go asks for C API version 24, which ONNX Runtime
// serves from 1.24 on. The pair named below ran on an NVIDIA H200 (driver
// 580, CUDA 13 and cuDNN 9 from the PyTorch wheels), matching the CPU
// within 2e-6 in full float32 (scripts/gpu-check.sh, TestDeviceMatchesCPU).
const cudaHelp = "device cuda needs a GPU build of ONNX Runtime 1.24 or later:" +
	" libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so of the same version" +
	" beside the ONNX Runtime library (VIDPIPE_ORT_LIB), and the CUDA and cuDNN 9 libraries that build was made for" +
	" on the loader path (LD_LIBRARY_PATH); scripts/gpu-pack.sh packs one for CUDA 13" +
	" (ONNX Runtime 1.29.0: libonnxruntime.so.1 from npm onnxruntime-node@1.29.0," +
	" the providers from npm com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9)"

// cudaProviderOptions are the CUDA provider settings for d; fp32 turns
// TF32 off.
func cudaProviderOptions(d Device, fp32 bool) map[string]string {
	o := map[string]string{"device_id": strconv.Itoa(d.Ordinal)}
	if fp32 {
		o["use_tf32"] = "0"
	}
	return o
}

// appendCUDA adds the CUDA execution provider for d to so.
func appendCUDA(so *ort.SessionOptions, d Device, fp32 bool) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w on %s: %w; %s", ErrNoCUDA, d, err, cudaHelp)
	}
	defer co.Destroy()
	// Update is where ONNX Runtime first loads the provider library, so a
	// CPU-only install fails here rather than when the provider is appended.
	if err := co.Update(cudaProviderOptions(d, fp32)); err != nil {
		return fmt.Errorf("%w on %s: %w; %s", ErrNoCUDA, d, err, cudaHelp)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("%w on %s: %w; %s", ErrNoCUDA, d, err, cudaHelp)
	}
	return nil
}
