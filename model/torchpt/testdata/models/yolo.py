"""A tiny Model/Detect pair laid out like YOLOv5's models/yolo.py."""
import torch
import torch.nn as nn

from models.common import Conv, Focus, MysteryBlock


class Detect(nn.Module):
    stride = None

    def __init__(self, nc, anchors, ch):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.grid = [torch.zeros(1)] * self.nl
        a = torch.tensor(anchors).float().view(self.nl, -1, 2)
        self.register_buffer('anchors', a)
        # Not in the state_dict, like YOLOv5 v5.0's anchor_grid would be if it were non-persistent.
        self.register_buffer('anchor_grid', a.clone().view(self.nl, 1, -1, 1, 1, 2), persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)


class Model(nn.Module):
    def __init__(self, cfg, mystery=False):
        super().__init__()
        self.yaml = cfg
        nc = cfg['nc']
        layers = [Focus(3, 8, 3), Conv(8, 16, 3, 2)]
        if mystery:
            layers.append(MysteryBlock(16, 16))
        layers.append(Detect(nc, cfg['anchors'], [16, 16, 16]))
        for i, m in enumerate(layers):
            m.i, m.f, m.type = i, -1, type(m).__module__ + '.' + type(m).__name__
        self.model = nn.Sequential(*layers)
        self.save = []
        self.names = [str(i) for i in range(nc)]
        det = layers[-1]
        det.stride = torch.tensor([8., 16., 32.])
        det.anchors /= det.stride.view(-1, 1, 1)
        self.stride = det.stride
