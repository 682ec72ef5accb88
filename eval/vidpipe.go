package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/vidpipe/vidpipe/results"
	"github.com/vidpipe/vidpipe/storage"
)

// MaxLineBytes bounds one detections.jsonl line, as the coordinator's own
// reader does.
const MaxLineBytes = 16 << 20

// vidpipeReader turns vidpipe detections (frames, class indexes, xyxy
// boxes) into COCO detections of a ground truth.
type vidpipeReader struct {
	frames   *frameMap
	classes  *classMap
	d        *Detections
	videos   map[string]bool
	unmapped map[string]bool
}

func newVidpipeReader(d *Detections) (*vidpipeReader, error) {
	frames, err := newFrameMap(d.gt)
	if err != nil {
		return nil, err
	}
	return &vidpipeReader{frames: frames, classes: newClassMap(d.gt), d: d, videos: map[string]bool{}, unmapped: map[string]bool{}}, nil
}

// add takes one vidpipe detection.
func (v *vidpipeReader) add(video string, frame int64, classID int, class string, conf float32, box []float32) error {
	if err := checkBox(box); err != nil {
		return err
	}
	if box[2] < box[0] || box[3] < box[1] {
		return fmt.Errorf("%w: box %v has x2 < x1 or y2 < y1", ErrInvalid, box)
	}
	if err := checkScore(float64(conf)); err != nil {
		return err
	}
	v.videos[video] = true
	img, ok := v.frames.image(video, frame)
	if !ok {
		v.d.Counts.Read++
		v.d.Counts.OffImage++
		return nil
	}
	cat, ok := v.classes.category(classID, class)
	if !ok {
		v.d.Counts.Read++
		v.d.Counts.OffClass++
		v.unmapped[class] = true
		return nil
	}
	x1, y1 := float64(box[0]), float64(box[1])
	v.d.Add(Detection{ImageID: img, CategoryID: cat, Box: [4]float64{x1, y1, float64(box[2]) - x1, float64(box[3]) - y1}, Score: float64(conf)})
	return nil
}

// readFile reads one detections.jsonl or detections.parquet; video is the
// file's folder, its video (a Parquet row names its own).
func (v *vidpipeReader) readFile(ctx context.Context, b storage.Bucket, key, video string) error {
	name := storage.URI(b, key)
	v.d.Counts.Files = append(v.d.Counts.Files, name)
	if strings.HasSuffix(key, ".parquet") {
		r, err := storage.NewReadSeeker(ctx, b, key, storage.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		st, err := results.Scan(ctx, r, results.Filter{}, func(row results.Row) error {
			err := v.add(row.Video, row.Frame, int(row.ClassID), row.Class, row.Conf, []float32{row.X1, row.Y1, row.X2, row.Y2})
			if err != nil {
				return fmt.Errorf("%s: video %q frame %d: %w", name, row.Video, row.Frame, err)
			}
			return nil
		})
		if st.Rows == 0 {
			v.videos[video] = true // no row names it, yet its frames are its own
		}
		return err
	}
	v.videos[video] = true
	rc, err := b.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	return v.readJSONL(ctx, name, video, rc)
}

// jsonlLine is one detections.jsonl line. Numbers are float32, as the
// coordinator wrote them, so JSONL and Parquet give the same detections.
type jsonlLine struct {
	Frame      *int64 `json:"frame"`
	Detections []struct {
		ClassID *int      `json:"class_id"`
		Class   string    `json:"class"`
		Conf    *float32  `json:"conf"`
		Box     []float32 `json:"box"`
	} `json:"detections"`
}

func (v *vidpipeReader) readJSONL(ctx context.Context, name, video string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	for n := 1; sc.Scan(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var l jsonlLine
		if err := json.Unmarshal(text, &l); err != nil {
			return fmt.Errorf("%s line %d: %w: %w", name, n, ErrInvalid, err)
		}
		if l.Frame == nil {
			return fmt.Errorf("%s line %d: %w: no frame", name, n, ErrInvalid)
		}
		for i, x := range l.Detections {
			err := fmt.Errorf("%w: want class_id, class, conf and box", ErrInvalid)
			if x.ClassID != nil && x.Conf != nil {
				err = v.add(video, *l.Frame, *x.ClassID, x.Class, *x.Conf, x.Box)
			}
			if err != nil {
				return fmt.Errorf("%s line %d: detections[%d]: %w", name, n, i, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("read %s: %w: a line over %d bytes", name, ErrTooLarge, MaxLineBytes)
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// finish checks the videos read against the ground truth and fills in the
// counts.
func (v *vidpipeReader) finish() error {
	videos := slices.Sorted(maps.Keys(v.videos))
	if len(videos) > 1 && v.frames.anyVideo {
		return fmt.Errorf("%s: %w: the detections come from %d videos (%s) but some images have no \"video\" field",
			v.d.gt.Name, ErrNoMatch, len(videos), strings.Join(videos, ", "))
	}
	v.d.Counts.Videos = videos
	v.d.Counts.Classes = slices.Sorted(maps.Keys(v.unmapped))
	return nil
}
