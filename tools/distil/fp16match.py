#!/usr/bin/python3
"""fp16match.py compares two vidpipe runs' detections frame by frame, as
issue 12's float16 check does: the share of A's detections (conf >= C) that
B finds with the same class and IoU > 0.9 (B taken at C - 1e-4, so a score
within rounding of the threshold does not count as a miss), and the largest
box and confidence differences of the matched pairs.

  fp16match.py A_DIR B_DIR       e.g. evaluate.sh's fused320 and builtin320
"""
import glob
import json
import os
import sys


def load(path):
    with open(path) as f:
        return {d["frame"]: d["detections"] for d in map(json.loads, f)}


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def main():
    a_dir, b_dir = sys.argv[1], sys.argv[2]
    for conf in (0.25, 0.01):
        total = matched = 0
        box = score = 0.0
        for path in sorted(glob.glob(os.path.join(a_dir, "*", "detections.jsonl"))):
            video = os.path.basename(os.path.dirname(path))
            a, b = load(path), load(os.path.join(b_dir, video, "detections.jsonl"))
            for frame, dets in a.items():
                cands = [d for d in b.get(frame, []) if d["conf"] >= conf - 1e-4]
                used = set()
                for d in (d for d in dets if d["conf"] >= conf):
                    total += 1
                    best, j = max(((iou(d["box"], e["box"]), j) for j, e in enumerate(cands)
                                   if j not in used and e["class_id"] == d["class_id"]), default=(0.0, -1))
                    if best > 0.9:
                        matched += 1
                        used.add(j)
                        box = max(box, max(abs(x - y) for x, y in zip(d["box"], cands[j]["box"])))
                        score = max(score, abs(d["conf"] - cands[j]["conf"]))
        print(f"conf {conf}: {total} detections in A, {matched} ({100 * matched / max(total, 1):.2f}%) found by B "
              f"(same class, IoU > 0.9); max box diff {box:.3f} px, max conf diff {score:.3g}")


if __name__ == "__main__":
    main()
