package decode

/*
#cgo CFLAGS: -O3
#include <stdint.h>

typedef struct { int32_t i0, i1, w0, w1; } vp_tap;

// vp_hrow resizes one BGR24 row across into RGB-ordered values, each
// already shifted right by 4 as the vertical pass wants them: below 1<<15,
// so 16 bits hold them, as in OpenCV's SIMD path.
static void vp_hrow(const uint8_t *row, const vp_tap *xt, int nw, int16_t *out) {
	// A pixel's three channels in 21-bit lanes of one word: a tap sum is at
	// most 255*2049 < 1<<21, so two multiplies do all three channels.
	const uint64_t m = (1u << 21) - 1;
	for (int x = 0; x < nw; x++) {
		const uint8_t *p = row + 3 * xt[x].i0, *q = row + 3 * xt[x].i1;
		uint64_t lp = p[2] | (uint64_t)p[1] << 21 | (uint64_t)p[0] << 42;
		uint64_t lq = q[2] | (uint64_t)q[1] << 21 | (uint64_t)q[0] << 42;
		uint64_t v = lp * (uint64_t)xt[x].w0 + lq * (uint64_t)xt[x].w1;
		out[3 * x] = (int16_t)((v & m) >> 4);
		out[3 * x + 1] = (int16_t)(((v >> 21) & m) >> 4);
		out[3 * x + 2] = (int16_t)((v >> 42) >> 4);
	}
}

// vp_vrow blends two rows down with OpenCV's SIMD rounding: 16-bit
// multiply-high, which the compiler turns into pmulhw.
__attribute__((target_clones("avx2", "default")))
static void vp_vrow(const int16_t *s0, const int16_t *s1, int n, int16_t b0, int16_t b1, uint8_t *d) {
	for (int i = 0; i < n; i++) {
		int16_t h0 = (int16_t)(((int32_t)s0[i] * b0) >> 16), h1 = (int16_t)(((int32_t)s1[i] * b1) >> 16);
		int16_t v = (int16_t)((h0 + h1 + 2) >> 2);
		d[i] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
	}
}

// vp_resize runs the two passes over a BGR24 picture into RGB rows of dst,
// computing each source row across once (rows a and b cache two).
static void vp_resize(const uint8_t *src, int stride, const vp_tap *xt, int nw,
		const vp_tap *yt, int nh, int16_t *a, int16_t *b, uint8_t *dst, int dstride) {
	int ra = -1, rb = -1;
	for (int y = 0; y < nh; y++) {
		int y0 = yt[y].i0, y1 = yt[y].i1;
		if (ra != y0 && rb != y0) {
			if (rb == y1) { vp_hrow(src + (long)y0 * stride, xt, nw, a); ra = y0; }
			else { vp_hrow(src + (long)y0 * stride, xt, nw, b); rb = y0; }
		}
		if (ra != y1 && rb != y1) {
			if (ra == y0) { vp_hrow(src + (long)y1 * stride, xt, nw, b); rb = y1; }
			else { vp_hrow(src + (long)y1 * stride, xt, nw, a); ra = y1; }
		}
		const int16_t *s0 = ra == y0 ? a : b, *s1 = ra == y1 ? a : b;
		vp_vrow(s0, s1, 3 * nw, (int16_t)yt[y].w0, (int16_t)yt[y].w1, dst + (long)y * dstride);
	}
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/vidpipe/vidpipe/model/detect"
)

// bgrResizer letterboxes BGR24 pictures into packed RGB exactly as
// detect.Resizer does, from its tables, with the two passes in C: the
// compiler vectorises them, 3-4x faster than the Go loops, which stay the
// reference (and the path for pictures that need no resize).
type bgrResizer struct {
	z          *detect.Resizer
	lb         detect.Letterbox
	cols, rows []C.vp_tap
	a, b       []C.int16_t // two source rows resized across
	direct     bool        // no resize: the Go copy
}

func newBGRResizer(lb detect.Letterbox) (*bgrResizer, error) {
	z, err := detect.NewResizer(lb, detect.BGR24)
	if err != nil {
		return nil, err
	}
	r := &bgrResizer{z: z, lb: lb, direct: lb.NewW == lb.SrcW && lb.NewH == lb.SrcH}
	cols, rows := z.Taps()
	for _, t := range cols {
		r.cols = append(r.cols, C.vp_tap{C.int32_t(t.I0), C.int32_t(t.I1), C.int32_t(t.W0), C.int32_t(t.W1)})
	}
	for _, t := range rows {
		r.rows = append(r.rows, C.vp_tap{C.int32_t(t.I0), C.int32_t(t.I1), C.int32_t(t.W0), C.int32_t(t.W1)})
	}
	r.a = make([]C.int16_t, 3*lb.NewW)
	r.b = make([]C.int16_t, 3*lb.NewW)
	return r, nil
}

// run letterboxes src (rows stride bytes apart) into dst, a DstW x DstH
// packed RGB picture whose padding the caller keeps at 114.
func (r *bgrResizer) run(dst, src []byte, stride int) error {
	lb := r.lb
	if r.direct {
		return r.z.RunPacked(dst, src, stride)
	}
	if stride < 3*lb.SrcW || len(src) < (lb.SrcH-1)*stride+3*lb.SrcW {
		return fmt.Errorf("resize %dx%d: source of %d bytes, stride %d: %w", lb.SrcW, lb.SrcH, len(src), stride, detect.ErrShortBuffer)
	}
	if len(dst) < 3*lb.DstW*lb.DstH {
		return fmt.Errorf("resize %dx%d: destination of %d bytes: %w", lb.SrcW, lb.SrcH, len(dst), detect.ErrShortBuffer)
	}
	at := 3 * (lb.Top*lb.DstW + lb.Left)
	C.vp_resize((*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(stride),
		&r.cols[0], C.int(lb.NewW), &r.rows[0], C.int(lb.NewH), &r.a[0], &r.b[0],
		(*C.uint8_t)(unsafe.Pointer(&dst[at])), C.int(3*lb.DstW))
	return nil
}
