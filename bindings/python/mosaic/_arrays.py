"""Arrays in and out of the C API, with NumPy when it is installed and without it.

Inputs: a NumPy array (C-contiguous arrays of the right dtype are passed without a
copy; other dtypes and memory orders are converted), any object NumPy accepts
(nested lists), or, without NumPy, a buffer (memoryview, array.array, bytearray) or a
nested list. A buffer with the right item format that is C-contiguous and writable is
passed without a copy; a one-dimensional buffer may carry its shape as a pair
(buffer, shape), and then a buffer of raw bytes (bytes, bytearray) of exactly the
right length holds the elements in native byte order. Outputs: NumPy arrays, or without NumPy a memoryview of an
array.array with the output's shape (memoryview.tolist() gives nested lists).

`np` is looked up at call time, so tests can set mosaic._arrays.np = None to exercise
the path without NumPy.
"""

import array
import ctypes
import math
import numbers

from ._errors import InvalidArgumentError, ShapeError

try:
    import numpy as np
except ImportError:  # pragma: no cover - depends on the machine
    np = None

# element kind -> (ctypes type, array.array code, numpy dtype name, memoryview formats)
_KINDS = {
    "float32": (ctypes.c_float, "f", "float32", ("f",)),
    "float64": (ctypes.c_double, "d", "float64", ("d",)),
    "uint8": (ctypes.c_uint8, "B", "uint8", ("B",)),
    "int32": (ctypes.c_int32, "i", "int32", ("i", "l") if ctypes.sizeof(ctypes.c_long) == 4
              else ("i",)),
    "int64": (ctypes.c_int64, "q", "int64", ("q", "l") if ctypes.sizeof(ctypes.c_long) == 8
              else ("q",)),
}


def have_numpy():
    return np is not None


class Input:
    """An array ready for a call: .ptr (a ctypes pointer), .shape, .size; it keeps the
    memory alive as long as it exists."""

    __slots__ = ("ptr", "shape", "size", "_keep")

    def __init__(self, ptr, shape, keep):
        self.ptr = ptr
        self.shape = tuple(int(s) for s in shape)
        self.size = int(math.prod(self.shape))
        self._keep = keep


def _check_ndim(shape, ndim, name):
    if ndim is not None and len(shape) != ndim:
        raise ShapeError("%s: expected a %d-dimensional array, got shape %s"
                         % (name, ndim, tuple(shape)))


def _check_binary(values, name):
    for v in values:
        if v != 0 and v != 1:
            raise InvalidArgumentError("%s: labels must be 0 or 1, found %r" % (name, v))


def _flatten_nested(obj, name):
    """A nested list/tuple of numbers as (flat list, shape)."""
    if isinstance(obj, numbers.Number):
        return [obj], ()
    if not isinstance(obj, (list, tuple)):
        raise InvalidArgumentError("%s: expected an array, a buffer or a nested list, got %s"
                                   % (name, type(obj).__name__))
    if len(obj) == 0:
        return [], (0,)
    flat, inner = [], None
    for item in obj:
        f, s = _flatten_nested(item, name)
        if inner is None:
            inner = s
        elif s != inner:
            raise ShapeError("%s: ragged nested list (rows of shapes %s and %s)"
                             % (name, inner, s))
        flat.extend(f)
    return flat, (len(obj),) + inner


def _is_buffer_and_shape(obj):
    """(buffer, shape): a pair of a non-list object and a tuple or list of ints."""
    return (isinstance(obj, tuple) and len(obj) == 2
            and not isinstance(obj[0], (numbers.Number, list, tuple))
            and isinstance(obj[1], (tuple, list))
            and all(isinstance(s, numbers.Integral) for s in obj[1]))


def as_input(obj, kind, name, ndim=None):
    """obj as an Input of elements `kind` ("float32", "uint8", "int32", "int64", "float64")."""
    ctype, code, dtype, formats = _KINDS[kind]
    if obj is None:
        raise InvalidArgumentError("%s: an array is required, got None" % name)
    if np is not None:
        shape = None
        if _is_buffer_and_shape(obj):
            obj, shape = obj
        a = np.asarray(obj)
        if shape is not None:
            a = a.reshape(tuple(shape))
        if kind == "uint8" and a.dtype.kind not in "bui":
            if a.size and not np.all((a == 0) | (a == 1)):
                raise InvalidArgumentError("%s: labels must be 0 or 1" % name)
        elif kind in ("float32", "float64") and a.dtype.kind not in "biuf":
            raise InvalidArgumentError("%s: expected numbers, got an array of dtype %s"
                                       % (name, a.dtype))
        elif kind in ("int32", "int64") and a.dtype.kind not in "biu":
            raise InvalidArgumentError("%s: expected integers, got an array of dtype %s"
                                       % (name, a.dtype))
        if kind == "int32" and a.dtype.kind in "iu" and a.size and \
                (int(a.min()) < -2**31 or int(a.max()) >= 2**31):
            raise InvalidArgumentError("%s: a value does not fit int32" % name)
        _check_ndim(a.shape, ndim, name)
        a = np.ascontiguousarray(a, dtype=dtype)  # no copy when already so
        return Input(a.ctypes.data_as(ctypes.POINTER(ctype)), a.shape, a)
    # --- without NumPy ------------------------------------------------------------
    shape = None
    if _is_buffer_and_shape(obj):
        obj, shape = obj
        shape = tuple(int(s) for s in shape)
    if isinstance(obj, (list, tuple)):
        flat, nshape = _flatten_nested(obj, name)
        if shape is not None:
            nshape = shape
        if kind == "uint8":
            _check_binary(flat, name)
            flat = [int(v) for v in flat]
        elif kind in ("int32", "int64"):
            flat = [int(v) for v in flat]
        buf = array.array(code, flat)
        if len(buf) != math.prod(nshape):
            raise ShapeError("%s: %d values do not fill shape %s" % (name, len(buf), nshape))
        _check_ndim(nshape, ndim, name)
        carr = (ctype * max(len(buf), 1)).from_buffer(buf) if len(buf) else (ctype * 1)()
        return Input(ctypes.cast(carr, ctypes.POINTER(ctype)), nshape, (buf, carr))
    try:
        m = memoryview(obj)
    except TypeError:
        raise InvalidArgumentError("%s: expected an array, a buffer or a nested list, got %s"
                                   % (name, type(obj).__name__)) from None
    explicit = shape is not None
    if shape is None:
        shape = m.shape
    if explicit and kind != "uint8" and m.format in ("B", "b", "c") and m.c_contiguous \
            and m.nbytes == math.prod(shape) * ctypes.sizeof(ctype):
        m = m.cast("B").cast(code)  # raw bytes (bytes, bytearray) holding the elements
    if m.format.lstrip("@=") in formats and m.c_contiguous:
        if m.nbytes != math.prod(shape) * ctypes.sizeof(ctype):
            raise ShapeError("%s: a buffer of %d elements does not fill shape %s"
                             % (name, m.nbytes // ctypes.sizeof(ctype), shape))
        _check_ndim(shape, ndim, name)
        flat = m.cast("B")
        if kind == "uint8":
            _check_binary(set(flat.tobytes()), name)
        if m.readonly or m.nbytes == 0:
            carr = (ctype * max(math.prod(shape), 1)).from_buffer_copy(
                flat.tobytes() or bytes(ctypes.sizeof(ctype)))
        else:
            carr = (ctype * math.prod(shape)).from_buffer(flat)  # zero copy
        return Input(ctypes.cast(carr, ctypes.POINTER(ctype)), shape, (m, carr))
    # Another item format (or a non-contiguous view): convert element by element.
    values = m.tolist()
    flat, nshape = _flatten_nested(values, name)
    if math.prod(shape) != len(flat):
        raise ShapeError("%s: %d values do not fill shape %s" % (name, len(flat), shape))
    return as_input((array.array(code, [int(v) if kind in ("uint8", "int32", "int64") else v
                                        for v in flat]), shape), kind, name, ndim)


def output(shape, kind):
    """A new zero-filled array and a pointer to its memory: (result, ptr)."""
    ctype, code, dtype, _ = _KINDS[kind]
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if np is not None:
        a = np.zeros(shape, dtype=dtype)
        return a, a.ctypes.data_as(ctypes.POINTER(ctype))
    buf = array.array(code, bytes(ctypes.sizeof(ctype) * max(n, 1)))
    carr = (ctype * max(n, 1)).from_buffer(buf)
    view = memoryview(buf).cast("B")[: n * ctypes.sizeof(ctype)].cast(code, shape) \
        if n else memoryview(buf).cast("B")[:0].cast(code)
    return view, ctypes.cast(carr, ctypes.POINTER(ctype))


def row(x, i):
    """x[i] of an output array: NumPy indexing, or for a memoryview (which has no
    multi-dimensional indexing) the same bytes as a view of shape x.shape[1:]."""
    if np is not None and isinstance(x, np.ndarray):
        return x[i]
    shape = tuple(x.shape[1:])
    size = math.prod(shape) * x.itemsize
    flat = x.cast("B")[i * size:(i + 1) * size]
    return flat.cast(x.format, shape) if shape else flat.cast(x.format)


def tolist(x):
    """A NumPy array or a memoryview output as nested lists."""
    return x.tolist()
