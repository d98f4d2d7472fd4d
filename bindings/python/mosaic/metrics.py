"""Evaluation metrics with scikit-learn's definitions (msc_metrics_*, docs/metrics.md).

Multi-label: scores N × C (e.g. Model.predict's probabilities); labels N × C multi-hot
(0/1). compute() returns the summary metrics as a dict named after the header's
MSC_METRIC_* constants (macro_ap, micro_ap, macro_f1, micro_f1, hamming, brier, ...);
per_class() the per-class arrays. available() says whether the loaded library has
the metrics functions.

Single-label: confusion(pred, truth, classes, ignore_index) counts the C × C confusion
matrix of class indices (row = true class, column = predicted); class_metrics(matrix)
gives accuracy, macro F1, mIoU and the per-class F1/IoU (macro means over the classes
present in the truth or the predictions, as scikit-learn). Regression: regression(pred,
truth) gives MAE and RMSE, skipping non-finite targets.
"""

import ctypes
from typing import Any, Dict, Optional, Tuple

from . import _arrays
from . import _ffi
from ._core import check
from ._errors import ShapeError, UnsupportedError
from ._types import Array, ArrayLike

__all__ = ["available", "compute", "per_class", "confusion", "class_metrics", "regression", "top_k_accuracy",
           "NAMES"]

#: Metric names in the order of their MSC_METRIC_* indices (the header's).
NAMES = tuple(name[len("MSC_METRIC_"):].lower() for _, name in sorted(
    (getattr(_ffi, n), n) for n in dir(_ffi)
    if n.startswith("MSC_METRIC_") and n != "MSC_METRIC_COUNT"))

_INTEGER = ("skipped_classes",)


def available() -> bool:
    """Whether the loaded library has the metric functions (libmosaic 0.2 or later)."""
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


def compute(scores: ArrayLike, labels: ArrayLike, threshold: float = 0.5) -> Dict[str, Any]:
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


def per_class(scores: ArrayLike, labels: ArrayLike,
              threshold: float = 0.5) -> Dict[str, Array]:
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


def _pair(pred, truth, kind):
    p = _arrays.as_input(pred, kind, "pred", ndim=1)
    t = _arrays.as_input(truth, kind, "truth", ndim=1)
    if p.shape != t.shape:
        raise ShapeError("pred is %s but truth is %s" % (p.shape, t.shape))
    return p, t


def confusion(pred: ArrayLike, truth: ArrayLike, classes: int,
              ignore_index: Optional[int] = None) -> Array:
    """The classes × classes confusion matrix (int64; row = true class, column =
    predicted) of two 1-D arrays of class indices; pairs whose truth equals
    ignore_index (e.g. -1 or 255) are skipped (None: none)."""
    _require("msc_metrics_confusion")
    p, t = _pair(pred, truth, "int32")
    c = int(classes)
    m, pm = _arrays.output((max(c, 0), max(c, 0)), "int64")
    ignore = _ffi.MSC_IGNORE_NONE if ignore_index is None else int(ignore_index)
    check(_ffi.msc_metrics_confusion(p.ptr, t.ptr, p.shape[0], c, ignore, pm))
    return m


def class_metrics(matrix: ArrayLike) -> Dict[str, Any]:
    """Summary of a confusion matrix: {"accuracy", "macro_f1", "miou": float (NaN when
    undefined), "counted", "present": int, "f1", "iou": per-class float64 arrays (NaN
    for a class absent from both the truth and the predictions)}."""
    _require("msc_metrics_from_confusion")
    m = _arrays.as_input(matrix, "int64", "matrix", ndim=2)
    c = m.shape[0]
    if m.shape[1] != c:
        raise ShapeError("the confusion matrix is %s, expected a square matrix" % (m.shape,))
    out = _ffi.msc_class_metrics()
    out.struct_size = ctypes.sizeof(out)
    f1, pf1 = _arrays.output((c,), "float64")
    iou, piou = _arrays.output((c,), "float64")
    check(_ffi.msc_metrics_from_confusion(m.ptr, c, ctypes.byref(out), pf1, piou))
    return {"accuracy": out.accuracy, "macro_f1": out.macro_f1, "miou": out.miou,
            "counted": int(out.counted), "present": int(out.present), "f1": f1, "iou": iou}


def regression(pred: ArrayLike, truth: ArrayLike) -> Dict[str, float]:
    """{"mae", "rmse"} of pred against truth (1-D float arrays), over the pairs whose
    truth is finite; NaN when there is none."""
    _require("msc_metrics_regression")
    p, t = _pair(pred, truth, "float32")
    mae, rmse = ctypes.c_double(), ctypes.c_double()
    check(_ffi.msc_metrics_regression(p.ptr, t.ptr, p.shape[0], ctypes.byref(mae),
                                      ctypes.byref(rmse)))
    return {"mae": mae.value, "rmse": rmse.value}


def top_k_accuracy(scores: ArrayLike, truth: ArrayLike, k: int = 5,
                   ignore_index: Optional[int] = None) -> Tuple[float, int]:
    """Top-k accuracy of N × C scores against N true class indices, as scikit-learn's
    top_k_accuracy_score (ties ranked towards the larger class index); rows whose truth
    is ignore_index are skipped (None: none). Returns (accuracy, rows counted)."""
    _require("msc_metrics_top_k")
    s = _arrays.as_input(scores, "float32", "scores", ndim=2)
    t = _arrays.as_input(truth, "int32", "truth", ndim=1)
    if s.shape[0] != t.shape[0]:
        raise ShapeError("scores has %d rows but truth %d" % (s.shape[0], t.shape[0]))
    acc = ctypes.c_double()
    counted = ctypes.c_int64()
    ignore = _ffi.MSC_IGNORE_NONE if ignore_index is None else int(ignore_index)
    check(_ffi.msc_metrics_top_k(s.ptr, t.ptr, s.shape[0], s.shape[1], int(k), ignore,
                                 ctypes.byref(acc), ctypes.byref(counted)))
    return acc.value, counted.value
