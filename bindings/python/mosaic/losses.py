"""The loss terms of the MoSAiC objective as plain functions (msc_loss_*).

Embeddings are given unnormalised (the functions normalise every row), as 2-D float32
arrays; labels as multi-hot arrays of 0/1. Each function returns the loss as a float,
or with grad=True a tuple (loss, gradient(s)) whose gradients have the shapes of the
inputs and are with respect to the unnormalised embeddings. Definitions: docs/losses.md and
the header's documentation of msc_loss_ntxent, msc_loss_infonce, msc_loss_mulsupcon,
msc_loss_bce and msc_loss_softmax_ce.

The per-pixel losses pixel_ce, pixel_bce and dice take N × C × H × W logits (NCHW) and
return gradients of that shape (docs/losses.md, "Per-pixel losses"; msc_loss_pixel_ce,
msc_loss_pixel_bce, msc_loss_dice).
"""

import ctypes
from typing import Optional, Tuple, Union

from . import _arrays
from . import _ffi
from ._core import check
from ._errors import InvalidArgumentError, ShapeError
from ._types import Array, ArrayLike

__all__ = ["ntxent", "infonce", "mulsupcon", "bce", "softmax_ce", "pixel_ce", "pixel_bce",
           "dice"]


def _pair(x, y, names):
    a = _arrays.as_input(x, "float32", names[0], ndim=2)
    b = _arrays.as_input(y, "float32", names[1], ndim=2)
    if a.shape != b.shape:
        raise ShapeError("%s is %s but %s is %s: they must have the same shape"
                         % (names[0], a.shape, names[1], b.shape))
    return a, b


def _grad(want, shape):
    if not want:
        return None, None
    return _arrays.output(shape, "float32")


def ntxent(za: ArrayLike, zb: ArrayLike, tau: float = 0.1,
           grad: bool = False) -> Union[float, Tuple[float, Array, Array]]:
    """NT-Xent (SimCLR) over the 2N views (rows of za, then of zb); za, zb: N × D.
    Returns loss, or (loss, grad_a, grad_b) with grad=True."""
    a, b = _pair(za, zb, ("za", "zb"))
    loss = ctypes.c_float()
    ga, pa = _grad(grad, a.shape)
    gb, pb = _grad(grad, a.shape)
    check(_ffi.msc_loss_ntxent(a.ptr, b.ptr, a.shape[0], a.shape[1], float(tau),
                               ctypes.byref(loss), pa, pb))
    return (loss.value, ga, gb) if grad else loss.value


def infonce(zp: ArrayLike, zq: ArrayLike, tau: float = 0.1,
            grad: bool = False) -> Union[float, Tuple[float, Array, Array]]:
    """Symmetric InfoNCE (CLIP-style) between paired rows of zp and zq (N × D each).
    Returns loss, or (loss, grad_p, grad_q) with grad=True."""
    p, q = _pair(zp, zq, ("zp", "zq"))
    loss = ctypes.c_float()
    gp, pp = _grad(grad, p.shape)
    gq, pq = _grad(grad, p.shape)
    check(_ffi.msc_loss_infonce(p.ptr, q.ptr, p.shape[0], p.shape[1], float(tau),
                                ctypes.byref(loss), pp, pq))
    return (loss.value, gp, gq) if grad else loss.value


def mulsupcon(e: ArrayLike, y: ArrayLike, tau: float = 0.1, per_anchor: bool = False,
              grad: bool = False) -> Union[float, Tuple[float, Array]]:
    """MulSupCon over K embeddings e (K × D) with multi-hot labels y (K × C).
    per_anchor: weight rows per anchor instead of the mean over rows.
    Returns loss, or (loss, grad) with grad=True."""
    ea = _arrays.as_input(e, "float32", "e", ndim=2)
    ya = _arrays.as_input(y, "uint8", "y", ndim=2)
    if ya.shape[0] != ea.shape[0]:
        raise ShapeError("e has %d rows but y has %d" % (ea.shape[0], ya.shape[0]))
    loss = ctypes.c_float()
    g, pg = _grad(grad, ea.shape)
    check(_ffi.msc_loss_mulsupcon(ea.ptr, ya.ptr, ea.shape[0], ea.shape[1], ya.shape[1],
                                  float(tau), 1 if per_anchor else 0, ctypes.byref(loss), pg))
    return (loss.value, g) if grad else loss.value


def bce(logits: ArrayLike, y: ArrayLike,
        grad: bool = False) -> Union[float, Tuple[float, Array]]:
    """Binary cross-entropy with logits (N × C) against targets y (N × C, 0/1), averaged
    over all entries. Returns loss, or (loss, grad) with grad=True."""
    x = _arrays.as_input(logits, "float32", "logits", ndim=2)
    ya = _arrays.as_input(y, "uint8", "y", ndim=2)
    if ya.shape != x.shape:
        raise ShapeError("logits are %s but y is %s" % (x.shape, ya.shape))
    loss = ctypes.c_float()
    g, pg = _grad(grad, x.shape)
    check(_ffi.msc_loss_bce(x.ptr, ya.ptr, x.shape[0], x.shape[1], ctypes.byref(loss), pg))
    return (loss.value, g) if grad else loss.value


def softmax_ce(logits: ArrayLike, y: ArrayLike,
               grad: bool = False) -> Union[float, Tuple[float, Array]]:
    """Single-label softmax cross-entropy of logits (N × C) against one-hot targets y
    (N × C, exactly one 1 per row; or N class indices), averaged over the N rows.
    Returns loss, or (loss, grad) with grad=True: grad = (softmax − onehot)/N."""
    if not hasattr(_ffi, "msc_loss_softmax_ce"):
        from ._errors import UnsupportedError
        raise UnsupportedError("the loaded libmosaic has no msc_loss_softmax_ce")
    x = _arrays.as_input(logits, "float32", "logits", ndim=2)
    if _arrays.have_numpy():
        import numpy as np
        yy = np.asarray(y)
        if yy.ndim == 1 and yy.shape[0] == x.shape[0]:  # class indices → one-hot rows
            if yy.dtype.kind not in "iu":
                raise InvalidArgumentError("class indices must be integers, got dtype %s"
                                           % yy.dtype)
            if yy.size and (yy.min() < 0 or yy.max() >= x.shape[1]):
                raise InvalidArgumentError("a class index is outside [0, %d)" % x.shape[1])
            onehot = np.zeros(x.shape, np.uint8)
            onehot[np.arange(x.shape[0]), yy] = 1
            y = onehot
    ya = _arrays.as_input(y, "uint8", "y", ndim=2)
    if ya.shape != x.shape:
        raise ShapeError("logits are %s but y is %s" % (x.shape, ya.shape))
    loss = ctypes.c_float()
    g, pg = _grad(grad, x.shape)
    check(_ffi.msc_loss_softmax_ce(x.ptr, ya.ptr, x.shape[0], x.shape[1], ctypes.byref(loss),
                                   pg))
    return (loss.value, g) if grad else loss.value


def _need(name):
    if not hasattr(_ffi, name):
        from ._errors import UnsupportedError
        raise UnsupportedError("the loaded libmosaic has no %s" % name)


def _images(logits, target, target_kind):
    """logits N × C × H × W; class-index targets N × H × W (BCE: N × C × H × W floats)."""
    x = _arrays.as_input(logits, "float32", "logits", ndim=4)
    n, c, h, w = x.shape
    t = _arrays.as_input(target, target_kind, "target",
                         ndim=3 if target_kind == "int32" else 4)
    want = (n, h, w) if target_kind == "int32" else (n, c, h, w)
    if tuple(t.shape) != want:
        raise ShapeError("logits are %s, so target must be %s, got %s"
                         % (tuple(x.shape), want, tuple(t.shape)))
    return x, t


def _per_channel(v, c, name):
    if v is None:
        return None
    a = _arrays.as_input(v, "float32", name, ndim=1)
    if a.shape[0] != c:
        raise ShapeError("%s has %d entries but there are %d channels" % (name, a.shape[0], c))
    return a


def pixel_ce(logits: ArrayLike, target: ArrayLike, ignore_index: int = -1,
             weight: Optional[ArrayLike] = None,
             grad: bool = False) -> Union[float, Tuple[float, Array]]:
    """Per-pixel softmax cross-entropy of logits (N × C × H × W) against class indices
    target (N × H × W integers); pixels whose target is ignore_index are not counted.
    weight: optional C class weights; the value is then Σ w_t·l / Σ w_t over counted
    pixels (PyTorch's F.cross_entropy(weight=, ignore_index=, reduction="mean")).
    Nothing counted: 0 and a zero gradient. Returns loss, or (loss, grad) with grad=True."""
    _need("msc_loss_pixel_ce")
    x, t = _images(logits, target, "int32")
    n, c, h, w = x.shape
    cw = _per_channel(weight, c, "weight")
    loss = ctypes.c_float()
    g, pg = _grad(grad, x.shape)
    check(_ffi.msc_loss_pixel_ce(x.ptr, t.ptr, n, c, h, w, int(ignore_index),
                                 cw.ptr if cw is not None else None, ctypes.byref(loss), pg))
    return (loss.value, g) if grad else loss.value


def pixel_bce(logits: ArrayLike, target: ArrayLike, mask: Optional[ArrayLike] = None,
              pos_weight: Optional[ArrayLike] = None,
              grad: bool = False) -> Union[float, Tuple[float, Array]]:
    """Per-pixel binary cross-entropy with logits (N × K × H × W) against soft targets of
    the same shape in [0, 1]. mask: optional array of that shape, 0 = not counted.
    pos_weight: optional K positive weights (PyTorch's BCEWithLogitsLoss). The mean over
    counted elements; nothing counted: 0 and a zero gradient.
    Returns loss, or (loss, grad) with grad=True."""
    _need("msc_loss_pixel_bce")
    x, t = _images(logits, target, "float32")
    n, k, h, w = x.shape
    m = None
    if mask is not None:
        if _arrays.have_numpy():
            import numpy as np
            mask = (np.asarray(mask) != 0).astype(np.uint8)
        m = _arrays.as_input(mask, "uint8", "mask", ndim=4)
        if tuple(m.shape) != tuple(x.shape):
            raise ShapeError("mask is %s but logits are %s" % (tuple(m.shape), tuple(x.shape)))
    pw = _per_channel(pos_weight, k, "pos_weight")
    loss = ctypes.c_float()
    g, pg = _grad(grad, x.shape)
    check(_ffi.msc_loss_pixel_bce(x.ptr, t.ptr, m.ptr if m is not None else None, n, k, h, w,
                                  pw.ptr if pw is not None else None, ctypes.byref(loss), pg))
    return (loss.value, g) if grad else loss.value


def dice(logits: ArrayLike, target: ArrayLike, ignore_index: int = -1,
         grad: bool = False) -> Union[float, Tuple[float, Array]]:
    """Soft Dice loss on the per-pixel softmax of logits (N × C × H × W) against class
    indices target (N × H × W): 1 − mean over the classes present in the counted targets
    of (2·Σp·g + 1)/(Σp + Σg + 1), sums over the whole batch. ignore_index as pixel_ce.
    Returns loss, or (loss, grad) with grad=True."""
    _need("msc_loss_dice")
    x, t = _images(logits, target, "int32")
    n, c, h, w = x.shape
    loss = ctypes.c_float()
    g, pg = _grad(grad, x.shape)
    check(_ffi.msc_loss_dice(x.ptr, t.ptr, n, c, h, w, int(ignore_index), ctypes.byref(loss),
                             pg))
    return (loss.value, g) if grad else loss.value
