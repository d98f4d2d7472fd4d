"""Cluster coherence and projections of embeddings (docs/metrics.md, "Cluster coherence"
and "Projections"; msc_metrics_silhouette, _knn_purity, _group_by_label,
msc_project_pca, msc_project_tsne).

x is an N × D float32 array of embeddings (e.g. Model.embed's output); group an N-long
int array of classes (a negative group leaves the sample out). Multi-label data is
grouped first with group_by_label(labels). metric is "cosine" or "euclidean".
silhouette() equals scikit-learn's silhouette_score; pca() its PCA(k).fit_transform up
to each axis's sign; tsne() is exact t-SNE (N ≤ TSNE_MAX_SAMPLES).
"""

import ctypes
from typing import Optional, Tuple

from . import _arrays
from . import _ffi
from ._core import check
from ._errors import ShapeError, UnsupportedError
from ._types import Array, ArrayLike

__all__ = ["silhouette", "knn_purity", "group_by_label", "pca", "tsne", "TSNE_MAX_SAMPLES"]

#: The largest N tsne() accepts (exact t-SNE keeps N² affinities).
TSNE_MAX_SAMPLES = getattr(_ffi, "MSC_TSNE_MAX_SAMPLES", 0)

_METRICS = {"euclidean": "MSC_DISTANCE_EUCLIDEAN", "cosine": "MSC_DISTANCE_COSINE"}


def _require(name):
    if not hasattr(_ffi, name):
        raise UnsupportedError("the loaded libmosaic has no %s (0.5 or later)" % name)


def _metric(metric):
    if metric not in _METRICS:
        raise ValueError("metric must be 'cosine' or 'euclidean', not %r" % (metric,))
    return getattr(_ffi, _METRICS[metric])


def _rows_and_groups(x, group):
    e = _arrays.as_input(x, "float32", "x", ndim=2)
    g = _arrays.as_input(group, "int32", "group", ndim=1)
    if g.shape[0] != e.shape[0]:
        raise ShapeError("x has %d rows but group has %d entries" % (e.shape[0], g.shape[0]))
    return e, g


def silhouette(x: ArrayLike, group: ArrayLike, metric: str = "cosine") -> float:
    """The mean silhouette coefficient of the rows of x grouped by group, in [-1, 1]."""
    _require("msc_metrics_silhouette")
    e, g = _rows_and_groups(x, group)
    out = ctypes.c_double()
    check(_ffi.msc_metrics_silhouette(e.ptr, e.shape[0], e.shape[1], g.ptr, _metric(metric),
                                      ctypes.byref(out)))
    return out.value


def knn_purity(x: ArrayLike, group: ArrayLike, k: int = 10, metric: str = "cosine") -> float:
    """The mean share of each sample's k nearest other samples that share its group."""
    _require("msc_metrics_knn_purity")
    e, g = _rows_and_groups(x, group)
    out = ctypes.c_double()
    check(_ffi.msc_metrics_knn_purity(e.ptr, e.shape[0], e.shape[1], g.ptr, int(k),
                                      _metric(metric), ctypes.byref(out)))
    return out.value


def group_by_label(labels: ArrayLike) -> Array:
    """N × C multi-hot labels to N groups: each sample's rarest positive class (-1: none)."""
    _require("msc_metrics_group_by_label")
    y = _arrays.as_input(labels, "uint8", "labels", ndim=2)
    out, ptr = _arrays.output((y.shape[0],), "int32")
    check(_ffi.msc_metrics_group_by_label(y.ptr, y.shape[0], y.shape[1], ptr))
    return out


def pca(x: ArrayLike, k: int = 2) -> Tuple[Array, Array]:
    """(N × k projection, k variances along the axes) of the rows of x."""
    _require("msc_project_pca")
    e = _arrays.as_input(x, "float32", "x", ndim=2)
    out, ptr = _arrays.output((e.shape[0], int(k)), "float32")
    var, vptr = _arrays.output((int(k),), "float64")
    check(_ffi.msc_project_pca(e.ptr, e.shape[0], e.shape[1], int(k), ptr, vptr))
    return out, var


def tsne(x: ArrayLike, perplexity: float = 30.0, iterations: int = 1000) -> Array:
    """The N × 2 exact t-SNE embedding of the rows of x (deterministic: PCA start)."""
    _require("msc_project_tsne")
    e = _arrays.as_input(x, "float32", "x", ndim=2)
    out, ptr = _arrays.output((e.shape[0], 2), "float32")
    check(_ffi.msc_project_tsne(e.ptr, e.shape[0], e.shape[1], float(perplexity),
                                int(iterations), ptr))
    return out
