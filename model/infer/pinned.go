package infer

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>

typedef int (*vp_host_alloc_fn)(void **, size_t, unsigned int);
typedef int (*vp_free_host_fn)(void *);

static vp_host_alloc_fn vp_host_alloc;
static vp_free_host_fn vp_free_host;

// vp_cudart binds cudaHostAlloc and cudaFreeHost from the CUDA runtime
// the CUDA provider loaded: dlopen of a loaded library returns it, so no
// second runtime comes in. It returns 0 when none of the names loads.
static int vp_cudart(void) {
	static const char *names[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so", NULL};
	if (vp_host_alloc) return 1;
	for (int i = 0; names[i]; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!h) continue;
		vp_host_alloc_fn a = (vp_host_alloc_fn)dlsym(h, "cudaHostAlloc");
		vp_free_host_fn f = (vp_free_host_fn)dlsym(h, "cudaFreeHost");
		if (a && f) {
			vp_free_host = f;
			vp_host_alloc = a;
			return 1;
		}
		dlclose(h);
	}
	return 0;
}

// cudaHostAllocPortable: pinned for every device, whichever is current.
static int vp_pinned_alloc(void **p, size_t n) { return vp_host_alloc(p, n, 1); }
static int vp_pinned_free(void *p) { return vp_free_host(p); }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// hostMemory holds a Session's input and output buffers. On CUDA they are
// pinned (page-locked) host memory where the CUDA runtime provides it:
// ONNX Runtime's copies to and from the device then go straight to the
// bus by DMA, without the driver's staging copy through a pinned bounce
// buffer that pageable Go memory takes. Elsewhere, and when pinning fails,
// they are Go memory.
type hostMemory struct {
	pinned bool
	ptrs   []unsafe.Pointer // what free releases
}

var cudartOnce = sync.OnceValue(func() bool { return C.vp_cudart() != 0 })

// bytes returns n bytes of the session's host memory, zeroed.
func (h *hostMemory) bytes(n int) []byte {
	if n == 0 {
		return nil
	}
	if h.pinned {
		var p unsafe.Pointer
		if C.vp_pinned_alloc(&p, C.size_t(n)) == 0 && p != nil {
			h.ptrs = append(h.ptrs, p)
			b := unsafe.Slice((*byte)(p), n)
			clear(b)
			return b
		}
		h.pinned = false // the rest in Go memory
	}
	return make([]byte, n)
}

// floats returns n float32s of the session's host memory, zeroed.
func (h *hostMemory) floats(n int) []float32 {
	if n == 0 {
		return nil
	}
	if h.pinned {
		b := h.bytes(4 * n)
		if h.pinned {
			return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
		}
	}
	return make([]float32, n)
}

// free releases the pinned memory; the buffers must no longer be used.
func (h *hostMemory) free() error {
	var err error
	for _, p := range h.ptrs {
		if rc := C.vp_pinned_free(p); rc != 0 && err == nil {
			err = fmt.Errorf("free pinned host memory: CUDA error %d", int(rc))
		}
	}
	h.ptrs = nil
	return err
}
