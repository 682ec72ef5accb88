package detect

// Planar converts packed RGB24 pixels (an already letterboxed picture, as
// frames travel) to the model's planar float32 RGB in [0, 1]. dst holds
// 3*len(rgb)/3 floats: the R plane, then G, then B.
func Planar(dst []float32, rgb []byte) {
	n := len(rgb) / 3
	r, g, b := dst[:n], dst[n:2*n], dst[2*n:3*n]
	for i := 0; i < n; i++ {
		r[i] = float32(rgb[3*i]) * (1.0 / 255)
		g[i] = float32(rgb[3*i+1]) * (1.0 / 255)
		b[i] = float32(rgb[3*i+2]) * (1.0 / 255)
	}
}
