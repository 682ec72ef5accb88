"""The model input YOLOv5's own pipeline makes from a video, as a reference.

Usage: cv2_letterbox.py VIDEO SIZE [MAX_FRAMES [ORIENTATION]]

Reads VIDEO with cv2.VideoCapture (OpenCV's FFmpeg backend, default
settings, so display-matrix rotation applies) and letterboxes every frame as
YOLOv5 does: r = min(S/h, S/w), new size round(w*r) x round(h*r) (Python's
round, half to even), cv2.resize INTER_LINEAR unless the size already fits,
a 114 border split evenly with the odd pixel bottom/right, then BGR to RGB.
Writes each letterbox to stdout as SIZE*SIZE*3 bytes, packed RGB.
Run with Debian's /usr/bin/python3 (python3-opencv 4.6).

ORIENTATION "auto" (the default) keeps cv2's own rotation. OpenCV 4.6.0
turns +-90 degree videos the wrong way (opencv/opencv#22088, a regression of
4.6.0 fixed later), so "display-matrix" turns cv2's automatic rotation off
and rotates as ffprobe reads the display matrix, as ffmpeg, players and
other OpenCV releases do.
"""
import json
import subprocess
import sys

import cv2

ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def clockwise(path):
    """Clockwise degrees the display matrix asks for, as ffmpeg's autorotate."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream_side_data=rotation", "-of", "json", path],
                         check=True, capture_output=True, text=True).stdout
    for stream in json.loads(out).get("streams", []):
        for side in stream.get("side_data_list", []):
            if "rotation" in side:
                return int(round(-float(side["rotation"]) / 90)) * 90 % 360
    return 0


def letterbox(im, size):
    h, w = im.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    if (w, h) != (new_w, new_h):
        im = cv2.resize(im, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return im[:, :, ::-1]


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    orientation = sys.argv[4] if len(sys.argv) > 4 else "auto"
    if orientation not in ("auto", "display-matrix"):
        sys.exit(f"orientation {orientation!r} is not auto or display-matrix")
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        sys.exit(f"cv2.VideoCapture cannot open {path}")
    rot = 0
    if orientation == "display-matrix":
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        rot = clockwise(path)
    out, n = sys.stdout.buffer, 0
    while limit < 0 or n < limit:
        ok, im = cap.read()
        if not ok:
            break
        if rot:
            im = cv2.rotate(im, ROTATE[rot])
        out.write(letterbox(im, size).tobytes())
        n += 1
    print(f"{path}: {n} frames, cv2 {cv2.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
