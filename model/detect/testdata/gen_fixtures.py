#!/usr/bin/python3
"""Generate the cross-check fixtures for package model/detect.

Run with Debian's Python (torch 1.13, torchvision 0.14, opencv 4.6):

    /usr/bin/python3 model/detect/testdata/gen_fixtures.py

Three oracles, each a faithful copy of the YOLOv5 v7.0 reference code:
  * nms:       utils/general.py non_max_suppression (torchvision.ops.nms with
               the class-offset trick) and scale_boxes/clip_boxes.
  * letterbox: utils/augmentations.py letterbox(auto=False, scaleup=True),
               i.e. cv2.resize INTER_LINEAR + cv2.copyMakeBorder(114).
  * decode:    models/yolo.py Detect.forward in inference/export mode.

Inputs are stored so that Go can rebuild bit-identical float32 tensors:
NMS predictions are quantised to k/16 pixels and k/65536 scores (exact in
float32) and stored sparsely (4 class slots per row) to keep the file small.
"""
import json
import os

import cv2
import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240601)


def write(name, arr):
    arr = np.ascontiguousarray(arr)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())


# ---------------------------------------------------------------- NMS ----
NC = 80
ROWS = 2000
IMAGES = 3
SLOTS = 4  # class entries stored per row; the other classes are 0


def xywh2xyxy(x):
    y = x.clone()
    y[..., 0] = x[..., 0] - x[..., 2] / 2
    y[..., 1] = x[..., 1] - x[..., 3] / 2
    y[..., 2] = x[..., 0] + x[..., 2] / 2
    y[..., 3] = x[..., 1] + x[..., 3] / 2
    return y


def non_max_suppression(prediction, conf_thres=0.25, iou_thres=0.45, classes=None,
                        agnostic=False, multi_label=False, max_det=300, max_nms=30000):
    # Copy of ultralytics/yolov5 v7.0 utils/general.py (labels/masks/merge/time
    # limit removed; they are off in inference). max_nms is a parameter here so
    # the fixture can exercise the candidate cap.
    bs = prediction.shape[0]
    nc = prediction.shape[2] - 5
    xc = prediction[..., 4] > conf_thres
    max_wh = 7680
    multi_label &= nc > 1
    mi = 5 + nc
    output = [torch.zeros((0, 6))] * bs
    for xi, x in enumerate(prediction):
        x = x[xc[xi]]
        if not x.shape[0]:
            continue
        x[:, 5:] *= x[:, 4:5]
        box = xywh2xyxy(x[:, :4])
        if multi_label:
            i, j = (x[:, 5:mi] > conf_thres).nonzero(as_tuple=False).T
            x = torch.cat((box[i], x[i, 5 + j, None], j[:, None].float()), 1)
        else:
            conf, j = x[:, 5:mi].max(1, keepdim=True)
            x = torch.cat((box, conf, j.float()), 1)[conf.view(-1) > conf_thres]
        if classes is not None:
            x = x[(x[:, 5:6] == torch.tensor(classes)).any(1)]
        n = x.shape[0]
        if not n:
            continue
        x = x[x[:, 4].argsort(descending=True)[:max_nms]]
        c = x[:, 5:6] * (0 if agnostic else max_wh)
        boxes, scores = x[:, :4] + c, x[:, 4]
        i = torchvision.ops.nms(boxes, scores, iou_thres)
        i = i[:max_det]
        output[xi] = x[i]
    return output


def clip_boxes(boxes, shape):
    boxes[..., 0].clamp_(0, shape[1])
    boxes[..., 1].clamp_(0, shape[0])
    boxes[..., 2].clamp_(0, shape[1])
    boxes[..., 3].clamp_(0, shape[0])


def scale_boxes(img1_shape, boxes, img0_shape):
    gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
    pad = (img1_shape[1] - img0_shape[1] * gain) / 2, (img1_shape[0] - img0_shape[0] * gain) / 2
    boxes[..., [0, 2]] -= pad[0]
    boxes[..., [1, 3]] -= pad[1]
    boxes[..., :4] /= gain
    clip_boxes(boxes, img0_shape)
    return boxes


def make_image():
    """Quantised sparse rows: realistic clusters of overlapping boxes."""
    q = np.zeros((ROWS, 5), np.int64)           # cx,cy,w,h in 1/16 px; obj in 1/65536
    cls_id = np.zeros((ROWS, SLOTS), np.int64)
    cls_q = np.zeros((ROWS, SLOTS), np.int64)   # class score in 1/65536
    n_obj = 40
    centres = rng.uniform(20, 620, (n_obj, 2))
    sizes = rng.uniform(8, 300, (n_obj, 2))
    ocls = rng.integers(0, NC, n_obj)
    # Some objects share a class and sit on top of each other (crowds).
    ocls[n_obj // 2:n_obj // 2 + 8] = ocls[0]
    centres[n_obj // 2:n_obj // 2 + 8] = centres[0] + rng.normal(0, 25, (8, 2))
    r = 0
    while r < ROWS:
        if r < 1400:  # rows near an object
            o = rng.integers(0, n_obj)
            cx, cy = centres[o] + rng.normal(0, 0.08, 2) * sizes[o]
            w, h = sizes[o] * rng.uniform(0.8, 1.25, 2)
            obj = rng.uniform(0.05, 0.98)
            main = ocls[o]
            main_s = rng.uniform(0.3, 0.99)
        else:  # background rows, mostly below the default threshold
            cx, cy = rng.uniform(0, 640, 2)
            w, h = rng.uniform(2, 400, 2)
            obj = rng.beta(0.6, 6)
            main = rng.integers(0, NC)
            main_s = rng.uniform(0.0, 0.9)
        q[r, 0] = int(np.clip(cx, -50, 700) * 16)
        q[r, 1] = int(np.clip(cy, -50, 700) * 16)
        q[r, 2] = max(int(w * 16), 1)
        q[r, 3] = max(int(h * 16), 1)
        q[r, 4] = int(obj * 65536)
        others = rng.choice([c for c in range(NC) if c != main], SLOTS - 1, replace=False)
        ids = np.concatenate(([main], others))
        rng.shuffle(ids)
        vals = [int(main_s * 65536) if c == main else int(rng.uniform(0, 0.5) * 65536) for c in ids]
        cls_id[r] = ids
        cls_q[r] = vals
        r += 1
    return q, cls_id, cls_q


def dense(q, cls_id, cls_q):
    x = np.zeros((ROWS, 5 + NC), np.float32)
    x[:, 0:4] = q[:, 0:4].astype(np.float32) / np.float32(16)
    x[:, 4] = q[:, 4].astype(np.float32) / np.float32(65536)
    for s in range(SLOTS):
        x[np.arange(ROWS), 5 + cls_id[:, s]] = cls_q[:, s].astype(np.float32) / np.float32(65536)
    return x


def has_ties(x):
    # torch's argsort and torchvision's sort are not stable; keep every
    # candidate score distinct so the expected order is well defined.
    s = x[:, 5:] * x[:, 4:5]
    s = s[s > 0.0009]
    return len(np.unique(s)) != len(s)


CONFIGS = [
    dict(name="default", conf=0.25, iou=0.45, max_det=300),
    dict(name="agnostic", conf=0.25, iou=0.45, max_det=300, agnostic=True),
    dict(name="eval_multilabel", conf=0.001, iou=0.6, max_det=300, multi_label=True),
    dict(name="classes", conf=0.25, iou=0.45, max_det=300, classes=[0, 3, 17, 42]),
    dict(name="max_det_10", conf=0.25, iou=0.45, max_det=10),
    dict(name="max_nms_150", conf=0.1, iou=0.5, max_det=300, max_nms=150),
    dict(name="iou_0", conf=0.3, iou=0.0, max_det=300),
]

images = []
quant = []
for _ in range(IMAGES):
    while True:
        q, cid, cq = make_image()
        x = dense(q, cid, cq)
        if not has_ties(x):
            break
    images.append(x)
    quant.append((q, cid, cq))
pred = torch.from_numpy(np.stack(images))

# Sparse quantised input, 13 little-endian 16-bit fields per row:
# cx, cy, w, h (1/16 px), obj (1/65536), 4 class ids, 4 class scores (1/65536).
rec = np.zeros((IMAGES, ROWS, 5 + 2 * SLOTS), np.int32)
for i, (q, cid, cq) in enumerate(quant):
    rec[i, :, 0:5] = q
    rec[i, :, 5:5 + SLOTS] = cid
    rec[i, :, 5 + SLOTS:] = cq
assert rec[..., 0:2].min() >= -32768 and rec[..., 0:2].max() < 32768
assert rec[..., 2:].min() >= 0 and rec[..., 2:].max() < 65536
# cx, cy are int16 (two's complement); every other field is uint16.
write("nms_input.bin", (rec & 0xFFFF).astype(np.uint16))

expected = []
meta_cfg = []
offset = 0
for cfg in CONFIGS:
    out = non_max_suppression(pred.clone(), cfg["conf"], cfg["iou"], classes=cfg.get("classes"),
                              agnostic=cfg.get("agnostic", False), multi_label=cfg.get("multi_label", False),
                              max_det=cfg["max_det"], max_nms=cfg.get("max_nms", 30000))
    counts = []
    for o in out:
        expected.append(o.numpy().astype(np.float32))
        counts.append(int(o.shape[0]))
    meta_cfg.append(dict(cfg, counts=counts, offset=offset))
    offset += sum(counts)
write("nms_expected.bin", np.concatenate(expected).reshape(-1))

# scale_boxes for image 0 / default config: model input 640x640, original 1280x720
# and a tall 500x900 original.
scaled = []
scale_meta = []
for (w0, h0) in [(1280, 720), (500, 900)]:
    d = non_max_suppression(pred[0:1].clone())[0]
    b = scale_boxes((640, 640), d[:, :4].clone(), (h0, w0))
    scaled.append(b.numpy().astype(np.float32))
    scale_meta.append(dict(w=w0, h=h0, count=int(b.shape[0])))
write("scale_expected.bin", np.concatenate(scaled).reshape(-1))

# ----------------------------------------------------------- letterbox ----


def letterbox(im, new_shape=(640, 640), color=(114, 114, 114)):
    # ultralytics letterbox with auto=False, scaleFill=False, scaleup=True.
    shape = im.shape[:2]
    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))
    dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
    dw /= 2
    dh /= 2
    if shape[::-1] != new_unpad:
        im = cv2.resize(im, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return im, r, (dw, dh), (top, left), new_unpad


cap = cv2.VideoCapture(os.path.expanduser("~/.cache/vidpipe/videos/vtest.avi"))
ok, frame = cap.read()
assert ok, "read vtest.avi"
crop = frame[260:308, 330:394]  # 64x48 BGR crop with people in it

srcs = {
    "rand97x61": rng.integers(0, 256, (61, 97, 3), dtype=np.uint8),
    "rand61x97": rng.integers(0, 256, (97, 61, 3), dtype=np.uint8),
    "rand128x72": rng.integers(0, 256, (72, 128, 3), dtype=np.uint8),  # exact 2x: cv2 takes its INTER_AREA path
    "vtest64x48": crop,  # BGR from cv2
}
cases = [("rand97x61", 64, 64), ("rand61x97", 64, 64), ("rand128x72", 64, 64),
         ("vtest64x48", 64, 64), ("vtest64x48", 96, 96), ("vtest64x48", 96, 64)]
blob = bytearray()
lb_meta = []
src_off = {}
for name, im in srcs.items():
    src_off[name] = len(blob)
    blob += np.ascontiguousarray(im[:, :, ::-1]).tobytes()  # stored as packed RGB
for name, dw_, dh_ in cases:
    im = srcs[name]  # cv2 works on BGR, as ultralytics does
    out, r, (dw, dh), (top, left), new_unpad = letterbox(im, (dh_, dw_))
    assert out.shape == (dh_, dw_, 3), out.shape
    chw = np.ascontiguousarray(out[:, :, ::-1].transpose(2, 0, 1))  # BGR->RGB, HWC->CHW
    lb_meta.append(dict(src=name, src_w=im.shape[1], src_h=im.shape[0], src_offset=src_off[name],
                        dst_w=dw_, dst_h=dh_, gain=r, dw=dw, dh=dh, top=top, left=left,
                        new_w=new_unpad[0], new_h=new_unpad[1], out_offset=len(blob)))
    blob += chw.tobytes()
with open(os.path.join(HERE, "letterbox.bin"), "wb") as f:
    f.write(bytes(blob))

# -------------------------------------------------------------- decode ----
# Detect.forward (models/yolo.py, v7.0) in inference/export mode for a tiny
# head: nc=3, input 96x64 (w x h), default yolov5s anchors.
DNC = 3
NA = 3
IN_W, IN_H = 96, 64
STRIDES = [8, 16, 32]
ANCHORS_PX = torch.tensor([[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                           [116, 90, 156, 198, 373, 326]], dtype=torch.float32).view(3, NA, 2)
no = DNC + 5
anchors = ANCHORS_PX / torch.tensor(STRIDES, dtype=torch.float32).view(-1, 1, 1)  # as Model.__init__


def make_grid(nx, ny, i):
    t = anchors[i].dtype
    shape = 1, NA, ny, nx, 2
    y, x = torch.arange(ny, dtype=t), torch.arange(nx, dtype=t)
    yv, xv = torch.meshgrid(y, x, indexing="ij")
    grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
    anchor_grid = (anchors[i] * STRIDES[i]).view((1, NA, 1, 1, 2)).expand(shape)
    return grid, anchor_grid


heads = []
z = []
for i, s in enumerate(STRIDES):
    ny, nx = IN_H // s, IN_W // s
    raw = torch.from_numpy(rng.normal(0, 2.5, (1, NA * no, ny, nx)).astype(np.float32))
    heads.append(raw)
    bs = 1
    xi = raw.view(bs, NA, no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
    grid, anchor_grid = make_grid(nx, ny, i)
    xy, wh, conf = xi.sigmoid().split((2, 2, DNC + 1), 4)
    xy = (xy * 2 + grid) * STRIDES[i]
    wh = (wh * 2) ** 2 * anchor_grid
    y = torch.cat((xy, wh, conf), 4)
    z.append(y.view(bs, NA * nx * ny, no))
decoded = torch.cat(z, 1)
write("decode_heads.bin", torch.cat([h.reshape(-1) for h in heads]).numpy().astype(np.float32))
write("decode_expected.bin", decoded.reshape(-1).numpy().astype(np.float32))

# COCO names: torchvision's 91-id list without the gaps equals YOLOv5's
# data/coco.yaml order.
from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights  # noqa: E402

coco80 = [c for c in FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"] if c not in ("__background__", "N/A")]
assert len(coco80) == 80

meta = dict(
    coco80=coco80,
    nms=dict(images=IMAGES, rows=ROWS, nc=NC, slots=SLOTS, configs=meta_cfg, scale=scale_meta),
    letterbox=lb_meta,
    decode=dict(nc=DNC, in_w=IN_W, in_h=IN_H, strides=STRIDES, rows=int(decoded.shape[1])),
)
with open(os.path.join(HERE, "fixtures.json"), "w") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
print("nms dets per config:", [(c["name"], c["counts"]) for c in meta_cfg])
print("decode rows:", decoded.shape)
