#!/usr/bin/python3
"""Generate the torch oracle for package model/yolo (run with /usr/bin/python3).

It builds a small YOLOv5s-topology model in plain torch, written after the
ultralytics v7.0 modules (Conv, Bottleneck, C3, SPPF, Detect in export mode)
and the YOLOv5-Lite RepVGGBlock (rbr_dense / rbr_1x1 / rbr_identity), so the
state_dict names match those checkpoints. BN statistics are randomised so a
wrong eps, a swapped mean/var or a missed branch shows in the output.

Writes, next to this script:
  repyolo_small.safetensors   state_dict (float32), hand-written safetensors
  repyolo_small_io.safetensors  "images" input, torch "output0" and the raw
                                Detect conv outputs "raw0".."raw2"
and, as fixtures for the fuser, into ../../fuse/testdata/:
  torch_repyolo_small_train.onnx   opset 13, BN and all branches kept
  torch_repyolo_small_folded.onnx  opset 13, eval export with constant folding
The config must match reference_test.go (smallConfig).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FUSE_TESTDATA = os.path.join(HERE, "..", "..", "fuse", "testdata")

WIDTH = 0.03125
DEPTH = 0.33
IMGSZ = 64
NC = 3
BATCH = 2
REP = "all"  # "", "downsample" or "all"
SEED = 20240601
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
STRIDES = [8, 16, 32]


def make_divisible(x, divisor=8):
    return math.ceil(x / divisor) * divisor


def autopad(k, p=None):
    return k // 2 if p is None else p


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p), bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def conv_bn(c1, c2, k, s, p):
    m = nn.Sequential()
    m.add_module("conv", nn.Conv2d(c1, c2, k, s, p, bias=False))
    m.add_module("bn", nn.BatchNorm2d(c2))
    return m


class RepVGGBlock(nn.Module):
    """YOLOv5-Lite's RepVGGBlock in training form (deploy=False, no SE)."""

    def __init__(self, c1, c2, k=3, s=1):
        super().__init__()
        self.act = nn.SiLU()
        self.rbr_identity = nn.BatchNorm2d(c1) if c1 == c2 and s == 1 else None
        self.rbr_dense = conv_bn(c1, c2, k, s, k // 2)
        self.rbr_1x1 = conv_bn(c1, c2, 1, s, 0)

    def forward(self, x):
        id_out = 0 if self.rbr_identity is None else self.rbr_identity(x)
        return self.act(self.rbr_dense(x) + self.rbr_1x1(x) + id_out)


def conv3(c1, c2, s, rep):
    return RepVGGBlock(c1, c2, 3, s) if rep else Conv(c1, c2, 3, s)


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, rep=False):
        super().__init__()
        self.cv1 = Conv(c1, c2, 1, 1)
        self.cv2 = conv3(c2, c2, 1, rep)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, rep=False):
        super().__init__()
        c_ = int(c2 * 0.5)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, rep) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, x):
        return torch.cat(x, 1)


class Detect(nn.Module):
    """ultralytics v7.0 Detect, export-mode decode only."""

    def __init__(self, nc, ch):
        super().__init__()
        self.nc, self.no, self.nl, self.na = nc, nc + 5, 3, 3
        self.register_buffer("anchors", torch.tensor(ANCHORS).float().view(3, -1, 2) / torch.tensor(STRIDES).float().view(-1, 1, 1))
        self.stride = torch.tensor(STRIDES).float()
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)

    def forward(self, x):
        z, self.raw = [], []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            self.raw.append(x[i])  # head logits before decode, for a tighter comparison
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            grid, anchor_grid = self._make_grid(nx, ny, i)
            xy, wh, conf = x[i].sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + grid) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor_grid
            y = torch.cat((xy, wh, conf), 4)
            z.append(y.view(bs, self.na * nx * ny, self.no))
        return torch.cat(z, 1)

    def _make_grid(self, nx, ny, i):
        shape = 1, self.na, ny, nx, 2
        y, x = torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32)
        yv, xv = torch.meshgrid(y, x, indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid


class Model(nn.Module):
    def __init__(self, width, depth, nc, rep):
        super().__init__()
        ch = lambda c: make_divisible(c * width, 8)
        n = lambda k: max(round(k * depth), 1) if k > 1 else k
        rd = rep in ("downsample", "all")  # stride-2 3x3 convs
        rb = rep == "all"  # bottleneck 3x3 convs
        c = [ch(x) for x in (64, 128, 256, 512, 1024)]
        layers = [
            (-1, Conv(3, c[0], 6, 2, 2)),                       # 0
            (-1, conv3(c[0], c[1], 2, rd)),                     # 1
            (-1, C3(c[1], c[1], n(3), True, rb)),               # 2
            (-1, conv3(c[1], c[2], 2, rd)),                     # 3
            (-1, C3(c[2], c[2], n(6), True, rb)),               # 4
            (-1, conv3(c[2], c[3], 2, rd)),                     # 5
            (-1, C3(c[3], c[3], n(9), True, rb)),               # 6
            (-1, conv3(c[3], c[4], 2, rd)),                     # 7
            (-1, C3(c[4], c[4], n(3), True, rb)),               # 8
            (-1, SPPF(c[4], c[4], 5)),                          # 9
            (-1, Conv(c[4], c[3], 1, 1)),                       # 10
            (-1, nn.Upsample(None, 2, "nearest")),              # 11
            ([-1, 6], Concat()),                                # 12
            (-1, C3(2 * c[3], c[3], n(3), False, rb)),          # 13
            (-1, Conv(c[3], c[2], 1, 1)),                       # 14
            (-1, nn.Upsample(None, 2, "nearest")),              # 15
            ([-1, 4], Concat()),                                # 16
            (-1, C3(2 * c[2], c[2], n(3), False, rb)),          # 17
            (-1, conv3(c[2], c[2], 2, rd)),                     # 18
            ([-1, 14], Concat()),                               # 19
            (-1, C3(2 * c[2], c[3], n(3), False, rb)),          # 20
            (-1, conv3(c[3], c[3], 2, rd)),                     # 21
            ([-1, 10], Concat()),                               # 22
            (-1, C3(2 * c[3], c[4], n(3), False, rb)),          # 23
            ([17, 20, 23], Detect(nc, (c[2], c[3], c[4]))),     # 24
        ]
        self.froms = [f for f, _ in layers]
        self.model = nn.Sequential(*(m for _, m in layers))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03  # as ultralytics initialize_weights

    def forward(self, x):
        y = []
        for f, m in zip(self.froms, self.model):
            if f != -1:
                x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
            x = m(x)
            y.append(x)
        return x


def randomise(model, g):
    """Weights with spread outputs: kaiming-uniform convs, random BN stats, Detect prior biases."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                b = math.sqrt(6.0 / fan_in)
                m.weight.uniform_(-b, b, generator=g)
                if m.bias is not None:
                    bb = 1 / math.sqrt(fan_in)
                    m.bias.uniform_(-bb, bb, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
        det = model.model[24]
        for mi, s in zip(det.m, STRIDES):
            b = mi.bias.view(det.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5:5 + det.nc] += math.log(0.6 / (det.nc - 0.99999))


def save_safetensors(path, tensors, extra_meta=None):
    """Write the safetensors format by hand: u64 LE header size, JSON header, raw data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt", "generator": "model/yolo/testdata/" + os.path.basename(sys.argv[0]),
                              **(extra_meta or {})}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format aligns data to 8 bytes with trailing spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return os.path.getsize(path)


def export(model, x, path, **kw):
    torch.onnx.export(model, x, path, opset_version=13, input_names=["images"], output_names=["output0"],
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, **kw)
    size = os.path.getsize(path)
    if size >= 400 * 1024:
        os.remove(path)
        print(f"{path}: {size} bytes is over 400 KB, not kept", file=sys.stderr)
        return 0
    return size


def main():
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    model = Model(WIDTH, DEPTH, NC, REP)
    randomise(model, g)
    model.eval()
    # The input is stored as F16 to halve its size, so round it to F16 values first.
    x = torch.rand(BATCH, 3, IMGSZ, IMGSZ, generator=g).half().float()
    with torch.no_grad():
        y = model(x)
    n_params = sum(p.numel() for p in model.parameters())
    conf = y[..., 4:]
    spread = ((conf > 0.01) & (conf < 0.99)).float().mean().item()
    print(f"params {n_params}, output0 {tuple(y.shape)}, obj/cls in (0.01,0.99): {spread:.3f}, "
          f"obj min/mean/max {y[..., 4].min():.4f}/{y[..., 4].mean():.4f}/{y[..., 4].max():.4f}")

    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    sizes = {
        "repyolo_small.safetensors": save_safetensors(os.path.join(HERE, "repyolo_small.safetensors"), sd),
        "repyolo_small_io.safetensors": save_safetensors(os.path.join(HERE, "repyolo_small_io.safetensors"),
                                                         {"images": x.half(), "output0": y,
                                                          **{f"raw{i}": r for i, r in enumerate(model.model[24].raw)}}),
    }
    os.makedirs(FUSE_TESTDATA, exist_ok=True)
    # PRESERVE with the model in eval mode skips the exporter's eval-mode
    # Conv+BN peephole, so BatchNormalization nodes and all rep branches stay.
    sizes["torch_repyolo_small_train.onnx"] = export(
        model, x, os.path.join(FUSE_TESTDATA, "torch_repyolo_small_train.onnx"),
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    sizes["torch_repyolo_small_folded.onnx"] = export(
        model, x, os.path.join(FUSE_TESTDATA, "torch_repyolo_small_folded.onnx"),
        training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)
    for k, v in sizes.items():
        print(f"{k}: {v} bytes")


if __name__ == "__main__":
    main()
