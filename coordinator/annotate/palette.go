package annotate

// palette is the ultralytics YOLOv5 class palette, so annotated videos look
// like the reference tool's pictures.
var palette = [20][3]uint8{
	{0xff, 0x38, 0x38}, {0xff, 0x9d, 0x97}, {0xff, 0x70, 0x1f}, {0xff, 0xb2, 0x1d},
	{0xcf, 0xd2, 0x31}, {0x48, 0xf9, 0x0a}, {0x92, 0xcc, 0x17}, {0x3d, 0xdb, 0x86},
	{0x1a, 0x93, 0x34}, {0x00, 0xd4, 0xbb}, {0x2c, 0x99, 0xa8}, {0x00, 0xc2, 0xff},
	{0x34, 0x45, 0x93}, {0x64, 0x73, 0xff}, {0x00, 0x18, 0xec}, {0x84, 0x38, 0xff},
	{0x52, 0x00, 0x85}, {0xcb, 0x38, 0xff}, {0xff, 0x95, 0xc8}, {0xff, 0x37, 0xc7},
}

// matrix selects the RGB to YCbCr coefficients of the output video.
type matrix int

const (
	bt601 matrix = iota
	bt709
)

// colour is one palette entry in both RGB (PNG) and limited-range YCbCr
// (video) form.
type colour struct {
	r, g, b uint8
	y, u, v uint8
}

// light reports whether the colour is bright enough to need dark text.
func (c colour) light() bool {
	return 299*int(c.r)+587*int(c.g)+114*int(c.b) > 150*1000
}

// classColour is the palette colour of a class; negative ids wrap too.
func classColour(id int, m matrix) colour {
	i := id % len(palette)
	if i < 0 {
		i += len(palette)
	}
	p := palette[i]
	return newColour(p[0], p[1], p[2], m)
}

func newColour(r, g, b uint8, m matrix) colour {
	kr, kb := 0.299, 0.114
	if m == bt709 {
		kr, kb = 0.2126, 0.0722
	}
	kg := 1 - kr - kb
	R, G, B := float64(r)/255, float64(g)/255, float64(b)/255
	y := kr*R + kg*G + kb*B
	cb := (B - y) / (2 * (1 - kb))
	cr := (R - y) / (2 * (1 - kr))
	return colour{
		r: r, g: g, b: b,
		y: clampByte(16 + 219*y),
		u: clampByte(128 + 224*cb),
		v: clampByte(128 + 224*cr),
	}
}

func clampByte(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}
