"""Writes tiny.onnx: a small torch.onnx export touching many ONNX features
(Conv, BatchNormalization, Resize, Concat, Split, Constant tensors, float and
int attributes, symbolic batch dim, metadata). The codec's round-trip test
decodes and re-encodes it and asks the onnx package whether nothing changed.

Run with Debian's interpreter: /usr/bin/python3 model/onnx/testdata/gen_fixture.py
"""
import os

import onnx
import torch

torch.manual_seed(7)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4, eps=1e-3)
        self.up = torch.nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        y = self.bn(self.conv(x))
        y = y * torch.sigmoid(y)
        a, b = y.split((1, 3), dim=1)
        z = torch.cat([self.up(a), self.up(b) * 0.5], 1)
        return z.reshape(z.shape[0], 4, -1).permute(0, 2, 1)


here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "tiny.onnx")
m = Tiny().eval()
torch.onnx.export(m, torch.rand(1, 3, 8, 8), path, opset_version=13,
                  input_names=["images"], output_names=["output0"],
                  dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
                  do_constant_folding=False)
model = onnx.load(path)
model.metadata_props.add(key="stride", value="32")
onnx.save(model, path)
print(path, os.path.getsize(path), "bytes")
