#!/usr/bin/python3
"""Generate the output-layout fixtures of package model/layout.

Run with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 model/layout/testdata/gen_fixtures.py

Each model is a small torch module exported with torch.onnx.export, in one of
the layouts people export (ultralytics YOLOv5 and YOLOv8/YOLO11, YOLOv5-Lite
raw heads), or in a layout vidpipe must refuse. The detection models read
average-pooled pixels with 1x1 convolutions, so that they are a few KB, yet
give boxes, scores and classes that vary over the image.

The reference decode is the ultralytics one, written here from its
definition: YOLOv5 Detect (sigmoid, xy = (2s - 0.5 + grid) * stride,
wh = (2s)^2 * anchor), YOLOv5 non_max_suppression (obj > conf, score =
obj * cls) and YOLOv8 non_max_suppression (best class > conf, no
objectness), both with class-offset NMS (boxes + cls * 7680, torchvision
nms, suppressed when IoU > iou) and max_det. expected.json holds, per
fixture and threshold, the detections [x1, y1, x2, y2, conf, cls] in input
pixels for the input image below.

Input image, for any size: NCHW pixels v / 255 for v in a linear congruential
sequence: s = (s * 1103515245 + 12345) mod 2^31 from s = 1, v = (s >> 16) mod 256.
"""
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torchvision
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_WH = 7680
STRIDES = (8, 16, 32)
NAMES80 = str({i: f"class{i}" for i in range(80)})


def image(h, w):
    state, v = 1, []
    for _ in range(3 * h * w):
        state = (state * 1103515245 + 12345) % (1 << 31)
        v.append((state >> 16) % 256)
    return (torch.tensor(v, dtype=torch.float32) / 255.0).view(1, 3, h, w)


def grid(ny, nx, dtype):
    gy = torch.arange(ny, dtype=dtype).view(ny, 1).expand(ny, nx)
    gx = torch.arange(nx, dtype=dtype).view(1, nx).expand(ny, nx)
    return gx, gy


class Levels(nn.Module):
    """Per stride: average-pool the image to the grid, then a 1x1 conv."""

    def __init__(self, cout, seed, cls_bias=None, cls_from=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.pools = nn.ModuleList(nn.AvgPool2d(s, s) for s in STRIDES)
        self.convs = nn.ModuleList(nn.Conv2d(3, cout, 1) for _ in STRIDES)
        with torch.no_grad():
            for conv in self.convs:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 1.5)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.5)
                if cls_bias is not None:
                    conv.bias[cls_from:] += cls_bias

    def heads(self, x):
        return [conv(pool(x)) for pool, conv in zip(self.pools, self.convs)]


class V8(nn.Module):
    """YOLOv8/YOLO11 detect output [N, 4+nc, A]: xywh in pixels, sigmoid classes."""

    def __init__(self, nc=80, seed=8, transpose=False):
        super().__init__()
        self.nc, self.transpose = nc, transpose
        self.levels = Levels(4 + nc, seed, cls_bias=-1.5, cls_from=4)

    def forward(self, x):
        outs = []
        for t, s in zip(self.levels.heads(x), STRIDES):
            ny, nx = t.shape[2], t.shape[3]
            gx, gy = grid(ny, nx, t.dtype)
            cx = (torch.sigmoid(t[:, 0]) * 2 - 0.5 + gx) * s
            cy = (torch.sigmoid(t[:, 1]) * 2 - 0.5 + gy) * s
            w = torch.exp(t[:, 2].clamp(-3, 3)) * s * 1.5
            h = torch.exp(t[:, 3].clamp(-3, 3)) * s * 1.5
            box = torch.stack((cx, cy, w, h), 1)
            cls = torch.sigmoid(t[:, 4:])
            outs.append(torch.cat((box, cls), 1).flatten(2))
        y = torch.cat(outs, 2)
        return y.transpose(1, 2) if self.transpose else y


ANCHORS_64 = [[3, 4, 5, 8, 9, 6], [8, 15, 16, 11, 15, 30], [29, 22, 39, 50, 93, 81]]
DEFAULT_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


class Raw(nn.Module):
    """YOLOv5 Detect convolutions, before sigmoid and decode: [N,3,ny,nx,5+nc]
    (permuted, YOLOv5-Lite's export) or [N,3*(5+nc),ny,nx] (conv); with
    decoded=True also YOLOv5's output0 [N, A, 5+nc] first (ultralytics
    exports that keep the raw heads)."""

    def __init__(self, nc=2, seed=5, permuted=True, decoded=False, anchors=ANCHORS_64):
        super().__init__()
        self.nc, self.no, self.permuted, self.decoded = nc, 5 + nc, permuted, decoded
        self.anchors = anchors
        self.levels = Levels(3 * (5 + nc), seed)
        with torch.no_grad():
            for conv in self.levels.convs:
                b = conv.bias.view(3, 5 + nc)
                b[:, 4] -= 1.0  # fewer objects than cells

    def forward(self, x):
        heads = [t.view(t.shape[0], 3, self.no, t.shape[2], t.shape[3]).permute(0, 1, 3, 4, 2).contiguous()
                 for t in self.levels.heads(x)]
        raw = heads if self.permuted else [h.permute(0, 1, 4, 2, 3).reshape(h.shape[0], 3 * self.no, h.shape[2], h.shape[3])
                                           for h in heads]
        if not self.decoded:
            return tuple(raw)
        return (decode_v5(heads, self.anchors),) + tuple(raw)


def decode_v5(heads, anchors):
    """YOLOv5 Detect.forward in export mode, on permuted heads."""
    z = []
    for i, h in enumerate(heads):
        n, na, ny, nx, no = h.shape
        s = STRIDES[i]
        gx, gy = grid(ny, nx, h.dtype)
        g = torch.stack((gx, gy), -1).view(1, 1, ny, nx, 2) - 0.5
        a = torch.tensor(anchors[i], dtype=h.dtype).view(1, na, 1, 1, 2)
        y = h.sigmoid()
        xy = (y[..., :2] * 2 + g) * s
        wh = (y[..., 2:4] * 2) ** 2 * a
        z.append(torch.cat((xy, wh, y[..., 4:]), -1).view(n, -1, no))
    return torch.cat(z, 1)


def xywh2xyxy(b):
    return torch.stack((b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2), 1)


def nms_common(box, cls, conf, iou, max_det):
    score, j = cls.max(1)
    keep = score > conf
    box, score, j = box[keep], score[keep], j[keep]
    order = score.argsort(descending=True)[:30000]
    box, score, j = box[order], score[order], j[order]
    kept = torchvision.ops.nms(box + j[:, None].float() * MAX_WH, score, iou)[:max_det]
    return [[*box[k].tolist(), score[k].item(), int(j[k])] for k in kept]


def nms_v5(pred, conf, iou, max_det=300):
    """ultralytics/yolov5 non_max_suppression for one image [A, 5+nc]."""
    x = pred[pred[:, 4] > conf]
    return nms_common(xywh2xyxy(x[:, :4]), x[:, 5:] * x[:, 4:5], conf, iou, max_det)


def nms_v8(pred, conf, iou, max_det=300):
    """ultralytics (v8) non_max_suppression for one image [4+nc, A]."""
    x = pred.transpose(0, 1)
    x = x[x[:, 4:].amax(1) > conf]
    return nms_common(xywh2xyxy(x[:, :4]), x[:, 4:], conf, iou, max_det)


def export(module, name, size, out_names, metadata=None, dynamic=False):
    path = os.path.join(HERE, name)
    x = image(*size) if isinstance(size, tuple) else image(size, size)
    axes = None
    if dynamic:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        axes.update({o: {0: "batch", 2: "anchors"} for o in out_names})
    torch.onnx.export(module.eval(), x, path, opset_version=13, input_names=["images"],
                      output_names=out_names, dynamic_axes=axes, do_constant_folding=True)
    m = onnx.load(path)
    for k, v in (metadata or {}).items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, path)
    return m


def to_float16(src, dst):
    """Converts a float32 model to FLOAT16 throughout, as ultralytics --half
    exports are: weights, constants, input and outputs."""
    m = onnx.load(os.path.join(HERE, src))
    g = m.graph
    for i, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            g.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
            if n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(HERE, dst))


def rounded(v):
    """Rounds floats to 1e-5: the tests compare within 1e-3."""
    if isinstance(v, float):
        return round(v, 5)
    if isinstance(v, list):
        return [rounded(e) for e in v]
    if isinstance(v, dict):
        return {k: rounded(e) for k, e in v.items()}
    return v


def main():
    torch.manual_seed(0)
    expected = {}
    thresholds = [(0.25, 0.45), (0.05, 0.6)]

    # YOLOv8 [N, 84, A] at 64x64: A = 64 + 16 + 4 = 84.
    v8 = V8()
    export(v8, "v8.onnx", 64, ["output0"], {"stride": "32", "names": NAMES80})
    with torch.no_grad():
        out = v8(image(64, 64))[0]
    expected["v8.onnx"] = {"size": 64, "runs": [
        {"conf": c, "iou": i, "dets": nms_v8(out, c, i)} for c, i in thresholds]}

    # The same model, FLOAT16 in and out; the reference is the float32 one.
    to_float16("v8.onnx", "v8_fp16.onnx")

    # A dynamic export (symbolic batch, height, width) run at 96.
    export(V8(), "v8_dynamic.onnx", 64, ["output0"], {"stride": "32", "names": NAMES80}, dynamic=True)
    with torch.no_grad():
        out = v8(image(96, 96))[0]
    expected["v8_dynamic.onnx"] = {"size": 96, "runs": [
        {"conf": c, "iou": i, "dets": nms_v8(out, c, i)} for c, i in thresholds]}

    # Raw heads, permuted [N,3,ny,nx,7], with anchors metadata.
    raw = Raw()
    export(raw, "raw_heads.onnx", 64, ["p3", "p4", "p5"],
           {"anchors": json.dumps(ANCHORS_64), "names": str({0: "cat", 1: "dog"})})
    with torch.no_grad():
        pred = decode_v5(list(raw(image(64, 64))), ANCHORS_64)[0]
    expected["raw_heads.onnx"] = {"size": 64, "runs": [
        {"conf": c, "iou": i, "dets": nms_v5(pred, c, i)} for c, i in thresholds]}

    # Raw heads as the convs give them, [N,21,ny,nx], no metadata: YOLOv5's
    # default anchors.
    conv = Raw(seed=6, permuted=False)
    export(conv, "raw_heads_conv.onnx", 64, ["c3", "c4", "c5"])
    with torch.no_grad():
        heads = [h.view(1, 3, 7, h.shape[2], h.shape[3]).permute(0, 1, 3, 4, 2) for h in conv(image(64, 64))]
        pred = decode_v5(heads, DEFAULT_ANCHORS)[0]
    expected["raw_heads_conv.onnx"] = {"size": 64, "runs": [
        {"conf": c, "iou": i, "dets": nms_v5(pred, c, i)} for c, i in thresholds]}

    # YOLOv5 output0 [N, 252, 7] with its three raw heads as extra outputs.
    extra = Raw(seed=7, decoded=True)
    export(extra, "v5_extra_outputs.onnx", 64, ["output0", "onnx::raw3", "onnx::raw4", "onnx::raw5"],
           {"stride": "32", "names": str({0: "cat", 1: "dog"})})
    with torch.no_grad():
        pred = extra(image(64, 64))[0][0]
    expected["v5_extra_outputs.onnx"] = {"size": 64, "runs": [
        {"conf": c, "iou": i, "dets": nms_v5(pred, c, i)} for c, i in thresholds]}

    # Refused layouts.
    # [N, A, 84] at 96x96 (A = 189) with 80 names: neither 5+79 classes with
    # 3 anchors per cell (567 rows) nor [N, 4+nc, A].
    export(V8(transpose=True), "refuse_v8_transposed.onnx", 96, ["output0"], {"names": NAMES80})
    # A segmentation-like model: output0 [N, 84, 84] and mask prototypes.
    class Seg(nn.Module):
        def __init__(self):
            super().__init__()
            self.det, self.proto = V8(), nn.Conv2d(3, 32, 1)

        def forward(self, x):
            return self.det(x), self.proto(nn.functional.avg_pool2d(x, 4))
    export(Seg(), "refuse_two_outputs.onnx", 64, ["output0", "output1"], {"names": NAMES80})
    # One 4-D output: a single raw conv head.
    class OneHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 255, 1)

        def forward(self, x):
            return self.conv(nn.functional.avg_pool2d(x, 8))
    export(OneHead(), "refuse_4d_output.onnx", 64, ["output0"])
    # YOLOv8 layout with 80 classes, names for 3.
    export(V8(), "refuse_names_mismatch.onnx", 64, ["output0"], {"names": str({0: "a", 1: "b", 2: "c"})})
    # INT64 output: the best class per anchor.
    class ArgMax(nn.Module):
        def __init__(self):
            super().__init__()
            self.det = V8()

        def forward(self, x):
            return self.det(x)[:, 4:].argmax(1)
    export(ArgMax(), "refuse_int64_output.onnx", 64, ["output0"])
    # A rectangular input, 64 high and 96 wide.
    export(V8(), "refuse_rectangular.onnx", (64, 96), ["output0"], {"names": NAMES80})

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(rounded(expected), f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
