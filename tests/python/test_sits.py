"""mosaic.sits against plain NumPy references written from docs/pimc.md's formulas:
the five indices with scale and offset, the NaN policy (non-finite bands, zero
denominators), the band table, and recurrence plots (continuous, binary with ε or a
percentile, gap filling with and without days, bilinear resize); plus the errors."""

import pytest

import mosaic
from mosaic import sits

np = pytest.importorskip("numpy")

PASTIS = (0, 1, 2, 6, 9)  # channels of B2, B3, B4, B8, B12


# --- references (float64, rounded to float32 once) -------------------------------------

def ref_index(kind, x, bands=PASTIS, scale=10000.0, offset=0.0):
    """x: T × C × ...; returns T × ... float32 with NaN where invalid."""
    x = x.astype(np.float64)
    r = {name: (x[:, ch] + offset) / scale if ch >= 0 else None
         for name, ch in zip(("b2", "b3", "b4", "b8", "b12"), bands)}
    with np.errstate(all="ignore"):
        if kind == "ndvi":
            num, den = r["b8"] - r["b4"], r["b8"] + r["b4"]
        elif kind == "evi":
            num, den = 2.5 * (r["b8"] - r["b4"]), r["b8"] + 6 * r["b4"] - 7.5 * r["b2"] + 1
        elif kind == "savi":
            num, den = 1.5 * (r["b8"] - r["b4"]), r["b8"] + r["b4"] + 0.5
        elif kind == "ndwi":
            num, den = r["b3"] - r["b8"], r["b3"] + r["b8"]
        else:
            num, den = r["b8"] - r["b12"], r["b8"] + r["b12"]
        bad = ~np.isfinite(num) | ~np.isfinite(den) | (np.abs(den) < 1e-12)
        v = np.where(bad, np.nan, num / np.where(bad, 1.0, den)).astype(np.float32)
    v[~np.isfinite(v)] = np.nan
    return v


def ref_fill(v, days):
    ok = np.isfinite(v)
    if not ok.any():
        return None
    d = np.arange(len(v), dtype=np.float64) if days is None else np.asarray(days, np.float64)
    out = v.astype(np.float64).copy()
    out[~ok] = np.interp(d[~ok], d[ok], v[ok].astype(np.float64))
    return out.astype(np.float32)


def ref_resize(r, s):
    t = r.shape[0]
    if s == t:
        return r
    c = np.maximum((np.arange(s) + 0.5) * t / s - 0.5, 0.0)
    lo = np.floor(c).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (c - lo)[:, None]
    rows = r[lo] + w * (r[hi] - r[lo])                     # s × t
    return (rows[:, lo] + w.T * (rows[:, hi] - rows[:, lo])).astype(np.float32)


def ref_plot(v, binary, eps, percentile, size, days):
    t = len(v)
    s = size or t
    f = ref_fill(v, days)
    if f is None:
        return np.zeros((s, s), np.float32), 0
    d = np.abs(f[:, None] - f[None, :]).astype(np.float32)
    if binary:
        if percentile is not None:
            iu = np.triu_indices(t, 1)
            e = np.percentile(d[iu].astype(np.float64), percentile) if t > 1 else 0.0
        else:
            e = eps
        d = (d.astype(np.float64) <= e).astype(np.float32)
    return ref_resize(d, s), 1


def series(rng, t=6, c=10, h=5, w=4):
    return rng.uniform(0, 6000, size=(t, c, h, w)).astype(np.float32)


# --- vegetation indices ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ndvi", "evi", "savi", "ndwi", "nbr"])
def test_indices_match_reference(kind):
    rng = np.random.default_rng(1)
    x = series(rng)
    got = sits.vegetation_index(kind, x)
    assert got.shape == (6, 5, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_index(kind, x), rtol=2e-6, atol=1e-7)
    # T × C × P gives the same values, flattened
    flat = sits.vegetation_index(kind, x.reshape(6, 10, 20))
    assert flat.shape == (6, 20)
    assert np.array_equal(flat, got.reshape(6, 20), equal_nan=True)
    # the kind as its MSC_VI_* value
    k = getattr(sits, kind.upper())
    assert np.array_equal(sits.vegetation_index(k, x), got, equal_nan=True)


def test_scale_offset_and_band_table():
    rng = np.random.default_rng(2)
    x = rng.uniform(1000, 6000, size=(3, 5, 7)).astype(np.float32)
    bands = {"b2": 4, "b3": 3, "b4": 0, "b8": 1, "b12": 2}
    for kind in sits.KINDS:
        got = sits.vegetation_index(kind, x, bands=bands, scale=1e4, offset=-1000)
        ref = ref_index(kind, x, bands=(4, 3, 0, 1, 2), scale=1e4, offset=-1000.0)
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7)
    # a sequence of five channels, -1 for the bands NDVI does not use
    got = sits.vegetation_index("ndvi", x, bands=(-1, -1, 0, 1, -1), scale=2.5)
    np.testing.assert_allclose(got, ref_index("ndvi", x, (-1, -1, 0, 1, -1), 2.5),
                               rtol=2e-6, atol=1e-7)


def test_nan_policy():
    rng = np.random.default_rng(3)
    x = series(rng, t=4, h=3, w=3)
    x[0, 6, 0, 0] = np.nan        # B8 NaN: every index invalid there
    x[1, 2, 1, 1] = np.inf        # B4 infinite: NDVI, EVI, SAVI invalid
    x[2, 2, 2, 2] = x[2, 6, 2, 2] = 0  # B4 = B8 = 0: NDVI denominator 0
    x[3, 0, 0, 1] = np.nan        # B2 NaN: only EVI
    for kind in sits.KINDS:
        got, valid = sits.vegetation_index(kind, x, return_valid=True)
        ref = ref_index(kind, x)
        assert np.array_equal(np.isnan(got), np.isnan(ref)), kind
        assert np.array_equal(valid, np.isfinite(ref).astype(np.uint8)), kind
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7)
        assert np.isnan(got[0, 0, 0])
    ndvi, valid = sits.vegetation_index("ndvi", x, return_valid=True)
    assert np.isnan(ndvi[1, 1, 1]) and np.isnan(ndvi[2, 2, 2]) and valid[2, 2, 2] == 0
    assert np.isfinite(ndvi[3, 0, 1])
    assert np.isnan(sits.vegetation_index("evi", x)[3, 0, 1])
    assert np.isfinite(sits.vegetation_index("nbr", x)[1, 1, 1])


def test_index_errors():
    x = np.ones((2, 10, 3), np.float32)
    with pytest.raises(mosaic.InvalidArgumentError, match="kind"):
        sits.vegetation_index(7, x)
    with pytest.raises(mosaic.InvalidArgumentError):
        sits.vegetation_index("ndxi", x)
    with pytest.raises(mosaic.InvalidArgumentError, match="B12"):
        sits.vegetation_index("nbr", x, bands={"b8": 6})
    with pytest.raises(mosaic.InvalidArgumentError, match="channel"):
        sits.vegetation_index("ndvi", x, bands={"b4": 2, "b8": 10})
    with pytest.raises(mosaic.InvalidArgumentError, match="scale"):
        sits.vegetation_index("ndvi", x, scale=0)
    with pytest.raises(mosaic.ShapeError):
        sits.vegetation_index("ndvi", np.ones((10, 3), np.float32))


# --- recurrence plots ------------------------------------------------------------------

def check_plots(x, pixels, indices, binary=False, eps=None, percentile=None, size=0,
                days=None, atol=1e-6):
    plots, valid = sits.recurrence_plots(x, pixels, indices=indices, binary=binary, eps=eps,
                                         percentile=percentile, size=size, days=days)
    t = x.shape[0]
    s = size or t
    assert plots.shape == (len(pixels), len(indices), s, s) and plots.dtype == np.float32
    assert valid.shape == (len(pixels), len(indices))
    for i, (r, c) in enumerate(pixels):
        for k, kind in enumerate(indices):
            v = ref_index(kind, x[:, :, r:r + 1, c:c + 1])[:, 0, 0]
            ref, ok = ref_plot(v, binary, eps, percentile, size, days)
            assert valid[i, k] == ok
            np.testing.assert_allclose(plots[i, k], ref, rtol=1e-5, atol=atol,
                                       err_msg="pixel %d index %s" % (i, kind))
    return plots, valid


def test_plots_continuous_and_resized():
    rng = np.random.default_rng(4)
    x = series(rng, t=12)
    pix = [(0, 0), (4, 3), (2, 1)]
    check_plots(x, pix, ("ndvi", "evi", "savi"))
    check_plots(x, pix, ("ndwi", "nbr"), size=8)
    check_plots(x, pix, ("ndvi",), size=20)
    p, _ = sits.recurrence_plots(x, pix)  # defaults: NDVI, EVI, SAVI, T × T
    assert p.shape == (3, 3, 12, 12)
    assert np.all(np.diagonal(p, axis1=2, axis2=3) == 0)


def test_plots_binary():
    rng = np.random.default_rng(5)
    x = series(rng, t=10)
    pix = [(1, 1), (3, 2)]
    check_plots(x, pix, ("ndvi", "savi"), binary=True, eps=0.1)
    check_plots(x, pix, ("ndvi", "evi"), binary=True, percentile=30, size=6)
    p, _ = check_plots(x, pix, ("ndvi",), binary=True, eps=0.0)
    assert np.all(np.diagonal(p, axis1=2, axis2=3) == 1)


def test_plots_nan_dates_and_days():
    rng = np.random.default_rng(6)
    x = series(rng, t=8, h=3, w=3)
    x[[0, 3, 4, 7], 6, 1, 1] = np.nan     # cloudy dates of pixel (1, 1): filled
    x[:, 6, 2, 0] = np.nan                # pixel (2, 0) never valid: zeros, valid 0
    days = np.array([3, 10, 11, 40, 41, 100, 200, 201], np.float64)
    pix = [(1, 1), (2, 0), (0, 2)]
    _, valid = check_plots(x, pix, ("ndvi", "nbr"))
    assert valid.tolist() == [[1, 1], [0, 0], [1, 1]]
    check_plots(x, pix, ("ndvi",), days=days)
    check_plots(x, pix, ("ndvi",), binary=True, percentile=50, size=5, days=days)


def test_plots_errors():
    x = np.ones((4, 10, 3, 3), np.float32)
    with pytest.raises(mosaic.InvalidArgumentError, match="outside"):
        sits.recurrence_plots(x, [(3, 0)])
    with pytest.raises(mosaic.InvalidArgumentError, match="index"):
        sits.recurrence_plots(x, [(0, 0)], indices=(0, 9))
    with pytest.raises(mosaic.InvalidArgumentError, match="n_indices"):
        sits.recurrence_plots(x, [(0, 0)], indices=())
    with pytest.raises(mosaic.InvalidArgumentError, match="eps"):
        sits.recurrence_plots(x, [(0, 0)], binary=True, percentile=101)
    with pytest.raises(mosaic.InvalidArgumentError):
        sits.recurrence_plots(x, [(0, 0)], binary=True)
    with pytest.raises(mosaic.InvalidArgumentError, match="days"):
        sits.recurrence_plots(x, [(0, 0)], days=[1, 2, 2, 3])
    with pytest.raises(mosaic.InvalidArgumentError, match="size"):
        sits.recurrence_plots(x, [(0, 0)], size=5000)
    with pytest.raises(mosaic.ShapeError):
        sits.recurrence_plots(x, [0, 0, 1])
    p, v = sits.recurrence_plots(x, np.zeros((0, 2), np.int64))
    assert p.shape == (0, 3, 4, 4) and v.shape == (0, 3)
