"""Multi-label evaluation metrics with scikit-learn's definitions (msc_metrics_*).

scores: N × C (e.g. Model.predict's probabilities); labels: N × C multi-hot (0/1).
compute() returns the summary metrics as a dict named after the header's MSC_METRIC_*
constants (macro_ap, micro_ap, macro_f1, micro_f1, hamming, brier, ...);
per_class() the per-class arrays. available() says whether the loaded library has
the metrics functions.
"""

import ctypes

from . import _arrays
from . import _ffi
from ._core import check
from ._errors import ShapeError, UnsupportedError

__all__ = ["available", "compute", "per_class", "NAMES"]

#: Metric names in the order of their MSC_METRIC_* indices (the header's).
NAMES = tuple(name[len("MSC_METRIC_"):].lower() for _, name in sorted(
    (getattr(_ffi, n), n) for n in dir(_ffi)
    if n.startswith("MSC_METRIC_") and n != "MSC_METRIC_COUNT"))

_INTEGER = ("skipped_classes",)


def available():
    return hasattr(_ffi, "msc_metrics_compute") and hasattr(_ffi, "msc_metrics_per_class")


def _require(name):
    if not hasattr(_ffi, name):
        raise UnsupportedError("the loaded libmosaic has no %s" % name)


def _inputs(scores, labels):
    s = _arrays.as_input(scores, "float32", "scores", ndim=2)
    y = _arrays.as_input(labels, "uint8", "labels", ndim=2)
    if s.shape != y.shape:
        raise ShapeError("scores are %s but labels are %s" % (s.shape, y.shape))
    return s, y


def compute(scores, labels, threshold=0.5):
    """The summary metrics: {name: value} (NaN where undefined, e.g. macro_ap without
    any positive); skipped_classes is an int."""
    _require("msc_metrics_compute")
    s, y = _inputs(scores, labels)
    count = getattr(_ffi, "MSC_METRIC_COUNT", len(NAMES))
    out = (ctypes.c_double * count)()
    check(_ffi.msc_metrics_compute(s.ptr, y.ptr, s.shape[0], s.shape[1], float(threshold),
                                   out, count))
    return {name: (int(out[i]) if name in _INTEGER else out[i])
            for i, name in enumerate(NAMES)}


def per_class(scores, labels, threshold=0.5):
    """Per-class metrics: {"ap", "f1", "hamming", "brier": C float64 values (ap NaN
    for a class without positives), "support": C int64 counts}."""
    _require("msc_metrics_per_class")
    s, y = _inputs(scores, labels)
    c = s.shape[1]
    res = {}
    ptrs = []
    for name in ("ap", "f1", "hamming", "brier"):
        res[name], p = _arrays.output((c,), "float64")
        ptrs.append(p)
    res["support"], psup = _arrays.output((c,), "int64")
    check(_ffi.msc_metrics_per_class(s.ptr, y.ptr, s.shape[0], c, float(threshold),
                                     *ptrs, psup, c))
    return res
