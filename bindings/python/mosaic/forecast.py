"""Pixel-level forecasting of a vegetation index from a PIMC model's recurrence-plot
embedding, reported beside persistence: the protocol of `mosaic eval --protocol forecast`
(docs/pimc.md, "Forecasting") through the C API, with the ridge regression in NumPy.

Both splits are opened with data.sits.history = k (the plots show the first L − k dates)
and data.sits.plot_size = the model's "rp" size. Features: the rp-encoder embedding
(Model.embed(kind="features", modality="rp")) and the newest history values of the
index; targets: the index at the last k dates (Dataset.series + sits.vegetation_index),
NaN targets skipped. One ridge regression per step of the change from the last history
value (target − last; the forecast is last + the prediction), fitted on the training split in closed
form (features standardised on the fitting rows, target centred, λ default
1e-3 · trace(X̃ᵀX̃) / D, Cholesky in float64). Persistence holds the last finite history
value; a sample without one is left out of both.

    import mosaic, mosaic.forecast as fc
    model = mosaic.Model.load("pimc.safetensors")
    r = fc.evaluate(model, "pastis/", horizon=2)
    r["methods"]["model"]["mae"], r["methods"]["persistence"]["mae"]
"""

from typing import Any, Dict, Optional, Tuple

from . import _core
from . import sits
from ._errors import InvalidArgumentError, NotFoundError
from ._types import Array, ArrayLike, OptionsLike, PathLike

__all__ = ["ridge_fit", "ridge_predict", "split_features", "evaluate"]


def _np():
    import numpy
    return numpy


def ridge_fit(x: ArrayLike, y: ArrayLike, lam: Optional[float] = None) -> Dict[str, Any]:
    """Fits y ≈ bias + w · (x − mean) / scale on the rows whose y is finite. x: N × D,
    y: N. scale: the population standard deviation of each feature over those rows (1
    where it is below 1e-12). lam: λ ≥ 0, or None for 1e-3 · trace(X̃ᵀX̃) / D (1e-3 when
    the trace is 0). Returns a dict mean, scale, w, bias, lam, rows."""
    np = _np()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise InvalidArgumentError("ridge_fit: x must be N × D and y N values")
    rows = np.isfinite(y)
    if not rows.any():
        raise InvalidArgumentError("ridge_fit: no row has a finite target")
    xr, yr = x[rows], y[rows]
    if not np.isfinite(xr).all():
        raise InvalidArgumentError("ridge_fit: a feature is not finite")
    mean = xr.mean(axis=0)
    scale = xr.std(axis=0)
    scale[scale < 1e-12] = 1.0
    xs = (xr - mean) / scale
    bias = yr.mean()
    a = xs.T @ xs
    if lam is None:
        tr = np.trace(a)
        lam = 1e-3 * tr / x.shape[1] if tr > 0 else 1e-3
    if lam < 0:
        raise InvalidArgumentError("ridge_fit: lam must be >= 0")
    chol = np.linalg.cholesky(a + lam * np.eye(x.shape[1]))
    z = np.linalg.solve(chol, xs.T @ (yr - bias))
    w = np.linalg.solve(chol.T, z)
    return {"mean": mean, "scale": scale, "w": w, "bias": float(bias), "lam": float(lam),
            "rows": int(rows.sum())}


def ridge_predict(m: Dict[str, Any], x: ArrayLike) -> Array:
    """Predictions of a ridge_fit model for the rows of x (N × D)."""
    np = _np()
    x = np.asarray(x, dtype=np.float64)
    return m["bias"] + ((x - m["mean"]) / m["scale"]) @ m["w"]


def _rp_modality(model):
    if "rp" not in model.modality_names:
        raise NotFoundError("the model has no 'rp' modality (forecasting needs a model "
                            "trained on format pastis)")
    return model.modality_shape("rp")[1]


RECENT = 8  # history values among the features, as tools/forecast.c (FC_RECENT)


def split_features(model: "_core.Model", dataset: "_core.Dataset", horizon: int,
                   index: str = "ndvi", scale: float = 10000, offset: float = 0,
                   batch_size: int = 64) -> Tuple[Array, Array, Array]:
    """(x, y, last) of an open dataset (opened with data.sits.history = horizon): x N × (D+m)
    the rp embedding and the m = min(8, T − horizon) newest history values of the index,
    newest first (a missing one repeats the newer one; 0 for a sample without a finite
    history), y N × horizon the index at the last dates (NaN where missing, and for a
    sample without a finite history value), last N the persistence forecast (NaN where
    none). The index is computed with the PASTIS band table and the given reflectance
    scale and offset."""
    np = _np()
    k = int(horizon)
    n = len(dataset)
    emb = []
    for b in dataset.batches(batch_size):
        with b:
            emb.append(model.embed(b, kind="features", modality="rp"))
    emb = np.concatenate(emb, axis=0).astype(np.float64)
    y = np.full((n, k), np.nan)
    last = np.full(n, np.nan)
    recent = None
    for i in range(n):
        series, _ = dataset.series(i)
        t = series.shape[0]
        if t - k < 1:
            raise InvalidArgumentError("horizon %d leaves no history of %d dates" % (k, t))
        vi = sits.vegetation_index(index, series.reshape(t, -1, 1), scale=scale,
                                   offset=offset)
        vi = np.asarray(vi, dtype=np.float64).reshape(t)
        hist = vi[:t - k]
        finite = np.flatnonzero(np.isfinite(hist))
        if finite.size:
            last[i] = hist[finite[-1]]
            y[i] = vi[t - k:]
        if recent is None:
            recent = np.zeros((n, min(RECENT, t - k)))
        prev = 0.0 if np.isnan(last[i]) else last[i]
        for j in range(recent.shape[1]):
            v = hist[t - k - 1 - j]
            if np.isfinite(v) and not np.isnan(last[i]):
                prev = v
            recent[i, j] = prev
    x = np.concatenate([emb, recent], axis=1)
    return x, y, last


def _errors(pred, y):
    np = _np()
    ok = np.isfinite(y)
    e = (pred - y)[ok]
    return (float(np.abs(e).mean()) if e.size else float("nan"),
            float(np.sqrt((e * e).mean())) if e.size else float("nan"), int(e.size))


def evaluate(model: "_core.Model", root: PathLike, horizon: int, index: str = "ndvi",
             options: OptionsLike = None, split: str = "test",
             train_split: Optional[str] = None, lam: Optional[float] = None,
             batch_size: int = 64) -> Dict[str, Any]:
    """The forecasting protocol on the PASTIS dataset at root: ridge fitted on train_split
    (None: data.split of options, default "train"), scored on split. options: the
    dataset options (dict or Options; the data.sits.* of the training run). Returns a dict
    with horizon, index, train_samples, samples, lam (per step), targets_per_step and
    "methods": {"model": {...}, "persistence": {...}}, each {"mae", "rmse",
    "mae_per_step", "rmse_per_step"} (the keys of `mosaic eval --json`)."""
    np = _np()
    k = int(horizon)
    size = _rp_modality(model)
    base = _core.Options(options)
    try:
        base["data.sits.history"] = k
        base["data.sits.plot_size"] = int(size)
        sc = float(base.get("data.sits.scale"))
        off = float(base.get("data.sits.offset"))
        tr_opts = base.copy()
        te_opts = base.copy()
    finally:
        base.close()
    if train_split is not None:
        tr_opts["data.split"] = train_split
    te_opts["data.split"] = split
    te_opts["data.fraction"] = 1.0
    with tr_opts, te_opts:
        with _core.Dataset(root, "pastis", tr_opts) as tr:
            xtr, ytr, ltr = split_features(model, tr, k, index, sc, off, batch_size)
        with _core.Dataset(root, "pastis", te_opts) as te:
            xte, yte, last = split_features(model, te, k, index, sc, off, batch_size)
    pred = np.full_like(yte, np.nan)
    lams = []
    for j in range(k):
        # The change from the last history value: shrinkage pulls towards persistence.
        m = ridge_fit(xtr, ytr[:, j] - ltr, lam)
        lams.append(m["lam"])
        pred[:, j] = last + ridge_predict(m, xte)
    pers = np.repeat(last[:, None], k, axis=1)
    out = {"horizon": k, "index": index, "train_samples": int(xtr.shape[0]),
           "samples": int(xte.shape[0]), "lam": lams,
           "targets_per_step": [int(np.isfinite(yte[:, j]).sum()) for j in range(k)]}
    out["methods"] = {}
    for name, p in (("model", pred), ("persistence", pers)):
        mae, rmse, _ = _errors(p, yte)
        steps = [_errors(p[:, j], yte[:, j]) for j in range(k)]
        out["methods"][name] = {"mae": mae, "rmse": rmse, "mae_per_step": [s[0] for s in steps],
                     "rmse_per_step": [s[1] for s in steps]}
    return out
