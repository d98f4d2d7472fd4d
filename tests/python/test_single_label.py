"""Single-label classification from Python: mosaic.losses.softmax_ce against a NumPy
reference and central finite differences, a single-label model's softmax predictions
and training, and Dataset.single_label on the real EuroSAT sample (docs/losses.md,
"Single-label classification")."""

import os

import pytest

import mosaic
from mosaic import _ffi, losses

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not hasattr(_ffi, "msc_loss_softmax_ce"),
                                reason="libmosaic has no msc_loss_softmax_ce yet")

from conftest import ROOT, TINY, random_inputs  # noqa: E402


def ref_ce(x, t):
    """mean_i [log Σ_j exp x_ij − x_{i,t_i}] in float64, without the max trick."""
    x = x.astype(np.float64)
    return float(np.mean(np.log(np.exp(x).sum(axis=1)) - x[np.arange(len(t)), t]))


def test_value_gradient_and_index_form():
    rng = np.random.default_rng(4)
    x = (2 * rng.normal(size=(6, 5))).astype(np.float32)
    t = rng.integers(0, 5, 6)
    y = np.eye(5, dtype=np.uint8)[t]
    loss, g = losses.softmax_ce(x, y, grad=True)
    assert loss == pytest.approx(ref_ce(x, t), rel=1e-6)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, (p - y) / 6, atol=1e-7)
    h = 1e-4
    x64 = x.astype(np.float64)
    for i, j in [(0, 0), (2, 3), (5, 4)]:
        up, down = x64.copy(), x64.copy()
        up[i, j] += h
        down[i, j] -= h
        fd = (ref_ce(up, t) - ref_ce(down, t)) / (2 * h)
        assert g[i, j] == pytest.approx(fd, abs=1e-6)
    assert losses.softmax_ce(x, t) == loss  # class indices give the same one-hot rows


def test_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(mosaic.InvalidArgumentError, match="row 1 has 2 positive labels"):
        losses.softmax_ce(x, [[1, 0, 0], [0, 1, 1]])
    with pytest.raises(mosaic.InvalidArgumentError):
        losses.softmax_ce(x, np.array([0, 3]))
    with pytest.raises(mosaic.ShapeError):
        losses.softmax_ce(x, np.zeros((2, 4), np.uint8))


def test_single_label_model_predicts_softmax_and_trains():
    s1, s2, _ = random_inputs(8, seed=3)
    y = np.eye(4, dtype=np.uint8)[np.arange(8) % 4]
    with mosaic.Model.create(dict(TINY, labels="single", **{"train.preset": "supervised"})) as m:
        p = m.predict(s1=s1, s2=s2)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
        r = m.train_step(s1=s1, s2=s2, labels=y)
        assert r.loss_bce == pytest.approx(r.loss) and 0.5 < r.loss_bce < 4.0
        with pytest.raises(mosaic.InvalidArgumentError, match="sample 0"):
            bad = y.copy()
            bad[0, 1] = 1
            m.train_step(s1=s1, s2=s2, labels=bad)
    with mosaic.Model.create(TINY) as m:  # multi-label: independent sigmoids
        p = m.predict(s1=s1, s2=s2)
        assert np.max(np.abs(p.sum(axis=1) - 1)) > 0.05


def test_eurosat_is_single_label():
    root = os.path.join(ROOT, "tests", "data", "eurosat-ms")
    if not os.path.isdir(root):
        pytest.skip("no EuroSAT sample")
    with mosaic.Dataset(root, "eurosat", split="all") as ds:
        assert ds.single_label
        opts = mosaic.Options.from_dataset(ds, {"modality.0.encoder": "tiny"},
                                           stats="computed", stats_samples=2)
        assert opts["labels"] == "single"
