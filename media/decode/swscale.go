package decode

/*
#cgo pkg-config: libavcodec libavutil libswscale
#include <stdlib.h>
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

typedef struct { int coded_w, coded_h, width; } vp_sizes;

// vp_coded_size returns by value: pointers to Go locals would move them to
// the heap on every frame.
static vp_sizes vp_coded_size(const AVCodecContext *c) {
	vp_sizes s = { c->coded_width, c->coded_height, c->width };
	return s;
}

// vp_bgr_context is the converter cv2.VideoCapture makes: the whole coded
// picture to BGR24 at the same size, with SWS_BICUBIC and default colour
// details.
static struct SwsContext *vp_bgr_context(struct SwsContext *c, int w, int h, int fmt) {
	return sws_getCachedContext(c, w, h, (enum AVPixelFormat)fmt, w, h, AV_PIX_FMT_BGR24,
		SWS_BICUBIC, NULL, NULL, NULL);
}

// vp_bgr_scale converts the picture's rows, as cv2.VideoCapture does.
static int vp_bgr_scale(struct SwsContext *c, const AVFrame *src, AVFrame *dst) {
	return sws_scale(c, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
		dst->data, dst->linesize);
}

// vp_rows_hold reports whether every plane's rows of src are long enough
// for a picture w pixels wide, so that converting at the coded width reads
// only the decoder's own buffer.
static int vp_rows_hold(const AVFrame *src, int w) {
	int need[4];
	if (av_image_fill_linesizes(need, (enum AVPixelFormat)src->format, w) < 0) return 0;
	for (int i = 0; i < 4; i++) {
		if (need[i] > 0 && (src->data[i] == NULL || abs(src->linesize[i]) < need[i])) return 0;
	}
	return 1;
}
*/
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"
)

// codedSize is the decoder's coded picture size: for H.264 and HEVC the
// size in whole macroblocks (1920x1088 for 1080p), which cv2.VideoCapture
// converts before cropping. go-astiav v0.16.0 has no accessor for it; its
// CodecContext is a struct whose first field is the *AVCodecContext, read
// here and checked against the width go-astiav reports. ok is false when
// the check fails.
func codedSize(cc *astiav.CodecContext) (w, h int, ok bool) {
	c := *(**C.AVCodecContext)(unsafe.Pointer(cc))
	if c == nil {
		return 0, 0, false
	}
	s := C.vp_coded_size(c)
	if int(s.width) != cc.Width() {
		return 0, 0, false
	}
	return int(s.coded_w), int(s.coded_h), true
}

// bgrScaler is cv2.VideoCapture's converter, called the way it calls it.
type bgrScaler struct{ c *C.struct_SwsContext }

func (s *bgrScaler) configure(w, h int, pf astiav.PixelFormat) bool {
	s.c = C.vp_bgr_context(s.c, C.int(w), C.int(h), C.int(pf))
	return s.c != nil
}

func (s *bgrScaler) scale(src, dst *astiav.Frame) bool {
	return C.vp_bgr_scale(s.c, cFrame(src), cFrame(dst)) > 0
}

func (s *bgrScaler) free() {
	if s.c != nil {
		C.sws_freeContext(s.c)
		s.c = nil
	}
}

// rowsHold reports whether src's rows are at least w pixels long.
func rowsHold(src *astiav.Frame, w int) bool { return C.vp_rows_hold(cFrame(src), C.int(w)) != 0 }
