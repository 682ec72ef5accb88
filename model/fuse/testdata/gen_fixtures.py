#!/usr/bin/python3
"""Generate the small RepVGG ONNX fixtures for model/fuse tests.

Run from anywhere with Debian's python (torch 1.13, onnx 1.12):

    /usr/bin/python3 model/fuse/testdata/gen_fixtures.py

For every fixture NAME it writes NAME.onnx, NAME.in.bin (the fixed random input,
float32 little endian) and NAME.out.bin (torch's output for it), and it lists
them with shapes and expectations in fixtures.json.

How torch 1.13 exports a RepVGG block (checked with onnx.load, see the assert
in export()):
  * training=TrainingMode.EVAL (the default) runs the eval peephole pass, which
    folds every Conv->BatchNormalization into the conv's bias whatever
    do_constant_folding says; a BatchNormalization on the identity branch
    stays a BatchNormalization node.
  * training=TrainingMode.PRESERVE with the module in eval() skips that pass:
    Conv->BatchNormalization pairs stay as they are, and the BN nodes are in
    inference mode (one output). This is the training form we fuse.
  * Module tensors that are not parameters or buffers are exported as Constant
    nodes; BN parameters with equal values (fresh BN: weight 1, bias 0) are
    de-duplicated into Identity nodes reading one initializer.
"""
import io
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 13


def randomise_bn(bn, gen):
    with torch.no_grad():
        c = bn.num_features
        bn.weight.copy_(torch.rand(c, generator=gen) + 0.5)
        bn.bias.copy_(torch.randn(c, generator=gen) * 0.2)
        bn.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
        bn.running_var.copy_(torch.rand(c, generator=gen) * 1.8 + 0.2)


class RepBlock(nn.Module):
    """RepVGG block: BN(conv3x3) + BN(conv1x1) [+ BN(x)], then an activation."""

    def __init__(self, cin, cout, stride=1, groups=1, identity=True, act=None, eps=1e-5):
        super().__init__()
        self.c3 = nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False)
        self.b3 = nn.BatchNorm2d(cout, eps=eps)
        self.c1 = nn.Conv2d(cin, cout, 1, stride, 0, groups=groups, bias=False)
        self.b1 = nn.BatchNorm2d(cout, eps=eps)
        use_id = identity and cin == cout and stride == 1
        self.bid = nn.BatchNorm2d(cin, eps=eps) if use_id else None
        self.act = act if act is not None else nn.SiLU()

    def forward(self, x):
        y = self.b3(self.c3(x)) + self.b1(self.c1(x))
        if self.bid is not None:
            y = y + self.bid(x)
        return self.act(y)


class MulAddBlock(nn.Module):
    """Already-folded block whose identity is written as x*s + b in the module.

    s is a plain tensor (exported as a Constant node), b a parameter (an
    initializer), so both weight providers are exercised."""

    def __init__(self, c, gen):
        super().__init__()
        self.c3 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.c1 = nn.Conv2d(c, c, 1, 1, 0, bias=True)
        self.s = torch.rand(1, c, 1, 1, generator=gen) + 0.5
        self.b = nn.Parameter(torch.randn(c, 1, 1, generator=gen) * 0.2)

    def forward(self, x):
        return torch.relu(self.c3(x) + self.c1(x) + (x * self.s + self.b))


class Chain(nn.Module):
    """block -> ReLU -> block -> SiLU, with a residual Add around both.

    The residual Add(x, SiLU(...)) must survive fusion untouched."""

    def __init__(self, c):
        super().__init__()
        self.r1 = RepBlock(c, c, act=nn.ReLU())
        self.r2 = RepBlock(c, c, act=nn.SiLU())

    def forward(self, x):
        return x + self.r2(self.r1(x))


def deploy_params(model):
    """Parameters of the deploy form: one 3x3 conv with bias per block."""
    n = 0
    for mod in model.modules():
        if isinstance(mod, (RepBlock, MulAddBlock)):
            n += mod.c3.weight.numel() + mod.c3.out_channels
    return n


def export(name, model, shape, preserve, expect, gen, note):
    model.eval()
    x = torch.randn(*shape, generator=gen)
    with torch.no_grad():
        y = model(x)
    f = io.BytesIO()
    kwargs = dict(opset_version=OPSET, input_names=["x"], output_names=["y"])
    if preserve:
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(model, x, f, **kwargs)
    data = f.getvalue()
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    bn = ops.count("BatchNormalization")
    assert bn == expect["bn_before"], f"{name}: {bn} BatchNormalization nodes, want {expect['bn_before']}: {ops}"
    assert ops.count("Conv") == expect["convs_before"], f"{name}: {ops}"
    with open(os.path.join(HERE, name + ".onnx"), "wb") as fh:
        fh.write(data)
    x.numpy().astype("<f4").tofile(os.path.join(HERE, name + ".in.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(HERE, name + ".out.bin"))
    rec = dict(name=name, note=note, input="x", input_shape=list(x.shape),
               output="y", output_shape=list(y.shape), ops=ops,
               params_after=deploy_params(model))
    if preserve and "Identity" not in ops:
        # Every parameter is a Conv weight or a BN scale/bias, as onnx.Params
        # counts them (it does not look through the Identity nodes of
        # de-duplicated parameters).
        rec["params_before"] = sum(p.numel() for p in model.parameters())
    rec.update(expect)
    print(f"{name}: {len(data)} bytes, ops {ops}")
    return rec


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    recs = []

    def block(*args, **kw):
        b = RepBlock(*args, **kw)
        for bn in (b.b3, b.b1, b.bid):
            if bn is not None:
                randomise_bn(bn, gen)
        return b

    rep = block(8, 8)
    recs.append(export("rep_bn", rep, (1, 8, 16, 16), True,
                       dict(bn_before=3, convs_before=2, convs_after=1, repvgg=1,
                            branches=["3x3", "1x1", "identity(bn)"]),
                       gen, "RepVGG block with identity, C=8, training form: Conv+BN per branch, BN identity"))
    recs.append(export("rep_folded", rep, (1, 8, 16, 16), False,
                       dict(bn_before=1, convs_before=2, convs_after=1, repvgg=1,
                            branches=["3x3", "1x1", "identity(bn)"]),
                       gen, "the same block exported with torch's defaults: BN folded into conv biases"))
    recs.append(export("rep_s2", block(8, 16, stride=2, eps=1e-3), (1, 8, 16, 16), True,
                       dict(bn_before=2, convs_before=2, convs_after=1, repvgg=1, branches=["3x3", "1x1"]),
                       gen, "stride-2 block without identity, 8 -> 16 channels, BN eps 1e-3 as in YOLOv5"))
    recs.append(export("rep_muladd", MulAddBlock(8, gen), (1, 8, 16, 16), False,
                       dict(bn_before=0, convs_before=2, convs_after=1, repvgg=1,
                            branches=["3x3", "1x1", "identity(mul/add)"]),
                       gen, "identity written as x*s+b: Mul with a Constant node, Add with an initializer"))
    recs.append(export("rep_group", block(8, 8, groups=2), (1, 8, 16, 16), True,
                       dict(bn_before=3, convs_before=2, convs_after=1, repvgg=1,
                            branches=["3x3", "1x1", "identity(bn)"]),
                       gen, "grouped block, groups=2, with identity"))
    chain = Chain(8)
    for b in (chain.r1, chain.r2):
        for bn in (b.b3, b.b1, b.bid):
            randomise_bn(bn, gen)
    recs.append(export("rep_chain", chain, (1, 8, 16, 16), True,
                       dict(bn_before=6, convs_before=4, convs_after=2, repvgg=2,
                            branches=["3x3", "1x1", "identity(bn)"]),
                       gen, "block -> ReLU -> block -> SiLU with a residual Add around; the residual must stay"))
    recs.append(export("rep_fresh", RepBlock(8, 8), (1, 8, 16, 16), True,
                       dict(bn_before=3, convs_before=2, convs_after=1, repvgg=1,
                            branches=["3x3", "1x1", "identity(bn)"]),
                       gen, "fresh BN statistics: torch de-duplicates them into Identity nodes"))

    with open(os.path.join(HERE, "fixtures.json"), "w") as fh:
        json.dump(recs, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
