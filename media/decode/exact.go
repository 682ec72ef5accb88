package decode

import (
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/model/detect"
)

// exactBoxer makes the letterbox YOLOv5's own pipeline makes from a video,
// so that the model sees the pixels it was validated on:
//
//  1. cv2.VideoCapture (OpenCV 4.6, FFmpeg backend) converts the decoded
//     picture to BGR24 with swscale at the decoder's coded size, SWS_BICUBIC,
//     no colour details set, and hands out the top-left Width x Height;
//  2. it rotates that picture as the display matrix asks (its default
//     CAP_PROP_ORIENTATION_AUTO), a lossless cv::rotate;
//  3. YOLOv5 letterboxes it with cv2.resize(INTER_LINEAR), pads with 114
//     and reverses the channels to RGB.
//
// Steps 1 and 2 call the same swscale the same way; step 3 is
// detect.Resizer's arithmetic, bit-exact with cv2.resize.
type exactBoxer struct {
	size int

	sws     bgrScaler
	bgr     *astiav.Frame // the converted picture, coded size
	rotated []byte        // display-orientation copy when rotating
	z       *bgrResizer

	// Source properties the converter and the Resizer were made for.
	srcW, srcH   int
	convW, convH int // size converted: the coded size, or the picture's
	srcFmt       astiav.PixelFormat
	rot          int
	p            detect.Letterbox
}

func newExactBoxer(size int) *exactBoxer {
	return &exactBoxer{size: size, srcFmt: astiav.PixelFormatNone}
}

func (e *exactBoxer) apply(dst *canvas, j boxJob) error {
	src, rot, cw, ch := j.src, j.rot, j.convW, j.convH
	w, h, pf := src.Width(), src.Height(), src.PixelFormat()
	if e.bgr == nil || w != e.srcW || h != e.srcH || pf != e.srcFmt || rot != e.rot || cw != e.convW || ch != e.convH {
		if err := e.configure(w, h, cw, ch, pf, rot); err != nil {
			return err
		}
	}
	if !e.sws.scale(src, e.bgr) {
		return fmt.Errorf("convert %dx%d %s to bgr24: swscale failed", w, h, pf)
	}
	plane, ls := packedPlane(e.bgr)
	if plane == nil {
		return fmt.Errorf("convert %dx%d %s to bgr24: empty output", w, h, pf)
	}
	pic, stride := plane, ls
	if rot != 0 {
		pic, stride = e.rotate(plane, ls, w, h, rot)
	}
	dst.place(e.p)
	if err := e.z.run(dst.buf, pic, stride); err != nil {
		return fmt.Errorf("resize %dx%d: %w", w, h, err)
	}
	return nil
}

// convertSize is the size cv2.VideoCapture converts src at: the coded size
// where it covers the picture and the decoder's rows are that long (they
// are for the codecs that pad to macroblocks), else the picture's own. It
// reads the codec context, so only the decoding goroutine calls it, right
// after src came out.
func convertSize(cc *astiav.CodecContext, src *astiav.Frame) (int, int) {
	w, h := src.Width(), src.Height()
	cw, ch, ok := codedSize(cc)
	if !ok || cw < w || ch < h || (cw > w && !rowsHold(src, cw)) {
		return w, h
	}
	return cw, ch
}

func (e *exactBoxer) configure(w, h, cw, ch int, pf astiav.PixelFormat, rot int) error {
	e.free()
	if !e.sws.configure(cw, ch, pf) {
		return fmt.Errorf("create converter %dx%d %s -> bgr24: unsupported", cw, ch, pf)
	}
	var err error
	if e.bgr, err = newPicture(cw, ch, astiav.PixelFormatBgr24); err != nil {
		return err
	}
	dispW, dispH := w, h
	if rot == 90 || rot == 270 {
		dispW, dispH = h, w
		if len(e.rotated) < w*h*3 {
			e.rotated = make([]byte, w*h*3)
		}
	}
	p, err := detect.Plan(dispW, dispH, e.size, e.size)
	if err != nil {
		return err
	}
	if e.z, err = newBGRResizer(p); err != nil {
		return fmt.Errorf("letterbox %dx%d: %w", dispW, dispH, err)
	}
	if rot == 180 && len(e.rotated) < w*h*3 {
		e.rotated = make([]byte, w*h*3)
	}
	e.srcW, e.srcH, e.convW, e.convH, e.srcFmt, e.rot, e.p = w, h, cw, ch, pf, rot, p
	return nil
}

// rotate turns the w x h picture clockwise by rot degrees into e.rotated,
// as cv::rotate does, and returns it with its row stride.
func (e *exactBoxer) rotate(src []byte, ls, w, h, rot int) ([]byte, int) {
	dst := e.rotated[:w*h*3]
	switch rot {
	case 180:
		for y := range h {
			s := src[(h-1-y)*ls : (h-1-y)*ls+3*w]
			d := dst[y*3*w : (y+1)*3*w]
			for x := range w {
				o := 3 * (w - 1 - x)
				q := d[3*x : 3*x+3 : 3*x+3]
				q[0], q[1], q[2] = s[o], s[o+1], s[o+2]
			}
		}
		return dst, 3 * w
	case 90:
		// Display pixel (x, y) of the h x w result is source (y, h-1-x).
		for y := range w {
			d := dst[y*3*h : (y+1)*3*h]
			for x := range h {
				o := (h-1-x)*ls + 3*y
				q := d[3*x : 3*x+3 : 3*x+3]
				q[0], q[1], q[2] = src[o], src[o+1], src[o+2]
			}
		}
		return dst, 3 * h
	default: // 270: display (x, y) is source (w-1-y, x)
		for y := range w {
			d := dst[y*3*h : (y+1)*3*h]
			for x := range h {
				o := x*ls + 3*(w-1-y)
				q := d[3*x : 3*x+3 : 3*x+3]
				q[0], q[1], q[2] = src[o], src[o+1], src[o+2]
			}
		}
		return dst, 3 * h
	}
}

func (e *exactBoxer) free() {
	e.sws.free()
	if e.bgr != nil {
		e.bgr.Free()
		e.bgr = nil
	}
	e.z = nil
}
