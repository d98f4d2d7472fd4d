"""mosaic.metrics single-label and regression metrics (confusion, class_metrics,
regression) against plain NumPy computations of scikit-learn's definitions
(docs/metrics.md, "Single-label metrics"). Skipped while the library lacks them."""

import math

import pytest

import mosaic
from mosaic import _ffi, metrics

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not hasattr(_ffi, "msc_metrics_confusion"),
                                reason="libmosaic has no msc_metrics_confusion yet")


def ref_confusion(pred, truth, c, ignore):
    keep = truth != ignore if ignore >= 0 else np.ones(truth.shape, bool)
    m = np.zeros((c, c), np.int64)
    np.add.at(m, (truth[keep], pred[keep]), 1)
    return m


def ref_scores(pred, truth, c, ignore):
    """accuracy, macro F1, mIoU over sklearn's label set (classes in truth ∪ pred) and
    the per-class arrays, from the label vectors directly."""
    keep = truth != ignore if ignore >= 0 else np.ones(truth.shape, bool)
    p, t = pred[keep], truth[keep]
    labels = np.union1d(p, t)
    f1 = np.full(c, np.nan)
    iou = np.full(c, np.nan)
    for k in labels:
        tp = np.sum((p == k) & (t == k))
        prec = tp / np.sum(p == k) if np.any(p == k) else 0.0
        rec = tp / np.sum(t == k) if np.any(t == k) else 0.0
        f1[k] = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
        iou[k] = tp / np.sum((p == k) | (t == k))
    return np.mean(p == t), np.mean(f1[labels]), np.mean(iou[labels]), f1, iou, len(p)


@pytest.mark.parametrize("ignore", [-1, 255, 3])
def test_against_numpy(ignore):
    rng = np.random.default_rng(7)
    c = 6
    truth = rng.integers(0, c, 500).astype(np.int32)
    pred = np.where(rng.random(500) < 0.6, truth, rng.integers(0, c, 500)).astype(np.int32)
    pred[pred == 5] = 0          # class 5: true, never predicted
    truth[truth == 4] = 1        # class 4: predicted, never true
    if ignore == 255:
        truth[rng.random(500) < 0.2] = 255
    m = metrics.confusion(pred, truth, c, ignore_index=ignore)
    assert m.dtype == np.int64 and m.shape == (c, c)
    np.testing.assert_array_equal(m, ref_confusion(pred, truth, c, ignore))
    r = metrics.class_metrics(m)
    acc, mf1, miou, f1, iou, counted = ref_scores(pred, truth, c, ignore)
    assert r["counted"] == counted
    assert r["accuracy"] == pytest.approx(acc, rel=1e-12)
    assert r["macro_f1"] == pytest.approx(mf1, rel=1e-12)
    assert r["miou"] == pytest.approx(miou, rel=1e-12)
    np.testing.assert_allclose(r["f1"], f1, rtol=1e-12)
    np.testing.assert_allclose(r["iou"], iou, rtol=1e-12)


def test_absent_class_is_nan():
    m = metrics.confusion([0, 1, 1], [0, 1, 0], 4)
    r = metrics.class_metrics(m)
    assert r["present"] == 2 and math.isnan(r["f1"][3]) and math.isnan(r["iou"][2])
    # classes 0: P 1, R 1/2 → F1 2/3; 1: P 1/2, R 1 → 2/3. IoU 1/2 each.
    assert r["macro_f1"] == pytest.approx(2 / 3) and r["miou"] == pytest.approx(0.5)


def test_regression():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=100).astype(np.float32)
    pred = (truth + rng.normal(scale=0.3, size=100)).astype(np.float32)
    truth[::7] = np.nan
    ok = np.isfinite(truth)
    e = pred[ok].astype(np.float64) - truth[ok].astype(np.float64)
    r = metrics.regression(pred, truth)
    assert r["mae"] == pytest.approx(np.mean(np.abs(e)), rel=1e-12)
    assert r["rmse"] == pytest.approx(np.sqrt(np.mean(e ** 2)), rel=1e-12)
    r = metrics.regression([1.0], [float("nan")])
    assert math.isnan(r["mae"]) and math.isnan(r["rmse"])


def test_errors():
    with pytest.raises(mosaic.InvalidArgumentError, match=r"pred\[1\]"):
        metrics.confusion([0, 3], [0, 1], 3)
    with pytest.raises(mosaic.ShapeError):
        metrics.confusion([0, 1], [0], 3)
    with pytest.raises(mosaic.InvalidArgumentError):
        metrics.confusion([0.5], [0], 3)
    with pytest.raises(mosaic.InvalidArgumentError):
        metrics.class_metrics(np.array([[1, -1], [0, 1]]))
    with pytest.raises(mosaic.ShapeError):
        metrics.class_metrics(np.zeros((2, 3), np.int64))
    with pytest.raises(mosaic.NumericalError, match=r"pred\[0\]"):
        metrics.regression([float("inf")], [1.0])


def _sklearn_top_k(scores, truth, k):
    # scikit-learn's top_k_accuracy_score: a stable ascending sort, reversed.
    order = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float(np.mean([t in row for t, row in zip(truth, order)]))


def test_top_k_accuracy_against_sklearn_rule():
    rng = np.random.default_rng(4)
    # Coarse scores so that ties are frequent.
    scores = rng.integers(0, 4, size=(200, 6)).astype(np.float32)
    truth = rng.integers(0, 6, size=200).astype(np.int32)
    for k in (1, 2, 3, 6):
        acc, counted = metrics.top_k_accuracy(scores, truth, k=k)
        assert counted == 200
        assert acc == pytest.approx(_sklearn_top_k(scores, truth, k), abs=1e-12)
    truth2 = truth.copy()
    truth2[:50] = -1
    acc, counted = metrics.top_k_accuracy(scores, truth2, k=2, ignore_index=-1)
    assert counted == 150
    assert acc == pytest.approx(_sklearn_top_k(scores[50:], truth[50:], 2), abs=1e-12)
