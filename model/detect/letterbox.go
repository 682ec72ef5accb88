package detect

import (
	"fmt"
	"math"
)

// Letterbox is the geometry of one ultralytics letterbox (auto=False,
// scaleup=True): scale by Gain, then pad to DstW x DstH.
type Letterbox struct {
	SrcW, SrcH int // source image size
	DstW, DstH int // network input size
	// Gain is r = min(DstH/SrcH, DstW/SrcW), also the gain of scale_boxes.
	Gain float64
	// PadX and PadY are the float pads scale_boxes subtracts:
	// (DstW - SrcW*Gain)/2 and (DstH - SrcH*Gain)/2. They differ from the
	// integer pads below because the resized size is rounded.
	PadX, PadY float64
	NewW, NewH int // resized image size before padding
	Top, Left  int // integer pads actually applied; the odd pixel goes bottom/right
}

// Plan computes the letterbox of a srcW x srcH image into dstW x dstH.
func Plan(srcW, srcH, dstW, dstH int) (Letterbox, error) {
	if srcW <= 0 || srcH <= 0 || dstW <= 0 || dstH <= 0 {
		return Letterbox{}, fmt.Errorf("plan letterbox %dx%d to %dx%d: %w", srcW, srcH, dstW, dstH, ErrSize)
	}
	r := math.Min(float64(dstH)/float64(srcH), float64(dstW)/float64(srcW))
	// Python's round() is half-to-even. A side that would round to 0 (a
	// 10000x1 strip) is kept at 1 pixel, where cv2.resize would refuse it.
	newW := max(int(math.RoundToEven(float64(srcW)*r)), 1)
	newH := max(int(math.RoundToEven(float64(srcH)*r)), 1)
	newW, newH = min(newW, dstW), min(newH, dstH)
	dw := float64(dstW-newW) / 2
	dh := float64(dstH-newH) / 2
	return Letterbox{
		SrcW: srcW, SrcH: srcH, DstW: dstW, DstH: dstH,
		Gain: r,
		PadX: (float64(dstW) - float64(srcW)*r) / 2,
		PadY: (float64(dstH) - float64(srcH)*r) / 2,
		NewW: newW, NewH: newH,
		// int(round(dh - 0.1)) as ultralytics does; dh is a multiple of 0.5,
		// so this is floor(dh) and the bottom pad gets the odd pixel.
		Top:  int(math.RoundToEven(dh - 0.1)),
		Left: int(math.RoundToEven(dw - 0.1)),
	}, nil
}

// ScaleBack maps detection boxes from network input pixels to the original
// image (ultralytics scale_boxes): subtract the float pads, divide by the
// gain, then clip to [0, origW] x [0, origH]. origW and origH are normally
// lb.SrcW and lb.SrcH.
func (lb Letterbox) ScaleBack(dets []Detection, origW, origH int) {
	px, py := float32(lb.PadX), float32(lb.PadY)
	g := float32(lb.Gain)
	w, h := float32(origW), float32(origH)
	for i := range dets {
		b := &dets[i].Box
		b.X1 = clamp((b.X1-px)/g, w)
		b.Y1 = clamp((b.Y1-py)/g, h)
		b.X2 = clamp((b.X2-px)/g, w)
		b.Y2 = clamp((b.Y2-py)/g, h)
	}
}

// clamp is torch.clamp_(0, hi): NaN stays NaN.
func clamp(v, hi float32) float32 {
	if v < 0 {
		return 0
	}
	if v > hi {
		return hi
	}
	return v
}
