package main

import (
	"context"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator/annotate"
)

// annotateVideo is the coordinator's Annotator: it re-decodes the source
// and draws the detections into an H.264 copy.
func annotateVideo(ctx context.Context, source, dst string, boxes func(int) ([]bus.Detection, bool)) error {
	var buf []annotate.Box
	_, err := annotate.Write(ctx, source, nil, dst, func(frame int) ([]annotate.Box, bool) {
		dets, analysed := boxes(frame)
		buf = buf[:0]
		for _, d := range dets {
			buf = append(buf, annotate.Box{
				X1: d.Box[0], Y1: d.Box[1], X2: d.Box[2], Y2: d.Box[3],
				ClassID: d.ClassID, Label: d.Class, Conf: d.Conf,
			})
		}
		return buf, analysed
	}, annotate.Options{})
	return err
}
