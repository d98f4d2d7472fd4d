"""The pastis format from Python (docs/pimc.md): Dataset.series against NumPy's own
reading of the files (np.load, np.interp on the dates of metadata.geojson), and
Model.copy_weights moving one modality's encoder between models of different shapes."""

import datetime
import json
import os

import pytest

import mosaic
from conftest import TINY, random_inputs

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def pastis_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pastis") / "ds"
    mosaic.synth_write(d, 5, seed=11, format="pastis")
    return d


def days_since_epoch(ymd):
    d = datetime.date(ymd // 10000, ymd // 100 % 100, ymd % 100)
    return (d - datetime.date(1970, 1, 1)).days


def test_series_is_the_files_on_the_grid(pastis_dir):
    with open(os.path.join(pastis_dir, "metadata.geojson")) as f:
        feats = {ft["properties"]["ID_PATCH"]: ft["properties"]
                 for ft in json.load(f)["features"]}
    dates = {i: np.array([days_since_epoch(p["dates-S2"][str(k)])
                          for k in range(len(p["dates-S2"]))], dtype=np.float64)
             for i, p in feats.items()}
    first = min(d[0] for d in dates.values())
    last = max(d[-1] for d in dates.values())
    grid = np.linspace(first, last, 20)
    with mosaic.Dataset(pastis_dir, "pastis", {"data.split": "all", "data.sits.length": 20,
                                               "data.sits.pixels": 3}) as ds:
        assert len(ds) == 15
        assert list(ds.modality_names) == ["rp", "s2"]
        for i in range(len(ds)):
            patch, y, x = (int(v) for v in ds.sample_id(i).split(":"))
            values, days = ds.series(i)
            assert values.shape == (20, 10) and days.shape == (20,)
            np.testing.assert_allclose(days, grid, rtol=0, atol=1e-6)
            s2 = np.load(os.path.join(pastis_dir, "DATA_S2", f"S2_{patch}.npy"))
            px = s2[:, :, y, x].astype(np.float64)
            want = np.stack([np.interp(grid, dates[patch], px[:, b]) for b in range(10)], 1)
            np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-3)
            # Labels: the pixel's class in TARGET channel 0.
            target = np.load(os.path.join(pastis_dir, "ANNOTATIONS", f"TARGET_{patch}.npy"))
            assert target[0, y, x] != 19
        with ds.fill_batch([0, 1]) as b:
            labels = b.labels
            for j in range(2):
                patch, y, x = (int(v) for v in ds.sample_id(j).split(":"))
                target = np.load(os.path.join(pastis_dir, "ANNOTATIONS", f"TARGET_{patch}.npy"))
                assert list(np.flatnonzero(labels[j])) == [target[0, y, x]]


def test_series_refused_without_time(synth_dir):
    with mosaic.Dataset(synth_dir, "bigearthnet-v2", {"data.split": "all"}) as ds:
        with pytest.raises(mosaic.Error):
            ds.series(0)


def test_copy_weights_moves_one_encoder():
    s1, s2, _ = random_inputs(3, seed=5)
    other = dict(TINY, seed=99, classes=2, class_names="x;y")
    with mosaic.Model.create(TINY) as src, mosaic.Model.create(other) as dst:
        before = dst.embed(s1=s1, s2=s2, kind="features", modality="s2")
        want = src.embed(s1=s1, s2=s2, kind="features", modality="s2")
        assert not np.allclose(before, want)
        n = dst.copy_weights(src, prefix="enc.s2.")
        assert n > 0
        np.testing.assert_array_equal(dst.embed(s1=s1, s2=s2, kind="features", modality="s2"),
                                      want)
        # s1's encoder was left alone.
        assert not np.allclose(dst.embed(s1=s1, s2=s2, kind="features", modality="s1"),
                               src.embed(s1=s1, s2=s2, kind="features", modality="s1"))
    wide = dict(TINY, **{"modality.1.bands": 5})
    with mosaic.Model.create(TINY) as src, mosaic.Model.create(wide) as dst:
        with pytest.raises(mosaic.Error, match="another shape"):
            dst.copy_weights(src)
        with pytest.raises(mosaic.Error, match="no tensor"):
            dst.copy_weights(src, prefix="enc.nothing.")


def test_plot_modalities_get_a_small_stem():
    # docs/pimc.md: a modality of kind "plot" (the default kind of one named "rp") keeps
    # its resolution: 3x3 stride-1 stem, no max-pool, whatever the encoder preset.
    with mosaic.Options({"modality.0.name": "rp", "modality.0.bands": 3,
                         "modality.1.name": "s2", "modality.1.bands": 10}) as o:
        assert o.get("modality.0.kind") == "plot"
        assert (o.get("modality.0.stem_kernel"), o.get("modality.0.stem_stride"),
                o.get("modality.0.maxpool")) == (3, 1, 0)
        assert (o.get("modality.1.stem_kernel"), o.get("modality.1.stem_stride"),
                o.get("modality.1.maxpool")) == (7, 2, 1)
        o.set("modality.0.stem_stride", 2)            # an explicit value still wins
        assert o.get("modality.0.stem_stride") == 2
