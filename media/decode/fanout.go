package decode

/*
#cgo pkg-config: libavutil
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libavutil/buffer.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

// vp_copy_picture copies what a converter reads of src, rows rows of width
// pixels and any palette, into dst, whose buffer is reused from copy to
// copy. The copy keeps src's strides, their signs and its planes' offsets
// from 64-byte boundaries, so swscale takes the same code path on it.
// Returns 0 or a negative AVERROR.
static int vp_copy_picture(AVFrame *dst, const AVFrame *src, int width, int rows) {
	enum { ALIGN = 64 };
	const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(src->format);
	int n = av_pix_fmt_count_planes(src->format);
	if (!desc || n <= 0 || n > 4 || width <= 0 || rows <= 0) return AVERROR(EINVAL);
	int pal = (desc->flags & AV_PIX_FMT_FLAG_PAL) != 0;
	if (pal) n = 2; // the picture, then its palette
	int need[4];
	ptrdiff_t ls[4] = {0};
	size_t sizes[4];
	int ret = av_image_fill_linesizes(need, src->format, width);
	if (ret < 0) return ret;
	for (int i = 0; i < n; i++) {
		if (!src->data[i]) return AVERROR(EINVAL);
		if (pal && i == 1) continue;
		ls[i] = src->linesize[i] < 0 ? -(ptrdiff_t)src->linesize[i] : src->linesize[i];
		if (ls[i] < need[i] || need[i] <= 0) return AVERROR(EINVAL);
	}
	if ((ret = av_image_fill_plane_sizes(sizes, src->format, rows, ls)) < 0) return ret;
	size_t total = 0;
	for (int i = 0; i < n; i++) total += sizes[i] + ALIGN;
	if (!dst->buf[0] || dst->buf[0]->size < total) {
		av_buffer_unref(&dst->buf[0]);
		if (!(dst->buf[0] = av_buffer_alloc(total))) return AVERROR(ENOMEM);
	}
	uint8_t *p = dst->buf[0]->data;
	for (int i = 0; i < 4; i++) {
		dst->data[i] = NULL;
		dst->linesize[i] = 0;
	}
	for (int i = 0; i < n; i++) {
		if (pal && i == 1) {
			p += ((uintptr_t)src->data[i] - (uintptr_t)p) & (ALIGN - 1);
			memcpy(p, src->data[i], sizes[i]);
			dst->data[i] = p;
			dst->linesize[i] = src->linesize[i];
			p += sizes[i];
			continue;
		}
		int h = (int)(sizes[i] / ls[i]);
		int l = src->linesize[i];
		// Rows go down in memory as in src: the top row comes last when
		// the stride is negative (bottom-up pictures).
		ptrdiff_t top = l < 0 ? (ptrdiff_t)(h - 1) * ls[i] : 0;
		p += ((uintptr_t)src->data[i] - (uintptr_t)(p + top)) & (ALIGN - 1);
		uint8_t *d = p + top;
		for (int y = 0; y < h; y++) memcpy(d + (ptrdiff_t)y * l, src->data[i] + (ptrdiff_t)y * l, need[i]);
		dst->data[i] = d;
		dst->linesize[i] = l;
		p += sizes[i];
	}
	dst->width = src->width;
	dst->height = src->height;
	dst->format = src->format;
	dst->pts = src->pts;
	dst->best_effort_timestamp = src->best_effort_timestamp;
	dst->sample_aspect_ratio = src->sample_aspect_ratio;
	dst->color_range = src->color_range;
	dst->color_primaries = src->color_primaries;
	dst->color_trc = src->color_trc;
	dst->colorspace = src->colorspace;
	dst->chroma_location = src->chroma_location;
	return 0;
}
*/
import "C"

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/asticode/go-astiav"
)

// Next fans out: decoding stays on the calling goroutine, the only one that
// touches FFmpeg's demuxer and decoder, and each kept picture is copied into
// a slot (a frame and buffer allocated once) queued for
// Options.Letterboxers goroutines, each with its own boxer. Next hands the
// slots out oldest first, so frames, bytes, errors and Stats are the serial
// path's; it decodes ahead only while the oldest is not letterboxed.
//
// The copy, rather than a reference to the decoder's picture, keeps the
// bytes the serial path's: a decoder that stops inside a damaged picture
// (MJPEG does) leaves the rest of its buffer as the buffer's last user left
// it, and FFmpeg hands the buffer just released to the next picture. Holding
// references would change which buffer that is, and with it those pixels,
// from run to run. One memcpy of the picture costs a few percent of
// letterboxing it.

// slotsPerBoxer is how many frames each letterboxer has in flight: one
// being letterboxed and one waiting, so none idles between two Next calls.
const slotsPerBoxer = 2

// picturesPerSlot bounds decoding ahead, in decoded pictures past the
// oldest frame in flight: sampling up to every 4th picture still fills the
// slots, while sparse sampling does not read far past the frame Next owes.
const picturesPerSlot = 4

// slot is one kept picture in flight.
type slot struct {
	frame  *astiav.Frame // a copy of the decoded picture, in a buffer of its own
	job    boxJob
	canvas canvas
	out    Frame   // as Next hands it out, less the letterbox
	pic    Picture // as NextPicture hands it out, less the frame
	stats  Stats   // d.stats once the picture was taken
	err    error   // the letterboxer's
	done   chan struct{}
	ready  bool // done was received
}

type fanout struct {
	jobs   chan *slot
	quit   atomic.Bool // stopping: queued jobs are skipped
	wg     sync.WaitGroup
	boxers []boxer
	slots  []*slot // every slot, to free
	idle   []*slot
	queue  []*slot // in flight, oldest first
	held   *slot   // handed out by the last call, valid until the next
	end    error   // how decoding ended, returned once the queue is empty
	ahead  int     // picturesPerSlot * len(slots)
}

func (d *Decoder) startFan() {
	n := d.boxers
	f := &fanout{jobs: make(chan *slot, n*slotsPerBoxer)}
	for range n * slotsPerBoxer {
		f.slots = append(f.slots, &slot{frame: astiav.AllocFrame(), canvas: newCanvas(d.opts.Size), done: make(chan struct{}, 1)})
	}
	f.idle = slices.Clone(f.slots)
	f.queue = make([]*slot, 0, len(f.slots))
	f.ahead = picturesPerSlot * len(f.slots)
	for range n {
		b := d.newBoxer()
		f.boxers = append(f.boxers, b)
		f.wg.Add(1)
		go f.work(b)
	}
	d.fan = f
}

func (f *fanout) work(b boxer) {
	defer f.wg.Done()
	for s := range f.jobs {
		if !f.quit.Load() {
			s.err = b.apply(&s.canvas, s.job)
		}
		s.done <- struct{}{}
	}
}

// stopFan stops the letterboxers, once they finish the picture in hand, and
// frees every slot and boxer: the one place the fan-out's resources go.
func (d *Decoder) stopFan() {
	f := d.fan
	if f == nil {
		return
	}
	d.fan = nil
	f.quit.Store(true)
	close(f.jobs)
	f.wg.Wait()
	for _, b := range f.boxers {
		b.free()
	}
	for _, s := range f.slots {
		s.frame.Free()
	}
}

// onQueued queues a kept picture for the letterboxers.
func (d *Decoder) onQueued() (bool, error) {
	out, ok, err := d.keep()
	if err != nil || !ok {
		return false, err
	}
	f := d.fan
	s := f.idle[len(f.idle)-1]
	f.idle = f.idle[:len(f.idle)-1]
	s.out, s.pic = out, d.picture(out.Index, out.PTS, out.Estimated)
	s.job = d.job(d.frame)
	if err := copyPicture(s.frame, d.frame, s.job); err != nil {
		f.idle = append(f.idle, s)
		return false, fmt.Errorf("copy frame %d: %w", out.Index, err)
	}
	s.job.src = s.frame
	s.stats, s.err, s.ready = d.stats, nil, false
	f.queue = append(f.queue, s)
	f.jobs <- s // never blocks: it holds every slot
	return true, nil
}

// ready reports whether the oldest frame in flight is letterboxed.
func (f *fanout) ready() bool {
	if len(f.queue) == 0 {
		return false
	}
	s := f.queue[0]
	if !s.ready {
		select {
		case <-s.done:
			s.ready = true
		default:
		}
	}
	return s.ready
}

// enough reports whether decoding ahead should stop and the oldest frame be
// handed out: it is letterboxed, or decoding is far enough past it.
func (d *Decoder) enough() bool {
	f := d.fan
	return len(f.queue) > 0 && (f.ready() || d.stats.Decoded-f.queue[0].out.Index > f.ahead)
}

// fanNext hands out the oldest frame in flight, decoding ahead while it is
// being letterboxed. done is false when NextPicture has emptied the queue:
// the caller goes on serially.
func (d *Decoder) fanNext(ctx context.Context, raw bool) (done bool, err error) {
	if err := ctx.Err(); err != nil {
		d.showing = false
		return true, err
	}
	f := d.fan
	if s := f.held; s != nil {
		f.idle, f.held = append(f.idle, s), nil
	}
	for !d.mixed && f.end == nil && len(f.idle) > 0 && !d.enough() {
		if err := d.next(ctx, takeQueued); err != nil {
			if ctx.Err() != nil {
				d.showing = false
				return true, err // cancellation ends it now, frames in flight or not
			}
			f.end = err // after the frames before it
		}
	}
	if len(f.queue) == 0 {
		if f.end == nil {
			return false, nil
		}
		d.showing = false
		return true, f.end
	}
	if raw && (d.opts.Every > 1 || d.opts.FPS > 0) {
		return true, fmt.Errorf("%w: NextPicture after Next read ahead with sampling on: set Letterboxers to 1 to mix them", ErrBadOptions)
	}
	s := f.queue[0]
	if !f.ready() {
		select {
		case <-s.done:
			s.ready = true
		case <-ctx.Done():
		}
		// A cancellation wins over a frame that came in at the same time.
		if err := ctx.Err(); err != nil {
			d.showing = false
			return true, err
		}
	}
	f.queue = slices.Delete(f.queue, 0, 1)
	f.held = s
	d.shown, d.showing = s.stats, true
	if raw {
		// The letterbox is not wanted; the picture is the serial path's.
		d.pic = s.pic
		d.pic.Frame = s.frame
		return true, nil
	}
	if s.err != nil {
		return true, fmt.Errorf("letterbox frame %d: %w", s.out.Index, s.err)
	}
	d.stats.Kept++
	out := s.out
	out.fill(&s.canvas)
	d.out = &out
	return true, nil
}

// copyPicture copies what the job's boxer reads of src into dst: the rows
// and columns it converts (the coded size, for PreprocessExact where it
// converts at that size), at src's strides.
func copyPicture(dst, src *astiav.Frame, j boxJob) error {
	w, h := max(src.Width(), j.convW), max(src.Height(), j.convH)
	if ret := C.vp_copy_picture(cFrame(dst), cFrame(src), C.int(w), C.int(h)); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}
