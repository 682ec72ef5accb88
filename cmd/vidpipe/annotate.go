package main

import (
	"context"
	"io"
	"path/filepath"

	"github.com/vidpipe/vidpipe/bus"
	"github.com/vidpipe/vidpipe/coordinator"
	"github.com/vidpipe/vidpipe/coordinator/annotate"
	"github.com/vidpipe/vidpipe/ingest"
	"github.com/vidpipe/vidpipe/storage"
)

// annotator returns the coordinator's Annotator: it re-decodes the source,
// streaming it from its bucket when remote, and draws the detections into
// an H.264 copy.
func annotator(open ingest.Opener) coordinator.Annotator {
	return func(ctx context.Context, source, dst string, boxes func(int) ([]bus.Detection, bool)) error {
		var src io.ReadSeeker
		if ingest.IsRemote(source) {
			b, key, err := open(ctx, source)
			if err != nil {
				return err
			}
			r, err := storage.NewReadSeeker(ctx, b, key, storage.ReaderOptions{})
			if err != nil {
				return err
			}
			defer r.Close()
			src = r
		}
		return annotateVideo(ctx, source, src, dst, boxes)
	}
}

// annotateVideo writes the annotated video and, in the same pass,
// preview.png beside it: the analysed frame with the most detections among
// the first frames, boxes drawn, for people who would rather look than read.
func annotateVideo(ctx context.Context, source string, src io.ReadSeeker, dst string, boxes func(int) ([]bus.Detection, bool)) error {
	var buf []annotate.Box
	_, err := annotate.Write(ctx, source, src, dst, func(frame int) ([]annotate.Box, bool) {
		dets, analysed := boxes(frame)
		buf = buf[:0]
		for _, d := range dets {
			buf = append(buf, annotate.Box{
				X1: d.Box[0], Y1: d.Box[1], X2: d.Box[2], Y2: d.Box[3],
				ClassID: d.ClassID, Label: d.Class, Conf: d.Conf,
			})
		}
		return buf, analysed
	}, annotate.Options{Preview: filepath.Join(filepath.Dir(dst), "preview.png")})
	return err
}
