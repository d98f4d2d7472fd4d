"""mosaic.forecast (the forecasting protocol in NumPy over the C API) and
Dataset.series (msc_dataset_series): the ridge regression against hand-solved cases,
persistence against NDVI computed here from the series."""

import math

import pytest

import mosaic
from conftest import EXAMPLE_DATA, needs_numpy, np

pytestmark = needs_numpy

SITS = {"data.sits.pixels": 2, "data.sits.length": 12, "data.sits.patch": 16}


@pytest.fixture(scope="module")
def pastis(tmp_path_factory):
    d = tmp_path_factory.mktemp("pastis_fc")
    mosaic.synth_write(d, 10, seed=5, format="pastis")
    return str(d)


def test_ridge_1d_by_hand():
    import mosaic.forecast as fc
    # x = (−1, 1) is standardised already; y = (0, 2) → bias 1, Xᵀy = 2, XᵀX = 2; λ = 2
    # gives w = 1/2. The NaN-target row (x = 100) is ignored.
    m = fc.ridge_fit([[-1.0], [1.0], [100.0]], [0.0, 2.0, float("nan")], lam=2.0)
    assert m["rows"] == 2 and m["bias"] == pytest.approx(1.0)
    assert fc.ridge_predict(m, [[1.0], [3.0]]) == pytest.approx([1.5, 2.5])
    # The default λ is 1e-3 · trace / D = 2e-3.
    assert fc.ridge_fit([[-1.0], [1.0]], [0.0, 2.0])["lam"] == pytest.approx(2e-3)


def test_ridge_2d_by_hand():
    import mosaic.forecast as fc
    # Rows (±1, ±1): mean 0, std 1, XᵀX = 4I. y = (0, 2, 1, 5): mean 2, Xᵀ(y − 2) = (6, 4);
    # λ = 4 → w = (6/8, 4/8), prediction at (1, 1) = 2 + 0.75 + 0.5.
    x = [[-1, -1], [1, -1], [-1, 1], [1, 1]]
    m = fc.ridge_fit(x, [0, 2, 1, 5], lam=4.0)
    assert m["w"] == pytest.approx([0.75, 0.5])
    assert fc.ridge_predict(m, [[1, 1]])[0] == pytest.approx(3.25)
    # No penalty, exact plane y = 2 x1 − 3 x2 + 5: exact at (10, −1).
    x = [[0, 0], [1, 0], [0, 2], [3, 1]]
    y = [2 * a - 3 * b + 5 for a, b in x]
    assert fc.ridge_predict(fc.ridge_fit(x, y, lam=0.0), [[10, -1]])[0] == pytest.approx(28.0)


def test_series(pastis):
    with mosaic.Dataset(pastis, "pastis", SITS) as ds:
        x, days = ds.series(0)
        assert x.shape == (12, 10) and x.dtype == np.float32 and days.shape == (12,)
        assert np.all(np.diff(days) > 0)
    with mosaic.Dataset(pastis, "pastis", dict(SITS, **{"data.sits.sample": "patch"})) as ds:
        assert ds.series(-1)[0].shape == (12, 10)
    with mosaic.Dataset(EXAMPLE_DATA, "bigearthnet-v2", split="all") as ds:
        with pytest.raises(mosaic.UnsupportedError):
            ds.series(0)


def ndvi(series):
    r4, r8 = series[:, 2].astype(np.float64), series[:, 6].astype(np.float64)
    return (r8 - r4) / (r8 + r4)


def test_forecast_persistence_matches_numpy(pastis):
    import mosaic.forecast as fc
    with mosaic.Dataset(pastis, "pastis", SITS) as ds:
        o = mosaic.Options.from_dataset(ds, {"modality.0.encoder": "tiny",
                                             "modality.1.encoder": "tiny", "seed": 1,
                                             "threads": 1}, stats="computed",
                                        stats_samples=8)
    with o, mosaic.Model.create(o) as model:
        r = fc.evaluate(model, pastis, 2, options=SITS)
    errs = []
    with mosaic.Dataset(pastis, "pastis", dict(SITS, **{"data.split": "test"})) as ds:
        for i in range(len(ds)):
            v = ndvi(ds.series(i)[0])
            last = v[:-2][np.isfinite(v[:-2])][-1]
            errs += [last - y for y in v[-2:] if np.isfinite(y)]
    errs = np.array(errs)
    p = r["methods"]["persistence"]
    assert sum(r["targets_per_step"]) == errs.size > 0
    assert p["mae"] == pytest.approx(np.abs(errs).mean(), abs=1e-6)
    assert p["rmse"] == pytest.approx(math.sqrt((errs ** 2).mean()), abs=1e-6)
    assert len(p["mae_per_step"]) == 2
    m = r["methods"]["model"]
    assert all(math.isfinite(v) for v in [m["mae"], m["rmse"]] + m["mae_per_step"])
