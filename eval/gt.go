package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxGroundTruthBytes bounds a ground-truth file: COCO's largest,
// instances_train2017.json, is 448 MB.
const MaxGroundTruthBytes = 1 << 30

// Image is a ground-truth image. Frame and Video tie it to a frame of
// vidpipe results (see the package documentation).
type Image struct {
	ID       int64
	FileName string
	Frame    *int64
	Video    string
}

// Category is a ground-truth category.
type Category struct {
	ID   int64
	Name string
}

// imgCat keys what is evaluated together: one image and one category.
type imgCat struct{ img, cat int64 }

// gtBox is one ground-truth annotation.
type gtBox struct {
	id    int64
	box   [4]float64 // x, y, w, h
	area  float64
	crowd bool
}

// GroundTruth is a COCO annotations file: the images and categories that
// are evaluated and their boxes.
type GroundTruth struct {
	Name       string
	Images     []Image    // in file order
	Categories []Category // in file order

	images map[int64]int      // id → index in Images
	cats   map[int64]int      // id → index in Categories
	boxes  map[imgCat][]gtBox // in file order
	// Annotations counts the boxes kept; Dropped those whose image or
	// category the file does not list (pycocotools leaves them out too).
	Annotations, Dropped int
}

// rawAnn is an annotation as written; pointers tell a missing field apart.
type rawAnn struct {
	ID         *int64    `json:"id"`
	ImageID    *int64    `json:"image_id"`
	CategoryID *int64    `json:"category_id"`
	BBox       []float64 `json:"bbox"`
	Area       *float64  `json:"area"`
	IsCrowd    flag      `json:"iscrowd"`
}

// ReadGroundTruth decodes a COCO annotations file from r; name is used in
// errors. Keys other than images, annotations and categories are skipped.
func ReadGroundTruth(name string, r io.Reader) (*GroundTruth, error) {
	gt := &GroundTruth{Name: name, images: map[int64]int{}, cats: map[int64]int{}, boxes: map[imgCat][]gtBox{}}
	var anns []rawAnn
	dec := json.NewDecoder(&limitReader{r: r, limit: MaxGroundTruthBytes})
	where := "" // the entry being decoded, for errors
	err := eachKey(dec, func(key string) error {
		where = key
		switch key {
		case "images":
			return eachElem(dec, func(i int) error {
				where = fmt.Sprintf("images[%d]", i)
				return gt.addImage(dec)
			})
		case "categories":
			return eachElem(dec, func(i int) error {
				where = fmt.Sprintf("categories[%d]", i)
				return gt.addCategory(dec)
			})
		case "annotations":
			return eachElem(dec, func(i int) error {
				where = fmt.Sprintf("annotations[%d]", i)
				var a rawAnn
				if err := dec.Decode(&a); err != nil {
					return err
				}
				if err := checkAnn(&a); err != nil {
					return err
				}
				anns = append(anns, a)
				return nil
			})
		default:
			return skip(dec)
		}
	})
	if err == nil {
		where = ""
		err = atEOF(dec)
	}
	if err != nil {
		return nil, inputError(name, where, dec, err)
	}
	if len(gt.Images) == 0 || len(gt.Categories) == 0 {
		return nil, fmt.Errorf("%s: %w: no images or no categories: not a COCO ground-truth file", name, ErrInvalid)
	}
	if err := gt.addAnnotations(anns); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return gt, nil
}

func inputError(name, where string, dec *json.Decoder, err error) error {
	if where != "" {
		name += ": " + where
	}
	if isDecodeError(err) {
		return fmt.Errorf("%s: %w: %w (near byte %d)", name, ErrInvalid, err, dec.InputOffset())
	}
	return fmt.Errorf("%s: %w", name, err)
}

// isDecodeError tells encoding/json's errors (syntax, types, truncation)
// from the package's own, which already wrap a sentinel.
func isDecodeError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func (gt *GroundTruth) addImage(dec *json.Decoder) error {
	var raw struct {
		ID       *int64 `json:"id"`
		FileName string `json:"file_name"`
		Frame    *int64 `json:"frame"`
		Video    string `json:"video"`
	}
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if raw.ID == nil {
		return fmt.Errorf("%w: image without an id", ErrInvalid)
	}
	im := Image{ID: *raw.ID, FileName: raw.FileName, Frame: raw.Frame, Video: raw.Video}
	if _, dup := gt.images[im.ID]; dup {
		return fmt.Errorf("%w: duplicate image id %d", ErrInvalid, im.ID)
	}
	if im.Frame != nil && *im.Frame < 0 {
		return fmt.Errorf("%w: image %d: negative frame %d", ErrInvalid, im.ID, *im.Frame)
	}
	gt.images[im.ID] = len(gt.Images)
	gt.Images = append(gt.Images, im)
	return nil
}

func (gt *GroundTruth) addCategory(dec *json.Decoder) error {
	var raw struct {
		ID   *int64 `json:"id"`
		Name string `json:"name"`
	}
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if raw.ID == nil {
		return fmt.Errorf("%w: category without an id", ErrInvalid)
	}
	c := Category{ID: *raw.ID, Name: raw.Name}
	if _, dup := gt.cats[c.ID]; dup {
		return fmt.Errorf("%w: duplicate category id %d", ErrInvalid, c.ID)
	}
	gt.cats[c.ID] = len(gt.Categories)
	gt.Categories = append(gt.Categories, c)
	return nil
}

func checkAnn(a *rawAnn) error {
	switch {
	case a.ID == nil:
		return fmt.Errorf("%w: annotation without an id", ErrInvalid)
	case a.ImageID == nil || a.CategoryID == nil:
		return fmt.Errorf("%w: annotation %d without image_id or category_id", ErrInvalid, *a.ID)
	}
	if err := checkXYWH(a.BBox); err != nil {
		return fmt.Errorf("annotation %d: %w", *a.ID, err)
	}
	if a.Area != nil {
		if err := checkScore(*a.Area); err != nil || *a.Area < 0 {
			return fmt.Errorf("%w: annotation %d: area %v is not a finite non-negative number", ErrInvalid, *a.ID, *a.Area)
		}
	}
	return nil
}

// addAnnotations keeps the annotations of listed images and categories, in
// file order, as pycocotools' getAnnIds(imgIds, catIds) does.
func (gt *GroundTruth) addAnnotations(anns []rawAnn) error {
	seen := make(map[int64]struct{}, len(anns))
	for _, a := range anns {
		if _, dup := seen[*a.ID]; dup {
			return fmt.Errorf("%w: duplicate annotation id %d", ErrInvalid, *a.ID)
		}
		seen[*a.ID] = struct{}{}
		_, okImg := gt.images[*a.ImageID]
		_, okCat := gt.cats[*a.CategoryID]
		if !okImg || !okCat {
			gt.Dropped++
			continue
		}
		b := gtBox{id: *a.ID, box: [4]float64(a.BBox), crowd: bool(a.IsCrowd)}
		if a.Area != nil {
			b.area = *a.Area
		} else {
			b.area = b.box[2] * b.box[3]
		}
		k := imgCat{*a.ImageID, *a.CategoryID}
		gt.boxes[k] = append(gt.boxes[k], b)
		gt.Annotations++
	}
	return nil
}

// imageIDs are the evaluated images in pycocotools' order: ascending ids.
func (gt *GroundTruth) imageIDs() []int64 {
	return sortedIDs(gt.Images, func(im Image) int64 { return im.ID })
}

// categoryIDs are the evaluated categories in ascending id order.
func (gt *GroundTruth) categoryIDs() []int64 {
	return sortedIDs(gt.Categories, func(c Category) int64 { return c.ID })
}

func sortedIDs[T any](items []T, id func(T) int64) []int64 {
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = id(it)
	}
	slices.Sort(ids)
	return ids
}

// category returns the category with id.
func (gt *GroundTruth) category(id int64) Category { return gt.Categories[gt.cats[id]] }
