#!/usr/bin/python3
"""Generate the torch oracle for model files (run with /usr/bin/python3).

Builds vidpipe's built-in model files (../models/*.yaml) in torch with the
reference package models/ (a parse_model of our own, upstream module names
and state_dict names), at small widths, with random weights, random BN
statistics and anchors that differ from the file's (as AutoAnchor leaves
them), and writes, next to this script:

  seed_small.safetensors      repyolov5s-v5 (v5.0: Focus, SPP, RepVGG), float32 state_dict
                              with model.24.anchors and class names in __metadata__
  seed_small_io.safetensors   "images" (F16), torch "output0", raw Detect logits "raw0".."raw2",
                              and "output0_half": output0 from the float16-rounded weights
  seed_small_half.safetensors the float16 weights the checkpoint holds (F16)
  seed_small_ckpt.pt          torch.save({'model': model.half(), ...}) as YOLOv5 saves checkpoints
  seed_small_state.pt         torch.save(model.state_dict()), float32
  v6_small_*                  the same for yolov5s.yaml (v6.0 topology)

Every case must match SMALL in modelfile_test.go.
"""
import math
import os
import sys
from copy import deepcopy

import torch
import torch.nn as nn
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the models package, so pickles name models.yolo.Model

from gen_reference import save_safetensors  # noqa: E402
from models.yolo import Detect, Model  # noqa: E402

IMGSZ, BATCH, SEED = 64, 2, 20261203
NAMES = ["ball", "cup", "it's a dog"]
# Pixels, per level; none is a default anchor, and all fit a 64 px input.
ANCHORS = [[4, 5, 7, 11, 12, 8], [14, 24, 22, 17, 25, 40], [38, 30, 45, 52, 60, 44]]
CASES = [
    # (prefix, model file, width_multiple or None for the file's, checkpoints too)
    ("seed_small", os.path.join(HERE, "..", "models", "repyolov5s-v5.yaml"), 0.0625, True),
    ("v6_small", os.path.join(HERE, "..", "models", "yolov5s.yaml"), 0.03125, True),
    ("mixed_small", os.path.join(HERE, "mixed.yaml"), None, False),
]


def randomise(model, g):
    """Kaiming-uniform convs, random BN statistics, Detect prior biases."""
    with torch.no_grad():
        for m in model.modules():
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
                m.num_batches_tracked.fill_(1000)
        det = model.model[-1]
        for mi, s in zip(det.m, det.stride):
            b = mi.bias.view(det.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5:5 + det.nc] += math.log(0.6 / (det.nc - 0.99999))
        # As AutoAnchor leaves them: in grid units, not the file's.
        a = [level[:2 * det.na] for level in ANCHORS]
        det.anchors[:] = torch.tensor(a).float().view(det.nl, -1, 2) / det.stride.view(-1, 1, 1)


def case(prefix, path, width, ckpts, g):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    if width:
        cfg["width_multiple"] = width
    names = NAMES[:3 if ckpts else cfg["nc"]]
    model = Model(cfg, nc=len(names))
    model.names = names
    randomise(model, g)
    model.eval()
    x = torch.rand(BATCH, 3, IMGSZ, IMGSZ, generator=g).half().float()
    with torch.no_grad():
        y = model(x)
        raw = list(model.model[-1].raw)
        half = deepcopy(model).half().float()  # the weights a float16 checkpoint holds
        y_half = half(x)
    n_params = sum(p.numel() for p in model.parameters())
    conf = y[..., 4:]
    print(f"{prefix}: {os.path.basename(path)} width {width}: params {n_params}, output0 {tuple(y.shape)}, "
          f"scores in (0.01,0.99): {((conf > 0.01) & (conf < 0.99)).float().mean():.3f}, "
          f"box w/h max {y[..., 2:4].max():.1f} px, half vs float max diff {(y_half - y).abs().max():.3g}")

    sd = model.state_dict()
    flat = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    names_meta = "{" + ", ".join(f"{i}: {n!r}" for i, n in enumerate(names)) + "}"
    out = {}
    out[prefix + ".safetensors"] = save_safetensors(os.path.join(HERE, prefix + ".safetensors"), flat,
                                                    extra_meta={"names": names_meta})
    if ckpts:
        # What the float16 checkpoint holds, as safetensors, for output0_half.
        half_sd = {k: v for k, v in deepcopy(model).half().state_dict().items() if not k.endswith("num_batches_tracked")}
        out[prefix + "_half.safetensors"] = save_safetensors(os.path.join(HERE, prefix + "_half.safetensors"), half_sd,
                                                             extra_meta={"names": names_meta})
    out[prefix + "_io.safetensors"] = save_safetensors(
        os.path.join(HERE, prefix + "_io.safetensors"),
        {"images": x.half(), "output0": y, "output0_half": y_half, **{f"raw{i}": r for i, r in enumerate(raw)}})
    for k, v in out.items():
        print(f"  {k}: {v} bytes")
        assert v < 300 * 1024, f"{k} is over 300 KB"
    if not ckpts:
        return
    out = {}
    ckpt = os.path.join(HERE, prefix + "_ckpt.pt")
    torch.save({"epoch": -1, "model": deepcopy(model).half(), "ema": None, "optimizer": None, "updates": None}, ckpt)
    out[prefix + "_ckpt.pt"] = os.path.getsize(ckpt)
    state = os.path.join(HERE, prefix + "_state.pt")
    torch.save(sd, state)
    out[prefix + "_state.pt"] = os.path.getsize(state)
    for k, v in out.items():
        print(f"  {k}: {v} bytes")
        assert v < 300 * 1024, f"{k} is over 300 KB"


def main():
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    for prefix, path, width, ckpts in CASES:
        case(prefix, path, width, ckpts, g)


if __name__ == "__main__":
    main()
