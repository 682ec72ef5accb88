package decode

/*
#cgo pkg-config: libavformat libavcodec libavutil
#include <errno.h>
#include <string.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/mem.h>

static int64_t vp_best_effort(const AVFrame *f) { return f->best_effort_timestamp; }
static int64_t vp_pkt_duration(const AVFrame *f) { return f->pkt_duration; }
static int vp_frame_corrupt(const AVFrame *f) {
	return (f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags;
}
static uint8_t *vp_plane0(const AVFrame *f) { return f->data[0]; }
static int vp_linesize0(const AVFrame *f) { return f->linesize[0]; }
static int vp_stream_index(const AVStream *s) { return s->index; }
static int vp_attached_pic(const AVStream *s) {
	return (s->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
}

// vp_probe names the demuxer FFmpeg would pick for data if its score
// beats min_score, or returns NULL.
static const char *vp_probe(const uint8_t *data, int size, int min_score) {
	uint8_t *buf = av_mallocz((size_t)size + AVPROBE_PADDING_SIZE);
	if (!buf) return NULL;
	if (size > 0) memcpy(buf, data, size);
	AVProbeData pd = { .filename = "", .buf = buf, .buf_size = size };
	int score = min_score;
	const AVInputFormat *f = av_probe_input_format2(&pd, 1, &score);
	av_free(buf);
	return f ? f->name : NULL;
}
*/
import "C"

import (
	"math"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// This file holds the few FFmpeg fields go-astiav v0.16.0 does not expose.

const (
	noPTS      = math.MinInt64 // AV_NOPTS_VALUE
	avseekSize = int(C.AVSEEK_SIZE)
	avseekMask = int(C.AVSEEK_SIZE | C.AVSEEK_FORCE)
)

var errEINVAL = astiav.Error(-C.EINVAL)

func cFrame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// bestEffortTimestamp is FFmpeg's guess at the presentation time, in the
// stream's time base; it falls back to dts when pts is missing.
func bestEffortTimestamp(f *astiav.Frame) int64 { return int64(C.vp_best_effort(cFrame(f))) }

// packetDuration is the duration of the packet the picture came from, in the
// stream's time base; 0 when the container does not say.
func packetDuration(f *astiav.Frame) int64 { return int64(C.vp_pkt_duration(cFrame(f))) }

// frameCorrupt reports whether the decoder flagged the picture as damaged
// (concealed errors); such frames are still yielded, as ffmpeg does.
func frameCorrupt(f *astiav.Frame) bool { return C.vp_frame_corrupt(cFrame(f)) != 0 }

// packedPlane views the first plane of a packed-pixel frame (RGB24) as
// bytes: rows of linesize bytes, valid until the frame is unreferenced.
func packedPlane(f *astiav.Frame) (data []byte, linesize int) {
	cf := cFrame(f)
	p, ls := C.vp_plane0(cf), int(C.vp_linesize0(cf))
	if p == nil || ls <= 0 || f.Height() <= 0 {
		return nil, 0
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), ls*f.Height()), ls
}

// attachedPicture reports whether s is cover art (AV_DISPOSITION_ATTACHED_PIC)
// rather than a video. go-astiav v0.16.0 has no Disposition accessor; its
// Stream is a struct whose only field is the *AVStream, which we read here.
// The index comparison guards against a layout change in a future go-astiav.
func attachedPicture(s *astiav.Stream) bool {
	cs := *(**C.AVStream)(unsafe.Pointer(s))
	if cs == nil || int(C.vp_stream_index(cs)) != s.Index() {
		return false
	}
	return C.vp_attached_pic(cs) != 0
}

// probeFormat names the demuxer FFmpeg picks for an input starting with
// head, or "" when none: it probes as avformat_open_input does, on 2 KiB,
// then doubling up to 1 MiB, taking the first demuxer that scores above
// AVPROBE_SCORE_RETRY (any score once 1 MiB is probed). Probing all of head at
// once can name another demuxer than the one FFmpeg chose, and so blame
// the wrong one. It only classifies open failures.
func probeFormat(head []byte) string {
	const minProbe, maxProbe = 2048, 1 << 20
	for n := minProbe; ; n *= 2 {
		last := n >= maxProbe || n >= len(head)
		threshold := C.int(C.AVPROBE_SCORE_RETRY)
		if n >= maxProbe {
			threshold = 0 // FFmpeg only lowers the bar on a full-size probe
		}
		n = min(n, len(head), maxProbe)
		var p *C.uint8_t
		if n > 0 {
			p = (*C.uint8_t)(unsafe.Pointer(&head[0]))
		}
		if name := C.vp_probe(p, C.int(n), threshold); name != nil {
			return C.GoString(name)
		}
		if last {
			return ""
		}
	}
}
