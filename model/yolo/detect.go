package yolo

import (
	"fmt"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// anchors are yolov5s' default anchors in input pixels, per level (P3/8, P4/16, P5/32).
var anchors = [3][6]float32{
	{10, 13, 16, 30, 33, 23},
	{30, 61, 62, 45, 59, 119},
	{116, 90, 156, 198, 373, 326},
}

const numAnchors = 3

// detect is ultralytics' Detect head with its export-mode decode: per level,
// a 1x1 conv to 3·(5+nc) channels (anchor-major), reshaped to
// [N,3,ny,nx,5+nc], sigmoid, xy = (2s + grid - 0.5)·stride and
// wh = (2s)²·anchor, flattened to [N,3·ny·nx,5+nc] and concatenated.
func (b *builder) detect(scope string, xs []string, chans []int) {
	nc := b.cfg.Classes
	no := 5 + nc
	two := b.constant("const.two", nil, []float32{2})
	split := b.constInt64("const.detect_split", 2, 2, int64(nc+1))
	var levels []string
	anchorsTotal := int64(0)
	for i, x := range xs {
		stride := 8 << i
		ny, nx := b.cfg.ImgSize/stride, b.cfg.ImgSize/stride
		m := fmt.Sprintf("%s.m.%d", scope, i)
		w := b.param(m+".weight", numAnchors*no, chans[i], 1, 1)
		bias := b.param(m+".bias", numAnchors*no)
		y := b.op("Conv", m, []string{x, w, bias},
			onnx.Ints("dilations", 1, 1), onnx.Int("group", 1), onnx.Ints("kernel_shape", 1, 1),
			onnx.Ints("pads", 0, 0, 0, 0), onnx.Ints("strides", 1, 1))
		y = b.op("Reshape", scope, []string{y, b.constInt64(fmt.Sprintf("%s.shape_in.%d", scope, i), -1, numAnchors, int64(no), int64(ny), int64(nx))})
		y = b.op("Transpose", scope, []string{y}, onnx.Ints("perm", 0, 1, 3, 4, 2))
		y = b.op("Sigmoid", scope, []string{y})
		parts := b.add("Split", scope, []string{y, split}, 3, onnx.Int("axis", 4))
		xy, wh, conf := parts[0], parts[1], parts[2]

		grid := b.constant(fmt.Sprintf("%s.grid.%d", scope, i), []int64{1, 1, int64(ny), int64(nx), 2}, gridTable(ny, nx))
		strideT := b.constant(fmt.Sprintf("%s.stride.%d", scope, i), nil, []float32{float32(stride)})
		xy = b.op("Mul", scope, []string{xy, two})
		xy = b.op("Add", scope, []string{xy, grid})
		xy = b.op("Mul", scope, []string{xy, strideT})

		anchorGrid := b.constant(fmt.Sprintf("%s.anchor_grid.%d", scope, i), []int64{1, numAnchors, 1, 1, 2}, anchors[i][:])
		wh = b.op("Mul", scope, []string{wh, two})
		wh = b.op("Pow", scope, []string{wh, two})
		wh = b.op("Mul", scope, []string{wh, anchorGrid})

		y = b.concat(scope, 4, xy, wh, conf)
		n := int64(numAnchors * ny * nx)
		anchorsTotal += n
		levels = append(levels, b.op("Reshape", scope, []string{y, b.constInt64(fmt.Sprintf("%s.shape_out.%d", scope, i), -1, n, int64(no))}))
	}
	b.concat(scope, 1, levels...)
	if b.err != nil {
		return
	}
	// That concat is the last node; its value takes the name ultralytics exports.
	b.g.Nodes[len(b.g.Nodes)-1].Outputs[0] = "output0"
	b.g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float,
		onnx.Dim{Param: "batch"}, onnx.Dim{Value: anchorsTotal}, onnx.Dim{Value: int64(no)})}
}

// gridTable holds (x-0.5, y-0.5) per cell, laid out [ny][nx][2]; it
// broadcasts over the anchor axis.
func gridTable(ny, nx int) []float32 {
	g := make([]float32, 0, ny*nx*2)
	for y := range ny {
		for x := range nx {
			g = append(g, float32(x)-0.5, float32(y)-0.5)
		}
	}
	return g
}
