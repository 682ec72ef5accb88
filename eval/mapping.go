package eval

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/vidpipe/vidpipe/model/detect"
)

// coco80to91 is YOLOv5's coco80_to_coco91_class: the COCO category id of
// each 0-based COCO-80 class index.
var coco80to91 = [80]int64{
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
	35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
	64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
}

// frameKey is a frame of a video; video "" stands for any video.
type frameKey struct {
	video string
	frame int64
}

// frameMap ties vidpipe frames to ground-truth images.
type frameMap struct {
	images map[frameKey]int64
	// anyVideo is set when some image has no video and so matches the frame
	// of any video.
	anyVideo bool
}

func newFrameMap(gt *GroundTruth) (*frameMap, error) {
	m := &frameMap{images: map[frameKey]int64{}}
	for _, im := range gt.Images {
		f, ok := imageFrame(im)
		if !ok {
			continue
		}
		k := frameKey{im.Video, f}
		if other, dup := m.images[k]; dup {
			return nil, fmt.Errorf("%s: %w: images %d and %d are both frame %d of video %q", gt.Name, ErrNoMatch, other, im.ID, f, im.Video)
		}
		m.images[k] = im.ID
		m.anyVideo = m.anyVideo || im.Video == ""
	}
	if len(m.images) == 0 {
		return nil, fmt.Errorf("%s: %w: no image names a frame (a \"frame\" field, or a file_name like clip_000123.jpg or 000123.jpg)", gt.Name, ErrNoMatch)
	}
	return m, nil
}

// imageFrame is the frame an image shows: its frame field, or the number
// its file name is or ends in after a '_'.
func imageFrame(im Image) (int64, bool) {
	if im.Frame != nil {
		return *im.Frame, true
	}
	base := path.Base(strings.ReplaceAll(im.FileName, `\`, "/"))
	base = strings.TrimSuffix(base, path.Ext(base))
	if i := strings.LastIndexByte(base, '_'); i >= 0 {
		base = base[i+1:]
	}
	if base == "" || strings.TrimLeft(base, "0123456789") != "" {
		return 0, false
	}
	f, err := strconv.ParseInt(base, 10, 64)
	return f, err == nil
}

// image returns the image showing frame of video.
func (m *frameMap) image(video string, frame int64) (int64, bool) {
	if id, ok := m.images[frameKey{video, frame}]; ok {
		return id, true
	}
	id, ok := m.images[frameKey{"", frame}]
	return id, ok
}

// classMap ties vidpipe classes to ground-truth categories.
type classMap struct {
	byName map[string]int64 // names that only one category has
	// coco is set when the ground truth is numbered as COCO, so a class
	// index maps through coco80to91.
	coco bool
	cats map[int64]int
}

func newClassMap(gt *GroundTruth) *classMap {
	m := &classMap{byName: map[string]int64{}, coco: true, cats: gt.cats}
	cocoID := make(map[string]int64, len(detect.COCO80))
	for i, n := range detect.COCO80 {
		cocoID[n] = coco80to91[i]
	}
	count := map[string]int{}
	for _, c := range gt.Categories {
		count[c.Name]++
		m.byName[c.Name] = c.ID
		if id, named := cocoID[c.Name]; c.ID == 0 || named && id != c.ID {
			m.coco = false
		}
	}
	for n, k := range count {
		if k > 1 {
			delete(m.byName, n)
		}
	}
	return m
}

// category returns the category of a detection's class.
func (m *classMap) category(classID int, class string) (int64, bool) {
	if id, ok := m.byName[class]; ok {
		return id, true
	}
	if !m.coco || classID < 0 || classID >= len(coco80to91) {
		return 0, false
	}
	id := coco80to91[classID]
	_, ok := m.cats[id]
	return id, ok
}
