"""Writes cases.json: values pickled by CPython at every protocol, with the
value in a tagged JSON form, so the Go decoder is checked against Python's own
pickler. Also writes the FuzzPickle seed corpus. Deterministic.

    /usr/bin/python3 model/pickle/testdata/gen_cases.py
"""
import collections
import json
import os
import pickle

HERE = os.path.dirname(os.path.abspath(__file__))


class Point:
    """A plain class: pickled as NEWOBJ (or copyreg._reconstructor) plus BUILD."""

    def __init__(self, x, y):
        self.x, self.y = x, y




def tag(v):
    if v is None:
        return {'none': True}
    if isinstance(v, bool):
        return {'bool': v}
    if isinstance(v, int):
        return {'int': str(v)}
    if isinstance(v, float):
        return {'float': repr(v)}
    if isinstance(v, str):
        return {'str': v}
    if isinstance(v, (bytes, bytearray)):
        return {'bytes': bytes(v).hex()}
    if isinstance(v, tuple):
        return {'tuple': [tag(x) for x in v]}
    if isinstance(v, list):
        return {'list': [tag(x) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {'set': sorted((tag(x) for x in v), key=json.dumps)}
    if isinstance(v, dict):
        return {'dict': [[tag(k), tag(x)] for k, x in v.items()]}
    if isinstance(v, Point):
        return {'object': '__main__.Point', 'state': tag(v.__dict__)}
    raise TypeError(type(v))


VALUES = [
    None, True, False,
    0, 1, 255, 256, 65535, 65536, -1, -256, 2**31 - 1, -2**31, 2**31, 2**40, -2**63, 2**63 - 1, 2**64, -2**100,
    0.0, -1.5, 1e300, 3.141592653589793,
    '', 'a', 'héllo wörld ☃', 'x' * 260, 'line\nbreak \\ "quote\' \x00',
    b'', b'\x00\xffabc', bytearray(b'\x01\x02'),
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
    [], [1, 'two', 3.0], list(range(1001)),
    {}, {'a': 1, 'b': [1, 2]}, {1: 'one', (1, 2): 'pair', None: 0},
    collections.OrderedDict([('z', 1), ('a', 2)]),
    {1, 2, 3}, frozenset({'x'}),
    [[[[['deep']]]]],
    Point(1, [2, 3]),
]


def shared():
    # The same list twice: the memo must give the same object back.
    x = [1]
    return [x, x]


def go_string(b):
    out = []
    for c in b:
        if 32 <= c < 127 and c not in (ord('"'), ord('\\')):
            out.append(chr(c))
        else:
            out.append('\\x%02x' % c)
    return '"' + ''.join(out) + '"'


def main():
    cases = []
    for proto in range(0, 6):
        for i, v in enumerate(VALUES):
            cases.append({'name': 'p%d/%d' % (proto, i), 'pickle': pickle.dumps(v, protocol=proto).hex(), 'want': tag(v)})
        cases.append({'name': 'p%d/shared' % proto, 'pickle': pickle.dumps(shared(), protocol=proto).hex(), 'shared': True})
    with open(os.path.join(HERE, 'cases.json'), 'w') as f:
        json.dump(cases, f, separators=(',', ':'))
        f.write('\n')
    seeds = os.path.join(HERE, 'fuzz', 'FuzzPickle')
    os.makedirs(seeds, exist_ok=True)
    for proto in (0, 2, 4, 5):
        for i, v in enumerate(VALUES):
            if i % 3 == proto % 3 or isinstance(v, (dict, Point, set, collections.OrderedDict)):
                b = pickle.dumps(v, protocol=proto)
                if len(b) < 600:
                    with open(os.path.join(seeds, 'p%d_%02d' % (proto, i)), 'w') as f:
                        f.write('go test fuzz v1\n[]byte(%s)\n' % go_string(b))


if __name__ == '__main__':
    main()
