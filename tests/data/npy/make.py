#!/usr/bin/python3
"""make.py — writes the .npy fixtures of tests/test_npy.c with NumPy's own writer
(np.lib.format.write_array). Run once by hand (/usr/bin/python3 with python3-numpy,
written with NumPy 1.24.2); the files are committed, and the C tests never need NumPy.

Element i (in C order) of every "formula" file is, whatever the file's order:
  value(i) = i*3 - 7           int16, int32, int64, float16
  value(i) = (i*7 + 3) % 256   uint8
  value(i) = i*1000 + 5        uint16, uint32
  value(i) = (i*3 - 7) * 0.1   float32 (rounded from the float64), float64
tests/test_npy.c recomputes the same values. Fortran files hold the same logical array
as their C twins (np.asfortranarray), so they test the transposition. Two more files:
f2_special.npy (hand-picked half bit patterns) and i8_round.npy (int64 values that round
when converted to float32); test_npy.c lists their values too.

Name: <dtype>_<le|be>_<c|f>_v<version>.npy, shapes in FILES below.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def values(kind, n):
    i = np.arange(n, dtype=np.int64)
    if kind in ("i2", "i4", "i8", "f2"):
        return i * 3 - 7
    if kind == "u1":
        return (i * 7 + 3) % 256
    if kind in ("u2", "u4"):
        return i * 1000 + 5
    return (i * 3 - 7).astype(np.float64) * 0.1


# (dtype, byte order, fortran, version, shape)
FILES = [
    ("u1", "|", False, 1, (2, 3, 4)),
    ("u1", "|", True, 1, (2, 3, 4)),
    ("i2", "<", False, 1, (2, 3, 4)),
    ("i2", ">", True, 1, (2, 3, 4)),
    ("i2", "<", True, 2, (3, 2, 4, 5)),  # a T x C x H x W series, Fortran
    ("u2", "<", False, 1, (5, 6)),
    ("u2", ">", False, 3, (5, 6)),
    ("u2", "<", True, 1, (5, 6)),
    ("i4", ">", False, 1, (2, 3, 4)),
    ("u4", "<", True, 2, (2, 3, 4)),
    ("i8", "<", False, 1, (2, 3, 4)),
    ("i8", ">", True, 1, (2, 3, 4)),
    ("f2", "<", False, 1, (2, 3, 4)),
    ("f2", ">", True, 2, (2, 3, 4)),
    ("f4", "<", False, 1, (2, 3, 4)),
    ("f4", ">", False, 2, (2, 3, 4)),
    ("f4", "<", True, 3, (3, 2, 2, 3)),
    ("f4", "<", False, 1, ()),  # a scalar
    ("f8", "<", False, 1, (7,)),
    ("f8", ">", True, 1, (2, 3, 4)),
    ("f8", "<", False, 3, (2, 3, 4)),
    ("i2", "<", False, 1, (0, 3)),  # empty
]

F2_SPECIAL = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xC000, 0x7BFF,
              0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3555, 0x0200]
I8_ROUND = [16777216, 16777217, 16777218, 16777219, -16777219, 2**53 + 1,
            2**63 - 1, -2**63, 0, -1, 123456789, 2**31]


def name(kind, order, fortran, version):
    bo = "be" if order == ">" else "le"
    return "%s_%s_%s_v%d.npy" % (kind, bo, "f" if fortran else "c", version)


def write(fname, arr, version):
    with open(os.path.join(HERE, fname), "wb") as fp:
        np.lib.format.write_array(fp, arr, version=(version, 0))


def main():
    for kind, order, fortran, version, shape in FILES:
        n = int(np.prod(shape)) if shape else 1
        arr = values(kind, n).astype(np.dtype(order + kind)).reshape(shape)
        if fortran:
            arr = np.asfortranarray(arr)
            assert arr.ndim < 2 or not arr.flags.c_contiguous
        fname = name(kind, order, fortran, version)
        if shape == ():
            fname = "f4_le_c_v1_scalar.npy"
        elif 0 in shape:
            fname = "i2_le_c_v1_empty.npy"
        write(fname, arr, version)
    write("f2_special.npy", np.array(F2_SPECIAL, dtype="<u2").view("<f2"), 1)
    write("i8_round.npy", np.array(I8_ROUND, dtype=">i8"), 1)


if __name__ == "__main__":
    main()
