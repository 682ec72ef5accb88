#!/usr/bin/python3
"""train.py trains RepYOLOv5s in training form (3x3 + 1x1 + identity BN
branches in every 3x3 conv, vidpipe's --rep all) on the teacher's labels with
the YOLOv5 loss, and writes its weights as safetensors with ultralytics names
(run with /usr/bin/python3, after label.py).

  train.py --iters 1200 --out ~/.cache/vidpipe/distil/train

The network is the project's own torch reference model
(model/yolo/testdata/gen_reference.py) at yolov5s size: width 0.5, depth 0.33,
80 COCO classes. Each sample is a --crop square cut from a picture letterboxed
to a random long side in [--min-side, --max-side] pixels, so one CPU-sized
crop teaches the object scales of both 320 and 640 inputs. Augmentation is
YOLOv5's: HSV jitter and left-right flips. Adam with a linear warm-up and a
cosine decay; an EMA of the weights is what gets written.
"""
import argparse
import importlib.util
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn

import common

spec = importlib.util.spec_from_file_location(
    "gen_reference", os.path.join(common.REPO, "model", "yolo", "testdata", "gen_reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

NC = 80


# ---------------------------------------------------------------- data

def load_split(path):
    """Pictures and labels of a COCO file: [(BGR, boxes xyxy, classes)]."""
    with open(path) as f:
        coco = json.load(f)
    anns = {}
    for a in coco["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    wanted = {}
    for img in coco["images"]:
        if img.get("video"):
            wanted.setdefault(img["source"], {})[img["frame"]] = img
    pics = {}
    for src, frames in wanted.items():
        for i, frame in common.video_frames(src):
            if i in frames:
                pics[frames[i]["id"]] = frame
    for img in coco["images"]:
        if not img.get("video"):
            pics[img["id"]] = cv2.imread(os.path.join(common.WORK, "opencv-data", img["file_name"]), cv2.IMREAD_COLOR)
    out = []
    for img in coco["images"]:
        b, c = common.np_boxes(anns.get(img["id"], []))
        out.append((pics[img["id"]], b, c))
    return out


def hsv_jitter(img, rng, hgain=0.015, sgain=0.7, vgain=0.4):
    r = rng.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=r.dtype)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def sample(item, rng, a):
    """One training crop: (CHW float RGB in [0,1], labels [n, 5] cls cx cy w h in pixels)."""
    img, boxes, cls = item
    h, w = img.shape[:2]
    side = rng.uniform(a.min_side, a.max_side)
    r = side / max(h, w)
    nw, nh = max(1, int(round(w * r))), max(1, int(round(h * r)))
    pic = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    s = a.crop
    canvas = np.full((s, s, 3), 114, np.uint8)
    # place the picture at a random offset: inside the canvas when it fits,
    # else a random window of it
    ox = rng.integers(0, s - nw + 1) if nw <= s else -rng.integers(0, nw - s + 1)
    oy = rng.integers(0, s - nh + 1) if nh <= s else -rng.integers(0, nh - s + 1)
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + nw, s), min(oy + nh, s)
    canvas[y0:y1, x0:x1] = pic[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    b = boxes * r + [ox, oy, ox, oy]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    b = np.clip(b, 0, s)
    kept = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    ok = (kept > 0.4 * area) & (b[:, 2] - b[:, 0] > 2) & (b[:, 3] - b[:, 1] > 2)
    b, c = b[ok], cls[ok]
    canvas = hsv_jitter(canvas, rng)
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
        b = np.stack([s - b[:, 2], b[:, 1], s - b[:, 0], b[:, 3]], 1) if len(b) else b
    x = torch.from_numpy(np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))).float() / 255
    lab = np.zeros((len(b), 5), np.float32)
    if len(b):
        lab[:, 0] = c
        lab[:, 1] = (b[:, 0] + b[:, 2]) / 2
        lab[:, 2] = (b[:, 1] + b[:, 3]) / 2
        lab[:, 3] = b[:, 2] - b[:, 0]
        lab[:, 4] = b[:, 3] - b[:, 1]
    return x, torch.from_numpy(lab)


# ---------------------------------------------------------------- loss

def bbox_ciou(b1, b2, eps=1e-7):
    """CIoU of boxes given as (cx, cy, w, h), row by row."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = b1.chunk(4, -1), b2.chunk(4, -1)
    b1x1, b1x2, b1y1, b1y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2x1, b2x2, b2y1, b2y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * \
            (torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((x2 - x1) ** 2 + (y2 - y1) ** 2)
    v = (4 / math.pi ** 2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return (iou - (rho2 / c2 + v * alpha)).squeeze(-1)


class YOLOv5Loss:
    """YOLOv5's ComputeLoss (v7.0 defaults): targets on up to three cells per
    anchor whose shape ratio is within anchor_t, CIoU box loss, objectness
    BCE against the IoU, class BCE; level balance 4, 1, 0.4."""

    def __init__(self, detect, imgsz, box=0.05, obj=1.0, cls=0.5, anchor_t=4.0):
        self.na, self.nl = 3, 3
        self.anchors = detect.anchors  # [nl, na, 2] in grid units
        self.balance = [4.0, 1.0, 0.4]
        self.hbox = box * 3 / self.nl
        self.hobj = obj * (imgsz / 640) ** 2 * 3 / self.nl
        self.hcls = cls * NC / 80 * 3 / self.nl
        self.anchor_t = anchor_t
        self.bce = nn.BCEWithLogitsLoss()

    def __call__(self, raw, targets):
        """raw: Detect conv outputs [bs, na*(5+nc), ny, nx]; targets [n, 6]:
        image, class, cx, cy, w, h in pixels. Returns (loss, parts)."""
        p = [r.view(r.shape[0], self.na, NC + 5, r.shape[2], r.shape[3]).permute(0, 1, 3, 4, 2) for r in raw]
        lbox, lobj, lcls = torch.zeros(()), torch.zeros(()), torch.zeros(())
        for i, pi in enumerate(p):
            b, a, gj, gi, tbox, tcls, anch = self.build(i, pi.shape, targets)
            tobj = torch.zeros(pi.shape[:4])
            if b.shape[0]:
                ps = pi[b, a, gj, gi]
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anch
                iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox)
                lbox = lbox + (1.0 - iou).mean()
                tobj[b, a, gj, gi] = iou.detach().clamp(0)
                t = torch.zeros_like(ps[:, 5:])
                t[range(b.shape[0]), tcls] = 1.0
                lcls = lcls + self.bce(ps[:, 5:], t)
            lobj = lobj + self.bce(pi[..., 4], tobj) * self.balance[i]
        bs = p[0].shape[0]
        lbox, lobj, lcls = lbox * self.hbox, lobj * self.hobj, lcls * self.hcls
        return (lbox + lobj + lcls) * bs, torch.stack((lbox, lobj, lcls)).detach()

    def build(self, i, shape, targets):
        stride = ref.STRIDES[i]
        ny, nx = shape[2], shape[3]
        anchors = self.anchors[i]
        nt = targets.shape[0]
        g = 0.5
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32) * g
        t = targets.clone()
        t[:, 2:6] /= stride  # pixels to grid units
        ai = torch.arange(self.na, dtype=torch.float32).view(self.na, 1).repeat(1, nt)
        t = torch.cat((t.repeat(self.na, 1, 1), ai[..., None]), 2)  # [na, nt, 7]
        if nt:
            r = t[..., 4:6] / anchors[:, None]
            t = t[torch.max(r, 1 / r).max(2)[0] < self.anchor_t]
            gxy = t[:, 2:4]
            gxi = torch.tensor([nx, ny], dtype=torch.float32) - gxy
            j, k = ((gxy % 1 < g) & (gxy > 1)).T
            l, m = ((gxi % 1 < g) & (gxi > 1)).T
            j = torch.stack((torch.ones_like(j), j, k, l, m))
            t = t.repeat((5, 1, 1))[j]
            offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
        else:
            t = t[0]
            offsets = 0
        b, c = t[:, 0].long(), t[:, 1].long()
        gxy, gwh, a = t[:, 2:4], t[:, 4:6], t[:, 6].long()
        gij = (gxy - offsets).long()
        gi = gij[:, 0].clamp_(0, nx - 1)
        gj = gij[:, 1].clamp_(0, ny - 1)
        tbox = torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1)
        return b, a, gj, gi, tbox, c, anchors[a]


# ---------------------------------------------------------------- model

def build_model(rep="all"):
    model = ref.Model(0.5, 0.33, NC, rep)
    det = model.model[24]
    with torch.no_grad():
        for mi, s in zip(det.m, ref.STRIDES):  # YOLOv5's Detect bias priors
            b = mi.bias.view(det.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5:5 + NC] += math.log(0.6 / (NC - 0.99999))
    return model


class EMA:
    """An exponential moving average of the weights (YOLOv5's ModelEMA, with
    a shorter ramp for a short run)."""

    def __init__(self, model, rep, decay=0.999, tau=300):
        self.model = build_model(rep)
        self.model.load_state_dict(model.state_dict())
        self.model.eval()
        self.decay, self.tau, self.updates = decay, tau, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        with torch.no_grad():
            msd = model.state_dict()
            for k, v in self.model.state_dict().items():
                if v.dtype.is_floating_point:
                    v.mul_(d).add_(msd[k].detach(), alpha=1 - d)


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith(".weight") and p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def save_weights(model, path, extra):
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    names = "{" + ", ".join(f"{i}: '{n}'" for i, n in enumerate(common.COCO80)) + "}"
    ref.save_safetensors(path, sd, {"generator": "tools/distil/train.py", "names": names, **extra})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", default=os.path.join(common.HERE, "labels", "train.json"))
    ap.add_argument("--out", default=os.path.join(common.WORK, "train"))
    ap.add_argument("--iters", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--min-side", type=float, default=240)
    ap.add_argument("--max-side", type=float, default=720)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--rep", default="all", choices=["all", "downsample", ""],
                    help="which 3x3 convs are RepVGG blocks; '' trains plain yolov5s with the same recipe")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)

    data = load_split(a.labels)
    print(f"{len(data)} pictures, {sum(len(d[1]) for d in data)} labels", file=sys.stderr)
    model = build_model(a.rep)
    model.train()
    ema = EMA(model, a.rep)
    loss_fn = YOLOv5Loss(model.model[24], a.crop)
    opt = torch.optim.Adam(param_groups(model, a.wd), lr=a.lr, betas=(0.937, 0.999))
    start = 0
    ckpt = os.path.join(a.out, "last.pt")
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        start = st["iter"]
        print(f"resumed at iteration {start}", file=sys.stderr)
    log = open(os.path.join(a.out, "log.tsv"), "a")
    t0 = time.time()
    for it in range(start, a.iters):
        lr = a.lr * (it + 1) / a.warmup if it < a.warmup else \
            a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (it - a.warmup) / (a.iters - a.warmup))))
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ts = [], []
        for k, idx in enumerate(rng.integers(0, len(data), a.batch)):
            x, lab = sample(data[idx], rng, a)
            xs.append(x)
            ts.append(torch.cat((torch.full((len(lab), 1), float(k)), lab), 1))
        x, t = torch.stack(xs), torch.cat(ts)
        model(x)
        loss, parts = loss_fn(model.model[24].raw, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        ema.update(model)
        done = it + 1
        if done % 10 == 0 or done == a.iters:
            el = time.time() - t0
            eta = el / (done - start) * (a.iters - done)
            msg = f"{done}\t{lr:.5f}\t{parts[0]:.4f}\t{parts[1]:.4f}\t{parts[2]:.4f}\t{el:.0f}"
            print(f"iter {done}/{a.iters} lr {lr:.5f} box {parts[0]:.4f} obj {parts[1]:.4f} cls {parts[2]:.4f} "
                  f"{el:.0f}s eta {eta:.0f}s", file=sys.stderr, flush=True)
            log.write(msg + "\n")
            log.flush()
        if done % 50 == 0 or done == a.iters:
            torch.save({"model": model.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.updates,
                        "opt": opt.state_dict(), "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                        "iter": done}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
    meta = {"trained_by": "tools/distil/train.py " + " ".join(sys.argv[1:]), "seed": str(a.seed), "rep": a.rep,
            "iters": str(a.iters), "batch": str(a.batch), "crop": str(a.crop)}
    path = os.path.join(a.out, ("repyolov5s" if a.rep else "yolov5s") + "-train.safetensors")
    save_weights(ema.model, path, meta)
    print(f"wrote {path} after {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
