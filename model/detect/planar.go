package detect

// Planar converts packed RGB24 pixels (an already letterboxed picture, as
// frames travel) to the model's planar float32 RGB in [0, 1]. dst holds
// 3*len(rgb)/3 floats: the R plane, then G, then B.
func Planar(dst []float32, rgb []byte) {
	n := len(rgb) / 3
	// Full slice expressions let the compiler drop the bounds checks.
	r, g, b := dst[:n:n], dst[n:2*n:2*n], dst[2*n:3*n:3*n]
	rgb = rgb[:3*n]
	for i := range r {
		p := rgb[3*i : 3*i+3 : 3*i+3]
		r[i] = float32(p[0]) * (1.0 / 255)
		g[i] = float32(p[1]) * (1.0 / 255)
		b[i] = float32(p[2]) * (1.0 / 255)
	}
}
