"""Synthetic time series in the PASTIS layout (msc_synth_write(dir, "pastis", ...),
docs/pimc.md "Synthetic time series") read with NumPy and json alone: an independent
reader of the .npy files and metadata.geojson."""

import datetime
import json
import os

import pytest

import mosaic

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def pastis_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pastis") / "ds"
    mosaic.synth_write(d, 4, seed=3, format="pastis")
    return d


def test_layout_dtypes_shapes_dates(pastis_dir):
    with open(os.path.join(pastis_dir, "metadata.geojson")) as f:
        meta = json.load(f)
    assert meta["type"] == "FeatureCollection"
    feats = meta["features"]
    assert [ft["properties"]["ID_PATCH"] for ft in feats] == [0, 1, 2, 3]
    lengths = set()
    for ft in feats:
        p = ft["properties"]
        assert ft["geometry"]["type"] == "Polygon"
        assert 1 <= p["Fold"] <= 5 and isinstance(p["TILE"], str)
        i = p["ID_PATCH"]
        s2 = np.load(os.path.join(pastis_dir, "DATA_S2", f"S2_{i}.npy"))
        target = np.load(os.path.join(pastis_dir, "ANNOTATIONS", f"TARGET_{i}.npy"))
        inst = np.load(os.path.join(pastis_dir, "INSTANCE_ANNOTATIONS", f"INSTANCES_{i}.npy"))
        assert s2.dtype == np.int16 and s2.ndim == 4 and s2.shape[1:] == (10, 32, 32)
        assert target.dtype == np.uint8 and target.shape == (3, 32, 32)
        assert inst.dtype == np.int64 and inst.shape == (32, 32)
        t = s2.shape[0]
        lengths.add(t)
        assert 20 <= t <= 28
        dates = p["dates-S2"]
        assert sorted(dates, key=int) == [str(k) for k in range(t)]
        days = [datetime.datetime.strptime(str(dates[str(k)]), "%Y%m%d") for k in range(t)]
        assert all(a < b for a, b in zip(days, days[1:])) and days[0].year == 2019
        # Labels: classes 0..19, at least two crops; the other channels repeat channel 0.
        sem = target[0]
        assert sem.max() <= 19
        assert len(set(np.unique(sem)) - {0, 19}) >= 2
        assert (target[1] == sem).all() and (target[2] == sem).all()
        assert ((inst == 0) == (sem == 0)).all()
        assert inst.max() == p["N_Parcel"]
        assert p["Parcel_Cover"] == pytest.approx((inst > 0).mean())
        # Reflectance: clear dates dark in blue, cloudy dates bright in every band.
        cloudy = np.zeros(t, bool)
        cloudy[p["synth-cloudy-S2"]] = True
        assert cloudy.any()
        assert (s2[cloudy] >= 3000).all()
        assert (s2[~cloudy, 0] < 1500).all()
        # NDVI of clear dates within the physical range; crops green up during the year.
        r = s2[~cloudy].astype(np.float64) / 10000
        ndvi = (r[:, 6] - r[:, 2]) / (r[:, 6] + r[:, 2])
        crop = (sem >= 1) & (sem <= 18)
        assert ndvi.min() > 0 and ndvi.max() < 1
        assert ndvi[:, crop].max() > 0.6
        if (sem == 0).any():  # background: a flat NDVI of 0.12
            assert abs(ndvi[:, sem == 0].mean() - 0.12) < 0.02
    assert len(lengths) >= 2  # patches differ in T


def test_same_seed_same_bytes(pastis_dir, tmp_path):
    mosaic.synth_write(tmp_path / "again", 4, seed=3, format="pastis")
    for sub in ("DATA_S2/S2_2.npy", "ANNOTATIONS/TARGET_1.npy", "metadata.geojson"):
        with open(os.path.join(pastis_dir, sub), "rb") as a, \
                open(os.path.join(tmp_path, "again", sub), "rb") as b:
            assert a.read() == b.read()
