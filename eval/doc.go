// Package eval scores detections against COCO ground truth exactly as
// pycocotools' COCOeval (iouType "bbox") does, so a vidpipe run or a YOLOv5
// val.py results file gets the 12 numbers val.py prints, and per-class AP.
//
// # Algorithm
//
// Evaluate follows cocoeval.py step by step (see MODEL.md §7): IoU
// thresholds 0.50:0.05:0.95, 101 recall points, area ranges by the ground
// truth's "area" field (w×h when it has none), maxDets 1, 10 and 100. Per
// image and category, detections are stably sorted by score and cut to 100;
// ground truth that is crowd or outside the area range is ignored and sorted
// last; each detection takes the unmatched ground truth with the highest IoU
// at or above the threshold, a crowd region (IoU = intersection over the
// detection's area) matching any number of detections. Detections matched
// to ignored ground truth, and unmatched detections outside the area range,
// are ignored. Detections of all images are then merged by score (a stable
// sort, ties in image id order), precision made monotone and sampled at the
// recall points. Categories without ground truth are -1 and left out of
// every mean. Two quirks are kept so the numbers match: a ground truth
// annotation with id 0 never counts as matched (pycocotools stores the
// matched id and tests it for non-zero), and precision is tp/(tp+fp+ε).
//
// Only the ground truth's images and categories are evaluated: detections
// on other images, or of other categories, are counted and dropped.
//
// # Detections
//
// A COCO results file is a JSON array of {image_id, category_id, bbox
// [x,y,w,h], score}, as val.py writes it. vidpipe results are a
// detections.jsonl or detections.parquet (see package results), or a folder
// or S3 prefix holding <video>/detections.parquet or .jsonl files (the
// Parquet file when a video has both). Their frames become image ids and
// their classes category ids by these rules:
//
//   - Frames: a ground-truth image may carry an integer "frame"; otherwise
//     its file_name, without folders and extension, is the frame number
//     ("000123.jpg") or ends in "_<frame>" ("vtest_000123.jpg" is frame 123).
//     An image with neither is never matched.
//   - Videos: a ground-truth image may carry "video", the name vidpipe gives
//     the video (its output folder, the Parquet video column); it then
//     matches only that video's frames. An image without one matches a frame
//     of any video, which is allowed only when the detections come from one
//     video. A JSONL file's video is its folder's name.
//   - Classes: a detection's class name that is the name of a ground-truth
//     category maps to it. Otherwise its class_id, the 0-based COCO-80 index
//     (person=0 … toothbrush=79), maps through YOLOv5's coco80_to_coco91_class
//     table (person=1 … toothbrush=90), but only when the ground truth is
//     numbered as COCO: no category id 0, and every category named like a
//     COCO-80 class has that class's COCO-91 id. A 0-based ground truth, or
//     one numbered its own way, is matched by name only.
//
// # Limits
//
// Inputs are outside data. A ground-truth file may be at most
// MaxGroundTruthBytes and a COCO results file MaxResultsBytes; both are
// decoded element by element, not whole. A JSONL line may be at most
// MaxLineBytes. Only the MaxDets highest-scoring detections of each image
// and category are kept as they are read, as only those can count. Boxes
// must hold four finite numbers with non-negative width and height, scores
// must be finite; anything else is ErrInvalid naming the file and the entry.
package eval
