package yolo

import (
	"fmt"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// detectLevel is one input of the Detect head.
type detectLevel struct {
	x      string
	ch     int
	side   int // feature map side (square input)
	stride int
}

// detect is ultralytics' Detect head with its export-mode decode: per level,
// a 1x1 conv to na·(5+nc) channels (anchor-major), reshaped to
// [N,na,ny,nx,5+nc], sigmoid, xy = (2s + grid - 0.5)·stride and
// wh = (2s)²·anchor, flattened to [N,na·ny·nx,5+nc] and concatenated.
// anchors are in input pixels, per level.
func (b *builder) detect(scope string, nc int, levels []detectLevel, anchors [][]float32) {
	na := len(anchors[0]) / 2
	no := 5 + nc
	two := b.constant("const.two", nil, []float32{2})
	split := b.constInt64("const.detect_split", 2, 2, int64(nc+1))
	var outs []string
	total := int64(0)
	for i, l := range levels {
		ny, nx := l.side, l.side
		m := fmt.Sprintf("%s.m.%d", scope, i)
		w := b.param(m+".weight", na*no, l.ch, 1, 1)
		bias := b.param(m+".bias", na*no)
		y := b.conv2d(m, l.x, w, bias, 1, 1, 0, 1)
		y = b.op("Reshape", scope, []string{y, b.constInt64(fmt.Sprintf("%s.shape_in.%d", scope, i), -1, int64(na), int64(no), int64(ny), int64(nx))})
		y = b.op("Transpose", scope, []string{y}, onnx.Ints("perm", 0, 1, 3, 4, 2))
		y = b.op("Sigmoid", scope, []string{y})
		parts := b.add("Split", scope, []string{y, split}, 3, onnx.Int("axis", 4))
		xy, wh, conf := parts[0], parts[1], parts[2]

		grid := b.constant(fmt.Sprintf("%s.grid.%d", scope, i), []int64{1, 1, int64(ny), int64(nx), 2}, gridTable(ny, nx))
		strideT := b.constant(fmt.Sprintf("%s.stride.%d", scope, i), nil, []float32{float32(l.stride)})
		xy = b.op("Mul", scope, []string{xy, two})
		xy = b.op("Add", scope, []string{xy, grid})
		xy = b.op("Mul", scope, []string{xy, strideT})

		anchorGrid := b.constant(fmt.Sprintf("%s.anchor_grid.%d", scope, i), []int64{1, int64(na), 1, 1, 2}, anchors[i])
		wh = b.op("Mul", scope, []string{wh, two})
		wh = b.op("Pow", scope, []string{wh, two})
		wh = b.op("Mul", scope, []string{wh, anchorGrid})

		y = b.concat(scope, 4, xy, wh, conf)
		n := int64(na * ny * nx)
		total += n
		outs = append(outs, b.op("Reshape", scope, []string{y, b.constInt64(fmt.Sprintf("%s.shape_out.%d", scope, i), -1, n, int64(no))}))
	}
	b.concat(scope, 1, outs...)
	if b.err != nil {
		return
	}
	// That concat is the last node; its value takes the name ultralytics exports.
	b.g.Nodes[len(b.g.Nodes)-1].Outputs[0] = "output0"
	b.g.Outputs = []*onnx.ValueInfo{onnx.TensorValue("output0", onnx.Float,
		onnx.Dim{Param: "batch"}, onnx.Dim{Value: total}, onnx.Dim{Value: int64(no)})}
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
