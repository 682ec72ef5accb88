"""Writes the torchpt test fixtures with real torch, and what torch reads back
from them as JSON, so the Go reader is checked against torch itself.

Run from anywhere with Debian's python3 (torch 1.13):
    /usr/bin/python3 model/torchpt/testdata/gen_fixtures.py
Output is deterministic (fixed seed, torch's zip writer stores no times).
"""
import collections
import copy
import hashlib
import json
import os
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # so the pickles name models.yolo.Model, as YOLOv5's do

from models.yolo import Model  # noqa: E402

CFG = {
    'nc': 3,
    'depth_multiple': 0.33,
    'width_multiple': 0.5,
    'anchors': [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]],
    'backbone': [[-1, 1, 'Focus', [8, 3]], [-1, 1, 'Conv', [16, 3, 2]]],
    'head': [[-1, 1, 'nn.Upsample', [None, 2, 'nearest']], [[1, 1, 1], 1, 'Detect', ['nc', 'anchors']]],
    'ch': 3,
    'fused': False,
    'ratio': (1, 2.5),
}


def path(name):
    return os.path.join(HERE, name)


def randomize(model):
    # Non-trivial BatchNorm statistics, so every tensor differs from its default.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.num_batches_tracked.fill_(7)


def make_model(mystery=False, names=None):
    m = Model(copy.deepcopy(CFG), mystery=mystery)
    randomize(m)
    if names is not None:
        m.names = names
    return m


def tensor_json(t):
    # The digest is over the float32 values, little-endian, in row-major order: what torchpt's
    # Tensor returns. Small tensors carry their values too, for readable test failures.
    f32 = t.detach().to(torch.float32).contiguous().flatten()
    out = {
        'shape': list(t.shape),
        'dtype': str(t.dtype).replace('torch.', ''),
        'sha256': hashlib.sha256(f32.numpy().astype('<f4').tobytes()).hexdigest(),
    }
    if f32.numel() <= 32:
        out['values'] = [float(v) for v in f32.tolist()]
    return out


def expected_for(file, loaded, kind):
    """What torch reads back from file: state_dict names, tensors, metadata."""
    exp = {'file': file, 'kind': kind}
    if kind == 'state_dict':
        sd = loaded
    else:
        model = loaded if isinstance(loaded, torch.nn.Module) else (loaded.get('model') or loaded.get('ema'))
        sd = model.state_dict()
        exp['model_class'] = type(model).__module__ + '.' + type(model).__name__
        exp['yaml'] = model.yaml
        names = model.names
        exp['class_names'] = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
        exp['strides'] = [float(s) for s in model.stride]
        exp['modules'] = [[p, type(m).__module__ + '.' + type(m).__name__] for p, m in model.named_modules() if p]
    exp['names'] = list(sd.keys())
    exp['tensors'] = {k: tensor_json(v) for k, v in sd.items()}
    return exp


def save(obj, name, **kw):
    torch.save(obj, path(name), **kw)
    return name


class Evil:
    """Pickles as a call to os.system; a safe reader must refuse it, never run it."""

    def __reduce__(self):
        return (os.system, ('echo torchpt-fixture-must-never-run-this',))


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    expected = []

    # The way YOLOv5's train.py saves, after strip_optimizer: float16 model, no optimizer.
    model = make_model(names=['person', 'bicycle', 'car'])
    ckpt = {'epoch': -1, 'best_fitness': np.array([0.25]), 'model': copy.deepcopy(model).half(),
            'ema': None, 'updates': None, 'optimizer': None, 'opt': {'imgsz': 640, 'rect': False},
            'date': '2026-12-03T00:00:00'}
    f = save(ckpt, 'yolo_ckpt.pt')
    expected.append(expected_for(f, torch.load(path(f)), 'yolov5 checkpoint'))

    # Training still running: model is None, the weights live in ema; names as a dict.
    ema = make_model(names={1: 'dog', 0: 'cat', 2: 'cow'})
    f = save({'epoch': 3, 'model': None, 'ema': copy.deepcopy(ema).half(), 'updates': 10, 'optimizer': None},
             'ema_ckpt.pt')
    expected.append(expected_for(f, torch.load(path(f)), 'yolov5 checkpoint'))

    # torch.save(model.state_dict()), float32.
    f = save(make_model().float().state_dict(), 'state_dict_f32.pt')
    expected.append(expected_for(f, torch.load(path(f)), 'state_dict'))

    # Other dtypes and tensors that are views into a larger storage.
    base = torch.randn(3, 4)
    wide = torch.randn(5, 6, dtype=torch.float64)
    sd = collections.OrderedDict()
    sd['bf16'] = torch.randn(2, 3).to(torch.bfloat16)
    sd['f64'] = torch.randn(4, dtype=torch.float64)
    sd['f16'] = torch.randn(2, 2).half()
    sd['base'] = base
    sd['transposed'] = base.t()  # non-contiguous view of base's storage
    sd['sliced'] = base[1:]  # storage offset 4
    sd['strided'] = wide[1:, ::2]  # offset and stride 2 in float64
    sd['i64'] = torch.tensor([[1, -2, 3]], dtype=torch.int64)
    sd['scalar'] = torch.tensor(2.5)
    sd['empty'] = torch.zeros(0, 3)
    sd['param'] = torch.nn.Parameter(torch.tensor([6.0]))  # _rebuild_parameter
    f = save(sd, 'dtypes.pt')
    loaded = torch.load(path(f))
    assert loaded['transposed'].stride() == (1, 4) and loaded['sliced'].storage_offset() == 4
    expected.append(expected_for(f, loaded, 'state_dict'))

    # The wrapped state_dict forms.
    small = collections.OrderedDict([('w', torch.arange(6, dtype=torch.float32).view(2, 3)), ('b', torch.ones(2))])
    f = save({'state_dict': small, 'epoch': 1}, 'wrapped_state_dict.pt')
    expected.append(expected_for(f, torch.load(path(f))['state_dict'], 'state_dict'))
    f = save({'model': small}, 'model_state_dict.pt')
    expected.append(expected_for(f, torch.load(path(f))['model'], 'state_dict'))

    # A checkpoint holding a module type no builder knows.
    f = save({'epoch': -1, 'model': make_model(mystery=True).half(), 'ema': None, 'optimizer': None}, 'mystery.pt')
    expected.append(expected_for(f, torch.load(path(f)), 'yolov5 checkpoint'))

    # Bad inputs: what torch < 1.6 wrote, a pickle that calls os.system, a cut file.
    # (The legacy writer names storages by memory address, so this one holds none, to stay deterministic.)
    save({'epoch': 1, 'note': 'legacy'}, 'legacy.pt', _use_new_zipfile_serialization=False)
    save({'x': Evil(), 'w': small['w']}, 'evil.pt')
    with open(path('yolo_ckpt.pt'), 'rb') as src:
        b = src.read()
    with open(path('truncated.pt'), 'wb') as dst:
        dst.write(b[:len(b) // 2])

    write_fuzz_seeds()

    # Reference state_dict keys straight from the module, to check the naming rules.
    with open(path('expected.json'), 'w') as out:
        json.dump({'fixtures': expected, 'model_state_dict_keys': list(model.state_dict().keys())}, out,
                  separators=(',', ':'))
        out.write('\n')


def go_string(b):
    return '"' + ''.join(chr(c) if 32 <= c < 127 and c not in b'"\\' else '\\x%02x' % c for c in b) + '"'


def write_fuzz_seeds():
    """Seed corpora: whole small files for FuzzOpen, every fixture's data.pkl for FuzzDataPickle."""
    for target in ('FuzzOpen', 'FuzzDataPickle'):
        os.makedirs(path(os.path.join('fuzz', target)), exist_ok=True)

    def seed(target, name, b):
        with open(path(os.path.join('fuzz', target, name)), 'w') as f:
            f.write('go test fuzz v1\n[]byte(%s)\n' % go_string(b))

    for name in sorted(os.listdir(HERE)):
        if not name.endswith('.pt'):
            continue
        with open(path(name), 'rb') as f:
            b = f.read()
        if len(b) < 3000:
            seed('FuzzOpen', name[:-3], b)
        if zipfile.is_zipfile(path(name)):
            z = zipfile.ZipFile(path(name))
            seed('FuzzDataPickle', name[:-3], z.read(name[:-3] + '/data.pkl'))


if __name__ == '__main__':
    main()
