#!/usr/bin/python3
"""overlay.py draws COCO boxes on their pictures, side by side, to check by
eye that the teacher's boxes land on the objects.

  overlay.py LABELS.json OUT.jpg FILE_NAME [FILE_NAME...]
"""
import json
import sys

import cv2
import numpy as np

import common


def main():
    labels, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(labels) as f:
        coco = json.load(f)
    by_name = {img["file_name"]: img for img in coco["images"]}
    tiles = []
    for n in names:
        img = by_name[n]
        if img.get("video"):
            pic = next(f for i, f in common.video_frames(img["source"]) if i == img["frame"])
        else:
            pic = cv2.imread(f"{common.WORK}/opencv-data/{n}", cv2.IMREAD_COLOR)
        for a in coco["annotations"]:
            if a["image_id"] != img["id"]:
                continue
            x, y, w, h = (int(round(v)) for v in a["bbox"])
            name = common.COCO80[common.CLASS_OF_ID[a["category_id"]]]
            color = (0, 200, 0) if name == "person" else (0, 0, 230)
            cv2.rectangle(pic, (x, y), (x + w, y + h), color, 2)
            cv2.putText(pic, name, (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
        s = 360 / pic.shape[0]
        tiles.append(cv2.resize(pic, (int(pic.shape[1] * s), 360), interpolation=cv2.INTER_AREA))
    cv2.imwrite(out, np.hstack(tiles))


if __name__ == "__main__":
    main()
