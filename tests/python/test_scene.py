"""Whole scenes from Python (mosaic.Scene, Model.map; docs/scenes.md) on a synthetic
georeferenced Sen1Floods11 chip of 64 × 64 pixels and a tiny segmentation model with
32-pixel tiles: the scene's size and tile count (stride 16: origins 0, 16, 32 on each
axis), progress calls, cancellation by the callback (and by an exception in it) with no
file left, refusals, and, when GDAL's gdal_translate is installed, the map read back
against Model.predict_mask on the same window."""

import os
import shutil
import subprocess

import pytest

import mosaic
from mosaic import _ffi

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not hasattr(_ffi, "msc_scene_open"),
                                reason="libmosaic has no msc_scene_open yet")

N = 64
MEAN1, MEAN2 = [-12.0, -19.0], [1500.0] * 13
MODEL = {"modality.count": 2, "modality.0.name": "s1", "modality.0.bands": 2,
         "modality.1.name": "s2", "modality.1.bands": 13,
         "modality.0.encoder": "tiny", "modality.1.encoder": "tiny",
         "modality.0.size": 32, "modality.1.size": 32, "classes": 2,
         "class_names": "no water;water", "proj.dim": 16, "seed": 4,
         "task": "segmentation", "modality.0.mean": MEAN1, "modality.0.std": [4.0, 4.0],
         "modality.1.mean": MEAN2, "modality.1.std": [1000.0] * 13}


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    mosaic.synth_write(d, 1, seed=5, format="sen1floods11", options={"synth.size": N})
    return {"s1": str(d / "S1Hand" / "Bolivia_100000_S1Hand.tif"),
            "s2": str(d / "S2Hand" / "Bolivia_100000_S2Hand.tif")}


@pytest.fixture(scope="module")
def model():
    with mosaic.Model.create(MODEL) as m:
        yield m


def test_size_progress_and_map(scene_files, model, tmp_path):
    calls = []
    with mosaic.Scene(model, scene_files, stride=16) as scene:
        assert scene.size == (N, N, 9)
        scene.write(mask=tmp_path / "a.tif", probs=tmp_path / "p.tif",
                    progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 9), (6, 9), (9, 9)]
    # The same through Model.map, with the inputs as a list in the model's order.
    size = model.map([scene_files["s1"], scene_files["s2"]], mask=tmp_path / "b.tif",
                     options={"scene.stride": 16})
    assert size == (N, N, 9)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()


def test_cancel_leaves_no_file(scene_files, model, tmp_path):
    with mosaic.Scene(model, scene_files) as scene:
        with pytest.raises(mosaic.CancelledError):
            scene.write(mask=tmp_path / "c.tif", progress=lambda done, total: True)

        def boom(done, total):
            raise KeyError("stop")
        with pytest.raises(KeyError):
            scene.write(probs=tmp_path / "d.tif", progress=boom)
    assert os.listdir(tmp_path) == []


def test_refusals(scene_files, model, tmp_path):
    # S2 left out is absent; this model's decoder reads S2, so the map fails, leaving nothing.
    with mosaic.Scene(model, {"s1": scene_files["s1"]}) as scene:
        with pytest.raises(mosaic.NotFoundError, match="no modality 's2'"):
            scene.write(mask=tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(mosaic.InvalidArgumentError, match="every path is NULL"):
        mosaic.Scene(model, {})
    with pytest.raises(mosaic.InvalidArgumentError, match="unknown"):
        mosaic.Scene(model, {"s3": scene_files["s1"]})
    with pytest.raises(mosaic.ShapeError):
        mosaic.Scene(model, [scene_files["s2"], scene_files["s1"]])
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Scene(model, scene_files, stride=33)
    with mosaic.Scene(model, scene_files) as scene:
        with pytest.raises(mosaic.InvalidArgumentError):
            scene.write()


@pytest.mark.skipif(shutil.which("gdal_translate") is None, reason="no gdal_translate")
def test_map_equals_predict_mask(scene_files, model, tmp_path):
    model.map(scene_files, mask=tmp_path / "m.tif", probs=tmp_path / "p.tif")

    def cut(path, bands, x, y):
        out = tmp_path / ("cut_%s.raw" % os.path.basename(str(path)))
        subprocess.run(["gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ",
                        "-ot", "Float32", "-srcwin", str(x), str(y), "32", "32",
                        str(path), str(out)], check=True)
        return np.fromfile(out, np.float32).reshape(bands, 32, 32)

    # Stride 32 over 64 pixels: tiles at 0 and 32, each owning its own 32 × 32 pixels.
    s1 = cut(scene_files["s1"], 2, 32, 0)
    s2 = cut(scene_files["s2"], 13, 32, 0)
    got = cut(tmp_path / "m.tif", 1, 32, 0)[0]
    gotp = cut(tmp_path / "p.tif", 2, 32, 0)
    valid = np.isfinite(s1).all(0)
    s1 = np.where(valid, s1, np.array(MEAN1, np.float32)[:, None, None])
    s2 = np.where(valid, s2, np.array(MEAN2, np.float32)[:, None, None])
    cls, p = model.predict_mask(s1=s1[None].astype(np.float32),
                                s2=s2[None].astype(np.float32), probs=True)
    assert valid.sum() > 900
    np.testing.assert_allclose(gotp[:, valid], p[0][:, valid], atol=1e-5)
    sure = valid & (np.abs(p[0, 0] - p[0, 1]) > 1e-4)
    np.testing.assert_array_equal(got[sure], cls[0][sure])
    assert (got[~valid] == 255).all()


def test_embedding_map(scene_files, model, tmp_path):
    """Stride 16 over 64 pixels: tiles at 0, 16, 32 (3 × 3 map); pixel (i, j) is
    Model.embed of the tile at (16 i, 16 j), read here with the GeoTIFF reader's window
    through numpy (the synthetic chip's S1 has NaN: filled with the means)."""
    calls = []
    with mosaic.Scene(model, scene_files, stride=16) as scene:
        scene.write_embeddings(tmp_path / "e.tif", progress=lambda d, t: calls.append(d))
    assert calls == [3, 6, 9]
    if shutil.which("gdal_translate") is None:
        pytest.skip("no gdal_translate")

    def cut(path, bands, x, y, w):
        out = tmp_path / ("cut_%s_%d_%d.raw" % (os.path.basename(str(path)), x, y))
        subprocess.run(["gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ",
                        "-ot", "Float32", "-srcwin", str(x), str(y), str(w), str(w),
                        str(path), str(out)], check=True)
        return np.fromfile(out, np.float32).reshape(bands, w, w)

    d = model.embedding_size()
    emb = cut(tmp_path / "e.tif", d, 0, 0, 3)
    for i, j in [(0, 0), (2, 1)]:
        s1 = cut(scene_files["s1"], 2, 16 * i, 16 * j, 32)
        s2 = cut(scene_files["s2"], 13, 16 * i, 16 * j, 32)
        valid = np.isfinite(s1).all(0) & np.isfinite(s2).all(0)
        s1 = np.where(valid, s1, np.array(MEAN1, np.float32)[:, None, None])
        s2 = np.where(valid, s2, np.array(MEAN2, np.float32)[:, None, None])
        ref = model.embed(s1=s1[None].astype(np.float32), s2=s2[None].astype(np.float32))
        np.testing.assert_allclose(emb[:, j, i], ref[0], rtol=1e-5, atol=1e-5)
