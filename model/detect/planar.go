package detect

// Planar converts packed RGB24 pixels (an already letterboxed picture, as
// frames travel) to the model's planar float32 RGB in [0, 1]. dst holds
// 3*len(rgb)/3 floats: the R plane, then G, then B. Each value is the
// float32 division v/255, as YOLOv5's im /= 255 computes it; multiplying by
// 1/255 instead is one ulp off for 126 of the 256 levels.
func Planar(dst []float32, rgb []byte) {
	var level [256]float32
	for v := range level {
		level[v] = float32(v) / 255
	}
	n := len(rgb) / 3
	// Full slice expressions let the compiler drop the bounds checks.
	r, g, b := dst[:n:n], dst[n:2*n:2*n], dst[2*n:3*n:3*n]
	rgb = rgb[:3*n]
	for i := range r {
		p := rgb[3*i : 3*i+3 : 3*i+3]
		r[i] = level[p[0]]
		g[i] = level[p[1]]
		b[i] = level[p[2]]
	}
}
