"""Satellite image time series: vegetation indices and recurrence plots
(msc_vegetation_index, msc_recurrence_plots; formulas and policies in docs/pimc.md and
the header's documentation).

A series is a float32 array T × C × P or T × C × H × W of Sentinel-2 digital numbers
(T dates, C bands). The band table says which channel holds B2, B3, B4, B8 and B12
(default: the PASTIS DATA_S2 order, channels 0, 1, 2, 6, 9) and how digital numbers
become reflectances, ρ = (DN + offset) / scale. An index is NaN (valid False) where a
band it uses is not finite or its denominator is below 1e-12 in magnitude.

    import mosaic.sits as sits
    ndvi = sits.vegetation_index("ndvi", s2)                 # T × H × W
    plots, valid = sits.recurrence_plots(s2, [(3, 4), (10, 2)], size=32)
"""

import ctypes
from typing import Any, Optional, Sequence, Tuple, Union

from . import _arrays
from . import _ffi
from ._core import check
from ._errors import InvalidArgumentError, ShapeError, UnsupportedError
from ._types import Array, ArrayLike

__all__ = ["available", "vegetation_index", "recurrence_plots", "KINDS", "PASTIS_BANDS",
           "NDVI", "EVI", "SAVI", "NDWI", "NBR"]

NDVI = _ffi.MSC_VI_NDVI
EVI = _ffi.MSC_VI_EVI
SAVI = _ffi.MSC_VI_SAVI
NDWI = _ffi.MSC_VI_NDWI
NBR = _ffi.MSC_VI_NBR

#: Index names in the order of their MSC_VI_* values (the header's).
KINDS = tuple(name[len("MSC_VI_"):].lower() for _, name in sorted(
    (getattr(_ffi, n), n) for n in dir(_ffi)
    if n.startswith("MSC_VI_") and n != "MSC_VI_COUNT"))

#: Channels of B2, B3, B4, B8, B12 in PASTIS's DATA_S2 (B2..B8, B8A, B11, B12).
PASTIS_BANDS = {"b2": 0, "b3": 1, "b4": 2, "b8": 6, "b12": 9}

_BAND_NAMES = ("b2", "b3", "b4", "b8", "b12")


def available() -> bool:
    """Whether the loaded library has the functions (libmosaic 0.2 or later)."""
    return hasattr(_ffi, "msc_vegetation_index") and hasattr(_ffi, "msc_recurrence_plots")


def _require(name):
    if not hasattr(_ffi, name):
        raise UnsupportedError("the loaded libmosaic has no %s" % name)


def _kind(k):
    """An index kind given as a name ("ndvi") or an MSC_VI_* value."""
    if isinstance(k, str):
        try:
            return KINDS.index(k.lower())
        except ValueError:
            raise InvalidArgumentError("unknown index %r, expected one of %s"
                                       % (k, ", ".join(KINDS))) from None
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidArgumentError("an index is a name or an int, got %r" % (k,))
    return k  # range checked by the library


def _bands(bands, scale, offset):
    """The msc_vi_bands of bands (None: PASTIS; a dict of b2/b3/b4/b8/b12 channels, the
    missing ones absent; or a sequence of the 5 channels, -1 for absent)."""
    if bands is None:
        bands = PASTIS_BANDS
    if isinstance(bands, dict):
        unknown = set(bands) - set(_BAND_NAMES)
        if unknown:
            raise InvalidArgumentError("unknown band(s) %s, expected %s"
                                       % (sorted(unknown), ", ".join(_BAND_NAMES)))
        ch = [bands.get(n, -1) for n in _BAND_NAMES]
    else:
        ch = list(bands)
        if len(ch) != 5:
            raise InvalidArgumentError("bands: expected the 5 channels of B2, B3, B4, B8, "
                                       "B12, got %d" % len(ch))
    b = _ffi.msc_vi_bands()
    b.struct_size = ctypes.sizeof(_ffi.msc_vi_bands)
    b.b2, b.b3, b.b4, b.b8, b.b12 = (-1 if v is None else int(v) for v in ch)
    b.scale = float(scale)
    b.offset = float(offset)
    return b


def _series(series, name="series"):
    x = _arrays.as_input(series, "float32", name)
    if len(x.shape) not in (3, 4):
        raise ShapeError("%s: expected T × C × P or T × C × H × W, got shape %s"
                         % (name, x.shape))
    return x


def vegetation_index(kind: Union[str, int], series: ArrayLike, bands: Any = None,
                     scale: float = 10000, offset: float = 0,
                     return_valid: bool = False) -> Union[Array, Tuple[Array, Array]]:
    """Index kind ("ndvi", "evi", "savi", "ndwi", "nbr" or sits.NDVI ...) of series
    (T × C × P or T × C × H × W digital numbers): a float32 array T × P (or T × H × W),
    NaN where invalid. bands: None (PASTIS), a dict {"b2": 0, "b4": 2, "b8": 6, ...}
    or the 5 channels of B2, B3, B4, B8, B12 (-1 for absent). ρ = (DN + offset) / scale.
    With return_valid=True, returns (values, valid) with valid a uint8 array of the same
    shape, 1 where the value is finite."""
    _require("msc_vegetation_index")
    k = _kind(kind)
    x = _series(series)
    t, c = x.shape[0], x.shape[1]
    rest = x.shape[2:]
    p = 1
    for d in rest:
        p *= d
    b = _bands(bands, scale, offset)
    out, pout = _arrays.output((t,) + rest, "float32")
    valid, pvalid = _arrays.output((t,) + rest, "uint8") if return_valid else (None, None)
    check(_ffi.msc_vegetation_index(k, x.ptr, t, c, p, ctypes.byref(b), pout, pvalid))
    return (out, valid) if return_valid else out


def recurrence_plots(series: ArrayLike, pixels: ArrayLike,
                     indices: Sequence[Union[str, int]] = ("ndvi", "evi", "savi"),
                     binary: bool = False, eps: Optional[float] = None,
                     percentile: Optional[float] = None, size: int = 0,
                     days: Optional[ArrayLike] = None, bands: Any = None,
                     scale: float = 10000, offset: float = 0) -> Array:
    """Recurrence plots of the index series of pixels of series (T × C × H × W digital
    numbers). pixels: N (row, column) pairs. indices: the K indices (names or MSC_VI_*
    values). binary: False for R_ij = |x_i − x_j|; True for R_ij = 1 where
    |x_i − x_j| <= ε, with ε = eps, or the percentile-th percentile of the series'
    off-diagonal distances (give exactly one of eps and percentile). size: S, the side
    the plots are resized to (0 keeps T). days: None or T increasing times (e.g. days of
    year), used to fill NaN dates by linear interpolation.
    Returns (plots, valid): float32 N × K × S × S and uint8 N × K (0 for a series without
    any finite date, whose plots are zeros)."""
    _require("msc_recurrence_plots")
    x = _arrays.as_input(series, "float32", "series", ndim=4)
    t, c, h, w = x.shape
    yx = _arrays.as_input(pixels, "int64", "pixels")
    if yx.size == 0:
        n = 0
    elif len(yx.shape) != 2 or yx.shape[1] != 2:
        raise ShapeError("pixels: expected N × 2 (row, column) pairs, got shape %s"
                         % (yx.shape,))
    else:
        n = yx.shape[0]
    if isinstance(indices, (str, int)):
        indices = (indices,)
    kinds = [_kind(k) for k in indices]
    kk = len(kinds)
    if binary:
        if (eps is None) == (percentile is None):
            raise InvalidArgumentError("binary plots need exactly one of eps and percentile")
    elif eps is not None or percentile is not None:
        raise InvalidArgumentError("eps and percentile are for binary plots only")
    params = _ffi.msc_rp_params()
    params.struct_size = ctypes.sizeof(_ffi.msc_rp_params)
    params.n_indices = kk
    idx = (ctypes.c_int32 * max(kk, 1))(*kinds)
    params.indices = ctypes.cast(idx, ctypes.POINTER(ctypes.c_int32))
    params.binary = 1 if binary else 0
    params.eps_is_percentile = 1 if percentile is not None else 0
    params.eps = float(percentile if percentile is not None else (eps or 0.0))
    params.size = int(size)
    d = None
    if days is not None:
        d = _arrays.as_input(days, "float64", "days", ndim=1)
        if d.shape[0] != t:
            raise ShapeError("days: %d values for %d dates" % (d.shape[0], t))
        params.days = d.ptr
    b = _bands(bands, scale, offset)
    s = int(size) if size else t
    if kk < 1 or s < 0:  # no output to allocate: the library names the bad value
        dummy = (ctypes.c_float * 1)()
        check(_ffi.msc_recurrence_plots(x.ptr, t, c, h, w, ctypes.byref(b),
                                        ctypes.byref(params), yx.ptr if n else None, n,
                                        dummy, None))
    out, pout = _arrays.output((n, kk, s, s), "float32")
    valid, pvalid = _arrays.output((n, kk), "uint8")
    check(_ffi.msc_recurrence_plots(x.ptr, t, c, h, w, ctypes.byref(b), ctypes.byref(params),
                                    yx.ptr if n else None, n, pout, pvalid))
    del idx, d  # kept alive until after the call
    return out, valid
