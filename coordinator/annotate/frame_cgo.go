package annotate

// go-astiav v0.16.0 has no accessors for these AVFrame fields and copies
// plane data on read, so this file reaches the few fields it needs directly.

//#cgo pkg-config: libavutil
//#include <libavutil/frame.h>
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"
)

func cFrame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// makeWritable gives f its own buffers if the encoder still holds a
// reference to them, so drawing never changes a frame already sent.
func makeWritable(f *astiav.Frame) error {
	if ret := C.av_frame_make_writable(cFrame(f)); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}

// plane is one picture plane as a Go slice over FFmpeg's memory; it is valid
// until the frame is unreferenced.
type plane struct {
	data   []byte
	stride int
}

// planes returns the first n planes of an image frame with rows rows each
// (chroma planes of 4:2:0 have (h+1)/2 rows). ok is false when a plane is
// missing or stored bottom-up (negative stride), which callers route through
// swscale instead.
func planes(f *astiav.Frame, rows [3]int) (p [3]plane, ok bool) {
	for i := range 3 {
		if p[i], ok = planeAt(f, i, rows[i]); !ok {
			return p, false
		}
	}
	return p, true
}

// planeAt returns plane i of f with rows rows; see planes.
func planeAt(f *astiav.Frame, i, rows int) (plane, bool) {
	c := cFrame(f)
	stride := int(c.linesize[i])
	if c.data[i] == nil || stride <= 0 {
		return plane{}, false
	}
	return plane{data: unsafe.Slice((*byte)(unsafe.Pointer(c.data[i])), stride*rows), stride: stride}, true
}
