package annotate

// The annotated video is written in display orientation: pixels of a source
// with a rotation display matrix are turned here, so labels read upright in
// every player and boxes, which arrive in display orientation, need no
// mapping. The output carries no display matrix.

// displaySize is the picture size after turning a w x h picture clockwise by
// rot degrees.
func displaySize(w, h, rot int) (int, int) {
	if rot == 90 || rot == 270 {
		return h, w
	}
	return w, h
}

// evenSize drops the last column and row of odd sizes: H.264 4:2:0 needs
// even dimensions, and cropping one pixel keeps every other pixel where it
// was, unlike scaling.
func evenSize(w, h int) (int, int) { return w &^ 1, h &^ 1 }

// turnPicture copies yuv420p planes of a sw x sh coded picture into dst,
// a dw x dh yuv420p picture (dw, dh even and no larger than the turned
// source), turning it clockwise by rot degrees and cropping the right and
// bottom edges.
func turnPicture(dst, src [3]plane, sw, sh, dw, dh, rot int) {
	turnPlane(dst[0], src[0], sw, sh, dw, dh, rot)
	for i := 1; i < 3; i++ {
		turnPlane(dst[i], src[i], (sw+1)/2, (sh+1)/2, dw/2, dh/2, rot)
	}
}

// turnPlane maps each destination pixel back to its source pixel; the
// destination is in display orientation.
func turnPlane(dst, src plane, sw, sh, dw, dh, rot int) {
	d, s, ds, ss := dst.data, src.data, dst.stride, src.stride
	switch rot {
	case 90: // display (x, y) shows coded (y, sh-1-x)
		for y := range dh {
			row := d[y*ds : y*ds+dw]
			for x := range row {
				row[x] = s[(sh-1-x)*ss+y]
			}
		}
	case 180:
		for y := range dh {
			row := d[y*ds : y*ds+dw]
			srow := s[(sh-1-y)*ss:]
			for x := range row {
				row[x] = srow[sw-1-x]
			}
		}
	case 270: // display (x, y) shows coded (sw-1-y, x)
		for y := range dh {
			row := d[y*ds : y*ds+dw]
			for x := range row {
				row[x] = s[x*ss+sw-1-y]
			}
		}
	default:
		for y := range dh {
			copy(d[y*ds:y*ds+dw], s[y*ss:y*ss+dw])
		}
	}
}
