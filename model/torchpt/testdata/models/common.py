"""Small stand-ins for YOLOv5's building blocks, so the fixtures pickle the
same module names (models.common.X) and the same nn.Module layout."""
import torch
import torch.nn as nn


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Focus(nn.Module):
    def __init__(self, c1, c2, k=1):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class MysteryBlock(nn.Module):
    """A module type no builder knows."""

    def __init__(self, c1, c2):
        super().__init__()
        self.cv = nn.Conv2d(c1, c2, 1)

    def forward(self, x):
        return self.cv(x)
