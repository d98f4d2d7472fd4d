#!/usr/bin/env python3
"""Helpers of tests/tool/huge_pixels.sh.

huge_pixels.py rewrite TIFF...  rewrites the float32 pixels of uncompressed,
    strip-organised GeoTIFFs (as `mosaic synth` writes them) in place with finite but
    huge values, 1e19 to 1e25 (issue 19): pixels whose squares overflow float32.
huge_pixels.py same-state A B   exits 0 when model files A and B hold the same tensors
    (names, dtypes, shapes, bytes) and the same `mosaic.step`, otherwise prints the
    first difference and exits 1. A plain reading of the safetensors layout."""
import json
import struct
import sys

import numpy as np


def rewrite(path):
    b = bytearray(open(path, "rb").read())
    bo = "<" if b[:2] == b"II" else ">"
    ifd = struct.unpack(bo + "I", b[4:8])[0]
    tags = {}
    for i in range(struct.unpack(bo + "H", b[ifd:ifd + 2])[0]):
        tag, typ, cnt, val = struct.unpack(bo + "HHII", b[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        tags[tag] = (typ, cnt, val)

    def values(tag):
        typ, cnt, val = tags[tag]
        fmt = {3: "H", 4: "I"}[typ]
        size = struct.calcsize(fmt)
        if cnt * size <= 4:
            return list(struct.unpack(bo + fmt * cnt, struct.pack(bo + "I", val)[:cnt * size]))
        return list(struct.unpack(bo + fmt * cnt, b[val:val + cnt * size]))

    assert values(259) == [1], f"{path}: compressed"
    assert values(258) == [32] and values(339) == [3], f"{path}: not float32"
    k = 0
    for off, count in zip(values(273), values(279)):
        n = count // 4
        x = 10.0 ** (19.0 + 6.0 * (np.arange(k, k + n) % 97) / 96.0)
        b[off:off + 4 * n] = x.astype(bo + "f4").tobytes()
        k += n
    open(path, "wb").write(bytes(b))


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n:]
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
               for k, v in header.items()}
    return meta, tensors


def same_state(a, b):
    (ma, ta), (mb, tb) = read_safetensors(a), read_safetensors(b)
    if ma.get("mosaic.step") != mb.get("mosaic.step"):
        print(f"mosaic.step {ma.get('mosaic.step')} != {mb.get('mosaic.step')}")
        return 1
    if sorted(ta) != sorted(tb):
        print(f"tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}")
        return 1
    for k in sorted(ta):
        if ta[k] != tb[k]:
            print(f"tensor {k} differs")
            return 1
    return 0


if sys.argv[1] == "rewrite":
    for p in sys.argv[2:]:
        rewrite(p)
elif sys.argv[1] == "same-state":
    sys.exit(same_state(sys.argv[2], sys.argv[3]))
else:
    sys.exit(f"usage: {sys.argv[0]} rewrite TIFF... | same-state A B")
