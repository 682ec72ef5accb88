package main

import (
	"context"
	"fmt"
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

// previewWindow bounds the frames searched for the preview picture, so
// drawing it never decodes a long video a second time.
const previewWindow = 1500

// annotateVideo writes the annotated video, then preview.png beside it: the
// frame with the most detections among the first previewWindow frames,
// with its boxes drawn, for people who would rather look than read.
func annotateVideo(ctx context.Context, source string, src io.ReadSeeker, dst string, boxes func(int) ([]bus.Detection, bool)) error {
	var (
		buf       []annotate.Box
		best      []annotate.Box
		bestFrame = -1
	)
	_, err := annotate.Write(ctx, source, src, dst, func(frame int) ([]annotate.Box, bool) {
		dets, analysed := boxes(frame)
		buf = buf[:0]
		for _, d := range dets {
			buf = append(buf, annotate.Box{
				X1: d.Box[0], Y1: d.Box[1], X2: d.Box[2], Y2: d.Box[3],
				ClassID: d.ClassID, Label: d.Class, Conf: d.Conf,
			})
		}
		if analysed && frame < previewWindow && (bestFrame < 0 || len(buf) > len(best)) {
			best, bestFrame = append(best[:0], buf...), frame
		}
		return buf, analysed
	}, annotate.Options{})
	if err != nil || bestFrame < 0 {
		return err
	}
	if seeker, ok := src.(io.Seeker); ok {
		if _, err := seeker.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("preview of %s: %w", source, err)
		}
	}
	return annotate.FramePNG(ctx, source, src, bestFrame, filepath.Join(filepath.Dir(dst), "preview.png"), best)
}
