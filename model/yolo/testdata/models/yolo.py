"""vidpipe's torch reference Model: builds a YOLOv5 model file (dict from
YAML) the way YOLOv5's parse_model does, with the Detect head in export
mode. Written for vidpipe's tests; pickles as models.yolo.Model."""
import math
from copy import deepcopy

import torch
import torch.nn as nn

from models.common import (C3, SPP, SPPF, Bottleneck, BottleneckCSP, C3RepVGG, Concat, Conv, Focus,
                           RepVGGBlock)


def make_divisible(x, divisor=8):
    return math.ceil(x / divisor) * divisor


class Detect(nn.Module):
    stride = None

    def __init__(self, nc=80, anchors=(), ch=()):
        super().__init__()
        self.nc, self.no = nc, nc + 5
        self.nl, self.na = len(anchors), len(anchors[0]) // 2
        self.grid = [torch.zeros(1)] * self.nl
        a = torch.tensor(anchors).float().view(self.nl, -1, 2)
        self.register_buffer("anchors", a)  # pixels here; divided by stride once strides are known
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.raw = []

    def forward(self, x):
        z, self.raw = [], []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            self.raw.append(x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if self.stride is None:  # the stride-finding pass
                continue
            grid, anchor_grid = self._make_grid(nx, ny, i)
            xy, wh, conf = x[i].sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + grid) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor_grid
            z.append(torch.cat((xy, wh, conf), 4).view(bs, self.na * nx * ny, self.no))
        return x if self.stride is None else torch.cat(z, 1)

    def _make_grid(self, nx, ny, i):
        shape = 1, self.na, ny, nx, 2
        y, x = torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32)
        yv, xv = torch.meshgrid(y, x, indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid


MODULES = {"Conv": Conv, "Focus": Focus, "Bottleneck": Bottleneck, "BottleneckCSP": BottleneckCSP, "C3": C3,
           "C3RepVGG": C3RepVGG, "SPP": SPP, "SPPF": SPPF, "RepVGGBlock": RepVGGBlock, "Concat": Concat,
           "Upsample": nn.Upsample, "Detect": Detect}


def module(name):
    for p in ("torch.nn.", "nn.", "models.common.", "common."):
        if name.startswith(p):
            name = name[len(p):]
    return MODULES[name]


def parse_model(d, ch):
    anchors, nc, gd, gw = d["anchors"], d["nc"], d["depth_multiple"], d["width_multiple"]
    na = (len(anchors[0]) // 2) if isinstance(anchors, list) else anchors
    no = na * (nc + 5)
    names = {"nc": nc, "anchors": anchors, "None": None, "True": True, "False": False}
    layers, save, c2 = [], [], ch[-1]
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):
        m = module(m)
        args = [names.get(a, a) if isinstance(a, str) else a for a in args]
        n = max(round(n * gd), 1) if n > 1 else n
        if m in (Conv, Focus, Bottleneck, BottleneckCSP, C3, C3RepVGG, SPP, SPPF, RepVGGBlock):
            c1, c2 = ch[f], args[0]
            if c2 != no:
                c2 = make_divisible(c2 * gw, 8)
            args = [c1, c2, *args[1:]]
            if m in (BottleneckCSP, C3, C3RepVGG):
                args.insert(2, n)
                n = 1
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        elif m is Detect:
            args.append([ch[x] for x in f])
            if isinstance(args[1], int):  # a count: placeholders until training sets them
                args[1] = [list(range(args[1] * 2))] * len(f)
        else:
            c2 = ch[f]
        m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
        m_.i, m_.f, m_.type, m_.np = i, f, "models.common." + m.__name__, sum(x.numel() for x in m_.parameters())
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(m_)
        if i == 0:
            ch = []
        ch.append(c2)
    return nn.Sequential(*layers), sorted(save)


class Model(nn.Module):
    def __init__(self, cfg, ch=3, nc=None):
        super().__init__()
        self.yaml = deepcopy(cfg)
        if nc and nc != self.yaml["nc"]:
            self.yaml["nc"] = nc
        self.model, self.save = parse_model(deepcopy(self.yaml), ch=[ch])
        self.names = [str(i) for i in range(self.yaml["nc"])]
        m = self.model[-1]
        s = 256
        m.stride = None
        m.stride = torch.tensor([s / x.shape[-2] for x in self.forward(torch.zeros(1, ch, s, s))])
        a = m.anchors.prod(-1).mean(-1).view(-1)  # check_anchor_order, on pixels
        da, ds = a[-1] - a[0], m.stride[-1] - m.stride[0]
        if da and da.sign() != ds.sign():
            m.anchors[:] = m.anchors.flip(0)
        m.anchors /= m.stride.view(-1, 1, 1)
        self.stride = m.stride
        for b in self.modules():
            if isinstance(b, nn.BatchNorm2d):
                b.eps, b.momentum = d_eps(self.yaml), 0.03

    def forward(self, x):
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


def d_eps(d):
    return d.get("bn_eps", 1e-3)
