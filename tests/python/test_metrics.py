"""mosaic.metrics against NumPy references of scikit-learn's definitions (docs/metrics.md).
Skipped while the library has no msc_metrics_* functions."""

import math

import pytest

import mosaic
from mosaic import _ffi, metrics

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not hasattr(_ffi, "msc_metrics_compute"),
                                reason="libmosaic has no msc_metrics_compute yet")


def ref_ap(s, y):
    """Σ_k (R_k − R_{k−1}) P_k over the distinct thresholds, decreasing; NaN without positives."""
    if y.sum() == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order].astype(np.float64)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = last + 1 - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def ref_f1(pred, y):
    tp = np.sum(pred & y)
    fp = np.sum(pred & ~y)
    fn = np.sum(~pred & y)
    return 0.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def data(seed=3, n=40, c=6):
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < 0.3
    y[:, -1] = False  # a class without positives
    s = np.clip(y * 0.4 + rng.random((n, c)) * 0.7, 0, 1).astype(np.float32)
    s[:5, 0] = s[5:10, 0] = 0.5  # ties
    return s, y


def test_names():
    assert metrics.NAMES[_ffi.MSC_METRIC_MACRO_AP] == "macro_ap"
    assert metrics.NAMES[_ffi.MSC_METRIC_BRIER] == "brier"
    assert len(metrics.NAMES) == _ffi.MSC_METRIC_COUNT
    assert metrics.available()


def test_compute_and_per_class():
    s, y = data()
    t = 0.5
    m = metrics.compute(s, y, threshold=t)
    pc = metrics.per_class(s, y, threshold=t)
    c = y.shape[1]
    pred = s >= t
    ap = np.array([ref_ap(s[:, k], y[:, k]) for k in range(c)])
    np.testing.assert_allclose(pc["ap"], ap, rtol=1e-9, equal_nan=True)
    assert math.isnan(pc["ap"][-1])
    np.testing.assert_allclose(pc["f1"], [ref_f1(pred[:, k], y[:, k]) for k in range(c)],
                               rtol=1e-12)
    np.testing.assert_allclose(pc["hamming"], np.mean(pred != y, axis=0), rtol=1e-12)
    np.testing.assert_allclose(pc["brier"], np.mean((s.astype(np.float64) - y) ** 2, axis=0),
                               rtol=1e-6)
    np.testing.assert_array_equal(pc["support"], y.sum(axis=0))
    assert m["macro_ap"] == pytest.approx(np.nanmean(ap), rel=1e-9)
    assert m["macro_ap_zero"] == pytest.approx(np.nan_to_num(ap).mean(), rel=1e-9)
    assert m["skipped_classes"] == 1 and isinstance(m["skipped_classes"], int)
    assert m["micro_ap"] == pytest.approx(ref_ap(s.ravel(), y.ravel()), rel=1e-9)
    assert m["macro_f1"] == pytest.approx(np.mean(pc["f1"]), rel=1e-12)
    assert m["micro_f1"] == pytest.approx(ref_f1(pred.ravel(), y.ravel()), rel=1e-12)
    assert m["hamming"] == pytest.approx(np.mean(pred != y), rel=1e-12)
    assert m["brier"] == pytest.approx(np.mean((s.astype(np.float64) - y) ** 2), rel=1e-6)


def test_with_predictions():
    """The metrics of a model's predictions: the whole chain from Python."""
    from conftest import TINY, random_inputs
    s1, s2, y = random_inputs(6)
    with mosaic.Model.create(TINY) as model:
        m = metrics.compute(model.predict(s1=s1, s2=s2), y)
    assert 0 <= m["macro_ap"] <= 1 and 0 <= m["brier"] <= 1


def test_errors():
    s, y = data()
    with pytest.raises(mosaic.ShapeError):
        metrics.compute(s, y[:, :3])
    bad = s.copy()
    bad[2, 1] = np.nan
    with pytest.raises(mosaic.NumericalError):
        metrics.compute(bad, y)
    with pytest.raises(mosaic.InvalidArgumentError):
        metrics.compute(s, np.full(y.shape, 3, np.uint8))
    with pytest.raises(mosaic.InvalidArgumentError):
        metrics.compute(s, y, threshold=float("nan"))
