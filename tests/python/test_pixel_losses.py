"""Per-pixel losses from Python: mosaic.losses.pixel_ce, pixel_bce and dice against NumPy
computations written here from the definitions (docs/losses.md, "Per-pixel losses"),
gradients against central finite differences, and argument errors."""

import pytest

from mosaic import _ffi, losses
from mosaic._errors import InvalidArgumentError, ShapeError

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not hasattr(_ffi, "msc_loss_dice"),
                                reason="libmosaic has no per-pixel losses yet")


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_pixel_ce(x, t, ignore=-1, w=None):
    """Σ w_t·(lse − x_t) / Σ w_t over counted pixels, float64, NCHW."""
    x = x.astype(np.float64)
    n, c, h, ww = x.shape
    xs = x.transpose(0, 2, 3, 1).reshape(-1, c)
    tt = t.reshape(-1)
    keep = tt != ignore
    xs, tt = xs[keep], tt[keep]
    lse = np.log(np.exp(xs).sum(axis=1))
    l = lse - xs[np.arange(len(tt)), tt]
    wt = np.ones(len(tt)) if w is None else np.asarray(w, np.float64)[tt]
    return float((wt * l).sum() / wt.sum()) if wt.sum() > 0 else 0.0


def np_pixel_bce(x, y, mask=None, pw=None):
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    k = x.shape[1]
    p = np.ones((1, k, 1, 1)) if pw is None else np.asarray(pw, np.float64).reshape(1, k, 1, 1)
    s = 1 / (1 + np.exp(-x))
    l = -p * y * np.log(s) - (1 - y) * np.log(1 - s)
    m = np.ones(x.shape, bool) if mask is None else mask.astype(bool)
    return float(l[m].mean()) if m.any() else 0.0


def np_dice(x, t, ignore=-1):
    c = x.shape[1]
    p = softmax(x.astype(np.float64)).transpose(0, 2, 3, 1).reshape(-1, c)
    tt = t.reshape(-1)
    keep = tt != ignore
    if not keep.any():
        return 0.0
    p, tt = p[keep], tt[keep]
    g = np.eye(c)[tt]
    inter, ps, gs = (p * g).sum(0), p.sum(0), g.sum(0)
    present = gs > 0
    d = (2 * inter + 1) / (ps + gs + 1)
    return float(1 - d[present].mean())


def fd_check(f, x, g, coords, h=1e-4, tol=2e-5):
    x64 = x.astype(np.float64)
    for idx in coords:
        up, down = x64.copy(), x64.copy()
        up[idx] += h
        down[idx] -= h
        assert g[idx] == pytest.approx((f(up) - f(down)) / (2 * h), abs=tol)


def case(seed, n=2, c=4, h=5, w=3):
    rng = np.random.default_rng(seed)
    x = (1.5 * rng.normal(size=(n, c, h, w))).astype(np.float32)
    t = rng.integers(0, c, (n, h, w)).astype(np.int32)
    t[rng.random((n, h, w)) < 0.2] = -1
    return rng, x, t


COORDS = [(0, 0, 0, 0), (1, 3, 4, 2), (0, 2, 1, 1), (1, 1, 2, 0)]


def test_pixel_ce_against_numpy():
    rng, x, t = case(1)
    loss, g = losses.pixel_ce(x, t, grad=True)
    assert loss == pytest.approx(np_pixel_ce(x, t), rel=1e-6)
    fd_check(lambda v: np_pixel_ce(v, t), x, g, COORDS)
    assert np.all(g.transpose(0, 2, 3, 1)[t == -1] == 0)
    w = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
    loss, g = losses.pixel_ce(x, t, weight=w, grad=True)
    assert loss == pytest.approx(np_pixel_ce(x, t, w=w), rel=1e-6)
    fd_check(lambda v: np_pixel_ce(v, t, w=w), x, g, COORDS)
    # 255 as the void value
    t2 = np.where(t == -1, 255, t).astype(np.int32)
    assert losses.pixel_ce(x, t2, ignore_index=255) == pytest.approx(np_pixel_ce(x, t), rel=1e-6)


def test_pixel_bce_against_numpy():
    rng = np.random.default_rng(2)
    x = (1.5 * rng.normal(size=(2, 1, 4, 4))).astype(np.float32)  # a binary map
    y = (rng.random((2, 1, 4, 4)) < 0.4).astype(np.float32)
    loss, g = losses.pixel_bce(x, y, grad=True)
    assert loss == pytest.approx(np_pixel_bce(x, y), rel=1e-6)
    s = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(g, (s - y) / y.size, atol=1e-7)
    # multi-label, soft targets, a mask and positive weights
    x = (1.5 * rng.normal(size=(2, 3, 4, 5))).astype(np.float32)
    y = rng.random((2, 3, 4, 5)).astype(np.float32)
    mask = rng.random((2, 3, 4, 5)) < 0.7
    pw = np.array([1.0, 2.5, 0.5], np.float32)
    loss, g = losses.pixel_bce(x, y, mask=mask, pos_weight=pw, grad=True)
    assert loss == pytest.approx(np_pixel_bce(x, y, mask, pw), rel=1e-6)
    fd_check(lambda v: np_pixel_bce(v, y, mask, pw), x, g,
             [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 3), (1, 0, 1, 2)])
    assert np.all(g[~mask] == 0)


def test_dice_against_numpy():
    rng, x, t = case(3)
    loss, g = losses.dice(x, t, grad=True)
    assert loss == pytest.approx(np_dice(x, t), rel=1e-6)
    fd_check(lambda v: np_dice(v, t), x, g, COORDS, tol=1e-5)
    t[t == 3] = 0  # class 3 absent: not averaged
    assert losses.dice(x, t) == pytest.approx(np_dice(x, t), rel=1e-6)


def test_nothing_counted_and_one_pixel():
    x = np.zeros((1, 3, 2, 2), np.float32)
    t = np.full((1, 2, 2), -1, np.int32)
    for f in (losses.pixel_ce, losses.dice):
        loss, g = f(x, t, grad=True)
        assert loss == 0.0 and not g.any()
    loss, g = losses.pixel_bce(x, np.zeros_like(x), mask=np.zeros(x.shape), grad=True)
    assert loss == 0.0 and not g.any()
    one = np.array([[[[1.0]], [[2.0]], [[3.0]]]], np.float32)  # 1 × 3 × 1 × 1
    assert losses.pixel_ce(one, np.array([[[2]]], np.int32)) == pytest.approx(
        np.log(1 + np.exp(-1) + np.exp(-2)), rel=1e-6)


def test_errors():
    _, x, t = case(4)
    t[1, 2, 0] = 7
    with pytest.raises(InvalidArgumentError, match="image 1, y 2, x 0"):
        losses.pixel_ce(x, t)
    with pytest.raises(InvalidArgumentError, match="image 1, y 2, x 0"):
        losses.dice(x, t)
    with pytest.raises(ShapeError):
        losses.pixel_ce(x, t[:, :-1])
    with pytest.raises(ShapeError):
        losses.pixel_ce(x, np.zeros((2, 5, 3), np.int32), weight=[1, 2])
    with pytest.raises(InvalidArgumentError):
        losses.pixel_bce(x, np.full(x.shape, 2.0, np.float32))
