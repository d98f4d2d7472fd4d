"""mosaic.losses against NumPy references written from docs/losses.md's formulas, with the
gradients checked against central finite differences of the references."""

import pytest

import mosaic
from mosaic import losses

np = pytest.importorskip("numpy")


# --- references (float64) ---------------------------------------------------------------

def normalise(z):
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def lse(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def ref_ntxent(za, zb, tau):
    """l_i = −s(u_i,u_pos(i)) + log Σ_{k≠i} exp s(u_i,u_k); mean over the 2N views."""
    u = normalise(np.concatenate([za, zb]).astype(np.float64))
    n2 = len(u)
    n = n2 // 2
    s = u @ u.T / tau
    total = 0.0
    for i in range(n2):
        pos = (i + n) % n2
        others = np.delete(s[i], i)
        total += -s[i, pos] + lse(others)
    return total / n2


def ref_infonce(zp, zq, tau):
    """½[CE(S) + CE(Sᵀ)], S_ij = s(p_i, q_j), CE(S) = (1/N) Σ_i [−S_ii + log Σ_j exp S_ij]."""
    s = normalise(zp.astype(np.float64)) @ normalise(zq.astype(np.float64)).T / tau

    def ce(m):
        return np.mean(-np.diag(m) + lse(m, axis=1))

    return 0.5 * (ce(s) + ce(s.T))


def ref_mulsupcon(e, y, tau, per_anchor=False):
    """Rows r = (i, c) with y_ic = 1 and P_r = {j ≠ i : y_jc = 1} non-empty:
    loss_r = −(1/|P_r|) Σ_{p∈P_r} [s(e_i,e_p) − log Σ_{j≠i} exp s(e_i,e_j)]."""
    z = normalise(e.astype(np.float64))
    s = z @ z.T / tau
    k, c = y.shape
    rows = []  # (anchor, loss_r)
    for i in range(k):
        denom = lse(np.delete(s[i], i))
        for cls in range(c):
            if not y[i, cls]:
                continue
            pos = [j for j in range(k) if j != i and y[j, cls]]
            if not pos:
                continue
            rows.append((i, -np.mean([s[i, p] - denom for p in pos])))
    if not rows:
        return 0.0
    if not per_anchor:
        return sum(l for _, l in rows) / len(rows)
    anchors = {i for i, _ in rows}
    return sum(l / (y[i].sum() * len(anchors)) for i, l in rows)


def ref_bce(x, y):
    x = x.astype(np.float64)
    return np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))


def numeric_grad(f, x, eps=1e-6):
    x = x.astype(np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f(x)
        x[idx] = old - eps
        down = f(x)
        x[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def close(a, b, rtol=2e-4, atol=2e-5):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# --- tests ------------------------------------------------------------------------------

@pytest.fixture
def rng():
    return np.random.default_rng(11)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_ntxent(rng, tau):
    za = rng.normal(size=(5, 6)).astype(np.float32)
    zb = rng.normal(size=(5, 6)).astype(np.float32)
    loss, ga, gb = losses.ntxent(za, zb, tau, grad=True)
    close(loss, ref_ntxent(za, zb, tau))
    assert losses.ntxent(za, zb, tau) == loss
    close(ga, numeric_grad(lambda a: ref_ntxent(a, zb, tau), za), atol=1e-4)
    close(gb, numeric_grad(lambda b: ref_ntxent(za, b, tau), zb), atol=1e-4)
    assert ga.shape == za.shape and ga.dtype == np.float32


def test_infonce(rng):
    zp = rng.normal(size=(6, 4)).astype(np.float32)
    zq = rng.normal(size=(6, 4)).astype(np.float32)
    loss, gp, gq = losses.infonce(zp, zq, 0.2, grad=True)
    close(loss, ref_infonce(zp, zq, 0.2))
    close(gp, numeric_grad(lambda p: ref_infonce(p, zq, 0.2), zp), atol=1e-4)
    close(gq, numeric_grad(lambda q: ref_infonce(zp, q, 0.2), zq), atol=1e-4)


@pytest.mark.parametrize("per_anchor", [False, True])
def test_mulsupcon(rng, per_anchor):
    e = rng.normal(size=(7, 5)).astype(np.float32)
    y = (rng.random((7, 3)) < 0.5).astype(np.uint8)
    y[0] = 0          # a key that is never an anchor
    y[1] = [1, 1, 0]  # shares several labels
    y[2] = [1, 1, 1]
    loss, g = losses.mulsupcon(e, y, 0.3, per_anchor=per_anchor, grad=True)
    close(loss, ref_mulsupcon(e, y, 0.3, per_anchor))
    close(g, numeric_grad(lambda x: ref_mulsupcon(x, y, 0.3, per_anchor), e), atol=1e-4)


def test_mulsupcon_without_rows(rng):
    e = rng.normal(size=(3, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.uint8)  # every class has one sample: no positives
    loss, g = losses.mulsupcon(e, y, 0.1, grad=True)
    assert loss == 0 and not np.any(g)


def test_bce(rng):
    x = (rng.normal(size=(4, 5)) * 30).astype(np.float32)  # large logits too
    y = rng.random((4, 5)) < 0.5
    loss, g = losses.bce(x, y, grad=True)
    close(loss, ref_bce(x, y))
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    close(g, (sig - y) / y.size)


def test_extreme_inputs_stay_finite():
    z = np.ones((4, 3), np.float32)  # identical embeddings, τ = 0.01
    loss, ga, gb = losses.ntxent(z, z, 0.01, grad=True)
    assert np.isfinite(loss) and np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
    close(loss, ref_ntxent(z, z, 0.01))


def test_loss_errors(rng):
    z = rng.normal(size=(3, 4)).astype(np.float32)
    with pytest.raises(mosaic.ShapeError):
        losses.ntxent(z, z[:2])                 # checked before the call
    with pytest.raises(mosaic.ShapeError):
        losses.infonce(z, z.ravel())
    with pytest.raises(mosaic.InvalidArgumentError) as e:
        losses.ntxent(z, z, tau=0)
    assert e.value.status == mosaic._ffi.MSC_E_INVALID_ARGUMENT and "tau" in str(e.value)
    with pytest.raises(mosaic.InvalidArgumentError):
        losses.bce(z, np.full((3, 4), 2, np.uint8))  # a label that is not 0/1
    with pytest.raises(mosaic.InvalidArgumentError):
        losses.bce(z, np.full((3, 4), 0.5))
    bad = z.copy()
    bad[1, 2] = np.inf
    with pytest.raises(mosaic.NumericalError):
        losses.ntxent(bad, z)
    with pytest.raises(mosaic.ShapeError):
        losses.mulsupcon(z, np.ones((2, 3), np.uint8))
    with pytest.raises(mosaic.InvalidArgumentError):
        losses.bce(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
