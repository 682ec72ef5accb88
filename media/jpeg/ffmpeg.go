package jpeg

/*
#cgo pkg-config: libavcodec libavutil libswscale
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// This file holds the few FFmpeg fields go-astiav v0.16.0 does not expose.

// Flags for swscale, chosen on the sample videos' frames at 640 and
// quality 90 (measured with image/jpeg decoding, then image/jpeg
// encoding). Encoding averages each 2x2 block of chroma, as libjpeg
// downsamples: the closest round trip of swscale's filters (46.6 dB,
// bilinear 46.4). Decoding 4:2:0 and 4:2:2 at even heights takes
// swscale's unscaled converter, which repeats chroma samples as image/jpeg
// does and comes within 4 levels of its RGB; SWS_ACCURATE_RND with
// interpolated chroma came 0.7 dB closer to the original at twice the
// conversion time.
var (
	encodeFlags = astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagArea)
	decodeFlags = astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear)
)

func cFrame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// cPacket is p's AVPacket. go-astiav v0.16.0 gives no pointer to it; its
// Packet is a struct whose first field is the *AVPacket, read here. Callers
// check the size it reports against Packet.Size.
func cPacket(p *astiav.Packet) *C.AVPacket { return *(**C.AVPacket)(unsafe.Pointer(p)) }

var errPacketLayout = errors.New("go-astiav's Packet no longer starts with its *AVPacket")

// setPacket makes p a copy of b in a buffer of FFmpeg's, with the zeroed
// padding decoders may read past the end (Packet.FromData has none).
func setPacket(p *astiav.Packet, b []byte) error {
	if err := p.AllocPayload(len(b)); err != nil {
		return err
	}
	cp := cPacket(p)
	if cp == nil || int(cp.size) != len(b) || p.Size() != len(b) {
		return errPacketLayout
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(cp.data)), len(b)), b)
	return nil
}

// packetBytes is p's payload, valid until p is unreferenced.
func packetBytes(p *astiav.Packet) ([]byte, error) {
	cp := cPacket(p)
	if cp == nil || int(cp.size) != p.Size() {
		return nil, errPacketLayout
	}
	if cp.size == 0 {
		return nil, nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(cp.data)), int(cp.size)), nil
}

// plane is f's plane 0 (packed pixels) and its line size in bytes.
func plane(f *astiav.Frame) ([]byte, int) {
	cf := cFrame(f)
	ls := int(cf.linesize[0])
	return unsafe.Slice((*byte)(unsafe.Pointer(cf.data[0])), ls*int(cf.height)), ls
}

// setQuality sets the fixed quantiser the encoder uses for f, as
// ffmpeg -q:v does: the encoder reads it from the frame when its context
// has AV_CODEC_FLAG_QSCALE.
func setQuality(f *astiav.Frame, qscale int) {
	cFrame(f).quality = C.int(qscale * C.FF_QP2LAMBDA)
}

// writable reports whether f's buffers are f's alone: an encoder may keep
// a reference to the last picture it was sent.
func writable(f *astiav.Frame) bool { return C.av_frame_is_writable(cFrame(f)) != 0 }

// codec is the FFmpeg state an Encoder or Decoder keeps between pictures:
// a codec context and a scaler made for one picture size, and the
// scaler's source and destination frames and a packet, allocated once.
type codec struct {
	w, h     int
	cc       *astiav.CodecContext
	sws      *astiav.SoftwareScaleContext
	src, dst *astiav.Frame
	pkt      *astiav.Packet
	closed   bool
}

// reset frees the size-dependent state; the next picture makes it anew.
func (c *codec) reset() {
	if c.cc != nil {
		c.cc.Free()
		c.cc = nil
	}
	if c.sws != nil {
		c.sws.Free()
		c.sws = nil
	}
	for _, f := range []*astiav.Frame{c.src, c.dst} {
		if f != nil {
			f.Unref()
		}
	}
	if c.pkt != nil {
		c.pkt.Unref()
	}
	c.w, c.h = 0, 0
}

// allocate makes the packet and frames on first use.
func (c *codec) allocate() error {
	if c.pkt == nil {
		c.pkt = astiav.AllocPacket()
	}
	if c.src == nil {
		c.src = astiav.AllocFrame()
	}
	if c.dst == nil {
		c.dst = astiav.AllocFrame()
	}
	if c.pkt == nil || c.src == nil || c.dst == nil {
		return errors.New("allocate packet and frames")
	}
	return nil
}

// allocPicture gives f a w x h buffer of its own in pixel format pf.
func allocPicture(f *astiav.Frame, w, h int, pf astiav.PixelFormat) error {
	f.SetWidth(w)
	f.SetHeight(h)
	f.SetPixelFormat(pf)
	if err := f.AllocBuffer(0); err != nil {
		return fmt.Errorf("allocate %s frame: %w", pf, err)
	}
	return nil
}

// close frees everything; closing twice is harmless.
func (c *codec) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.reset()
	if c.pkt != nil {
		c.pkt.Free()
		c.pkt = nil
	}
	for _, f := range []**astiav.Frame{&c.src, &c.dst} {
		if *f != nil {
			(*f).Free()
			*f = nil
		}
	}
}
