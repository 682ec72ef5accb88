"""Shared pieces of the distillation tools: the data list, frame loading the
way vidpipe (and YOLOv5) reads pixels, and COCO names."""
import glob
import os

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
CACHE = os.environ.get("VIDPIPE_CACHE", os.path.expanduser("~/.cache/vidpipe"))
WORK = os.path.join(CACHE, "distil")

COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]
# COCO's own category ids for the 80 classes (YOLOv5 val.py's coco80_to_coco91_class).
COCO91 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
          33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
          60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]
CLASS_OF_ID = {cid: i for i, cid in enumerate(COCO91)}

VIDEOS = ["vtest.avi", "Megamind.avi", "tree.avi"]
HOLDOUT = 0.2  # the last fifth of each video is for evaluation only


def categories():
    return [{"id": cid, "name": n} for cid, n in zip(COCO91, COCO80)]


def video_frames(name):
    """Yields (index, BGR frame) of a sample video as cv2.VideoCapture decodes
    it (vidpipe's --preprocess exact gives the same pixels)."""
    cap = cv2.VideoCapture(os.path.join(CACHE, "videos", name))
    if not cap.isOpened():
        raise SystemExit(f"{name}: cannot open (run scripts/setup.sh first)")
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield i, frame
        i += 1
    cap.release()


def still_images():
    """The sample pictures of Debian's opencv-doc (examples/data), sorted."""
    root = os.path.join(WORK, "opencv-data")
    files = sorted(glob.glob(os.path.join(root, "*.jpg")) + glob.glob(os.path.join(root, "*.png")))
    return [f for f in files if os.path.getsize(f) > 8192]


def image_name(source, index):
    stem = os.path.splitext(os.path.basename(source))[0]
    return f"{stem}_{index:06d}.png" if index is not None else os.path.basename(source)


def np_boxes(anns):
    if not anns:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)
    b = np.array([a["bbox"] for a in anns], np.float32)
    b[:, 2:] += b[:, :2]
    return b, np.array([CLASS_OF_ID[a["category_id"]] for a in anns], np.int64)
