"""The path without NumPy: buffers (memoryview, array.array) and nested lists in,
memoryviews out. NumPy is switched off with monkeypatch (mosaic._arrays.np = None); the
results must equal those of the NumPy path."""

import array
import math
import subprocess
import sys

import pytest

from conftest import BINDINGS, C, SIZE, TINY

import mosaic
from mosaic import _arrays, losses, metrics


@pytest.fixture
def no_numpy(monkeypatch):
    monkeypatch.setattr(_arrays, "np", None)
    assert not mosaic.have_numpy()


def flat_inputs(n):
    s1 = array.array("f", [((i * 7919) % 23) - 11.5 for i in range(n * 2 * SIZE * SIZE)])
    s2 = array.array("f", [float((i * 104729) % 3000) for i in range(n * 4 * SIZE * SIZE)])
    y = [[1 if (i + k) % 3 == 0 else 0 for k in range(C)] for i in range(n)]
    return s1, s2, y


def test_model_without_numpy(no_numpy, tmp_path):
    n = 3
    s1, s2, y = flat_inputs(n)
    s1_shape, s2_shape = (n, 2, SIZE, SIZE), (n, 4, SIZE, SIZE)
    with mosaic.Model.create(TINY) as m:
        # (buffer, shape) pairs; a 4-D memoryview; zero copy for writable float buffers.
        h = m.embed(s1=(s1, s1_shape), s2=memoryview(s2).cast("B").cast("f", s2_shape))
        assert isinstance(h, memoryview) and h.shape == (n, 32) and h.format == "f"
        rows = h.tolist()
        assert len(rows) == n and len(rows[0]) == 32
        # Read-only buffers (bytes) are copied; nested lists work too.
        h2 = m.embed(s1=(bytes(s1), s1_shape),
                     s2=memoryview(s2).cast("B").cast("f", s2_shape).tolist())
        assert h2.tolist() == rows
        # Another item format (float64) is converted.
        h3 = m.embed(s1=(array.array("d", s1), s1_shape), s2=(s2, s2_shape))
        assert h3.tolist() == rows
        p = m.predict(s1=(s1, s1_shape), s2=(s2, s2_shape))
        assert p.shape == (n, C)
        r = m.train_step(s1=(s1, s1_shape), s2=(s2, s2_shape), labels=y)
        assert r.step == 1 and math.isfinite(r.loss)
        with pytest.raises(mosaic.ShapeError):
            m.embed(s1=(s1, (n, 2, SIZE)), s2=(s2, s2_shape))      # 3-D
        with pytest.raises(mosaic.ShapeError):
            m.embed(s1=(s1, (n + 1, 2, SIZE, SIZE)), s2=(s2, s2_shape))  # too few values
        with pytest.raises(mosaic.InvalidArgumentError):
            m.train_step(s1=(s1, s1_shape), s2=(s2, s2_shape), labels=[[2] * C] * n)


def test_same_results_with_and_without_numpy(monkeypatch):
    np = pytest.importorskip("numpy")
    n = 3
    s1, s2, _ = flat_inputs(n)
    with mosaic.Model.create(TINY) as m:
        ref = m.embed(s1=np.frombuffer(s1, np.float32).reshape(n, 2, SIZE, SIZE),
                      s2=np.frombuffer(s2, np.float32).reshape(n, 4, SIZE, SIZE))
        monkeypatch.setattr(_arrays, "np", None)
        got = m.embed(s1=(s1, (n, 2, SIZE, SIZE)), s2=(s2, (n, 4, SIZE, SIZE)))
    assert got.tolist() == ref.tolist()


def test_losses_without_numpy(no_numpy):
    za = [[1.0, 0.0, 0.5], [0.2, 1.0, -0.3]]
    zb = [[0.9, 0.1, 0.4], [0.0, 1.2, -0.2]]
    loss, ga, gb = losses.ntxent(za, zb, 0.5, grad=True)
    assert math.isfinite(loss) and ga.shape == (2, 3)
    assert losses.infonce(za, zb) > 0
    assert losses.bce([[0.0, 2.0]], [[1, 0]]) == pytest.approx(
        (math.log(2) + 2 + math.log1p(math.exp(-2))) / 2, rel=1e-6)
    loss, g = losses.mulsupcon(za + zb, [[1], [0], [1], [0]], 0.1, grad=True)
    assert math.isfinite(loss) and g.shape == (4, 3)


def test_metrics_without_numpy(no_numpy):
    if not metrics.available():
        pytest.skip("libmosaic has no msc_metrics_compute yet")
    m = metrics.compute([[0.9, 0.2], [0.1, 0.8], [0.7, 0.3]], [[1, 0], [0, 1], [1, 0]])
    assert m["macro_ap"] == pytest.approx(1.0)
    pc = metrics.per_class([[0.9, 0.2], [0.1, 0.8]], [[1, 0], [0, 1]])
    assert pc["support"].tolist() == [1, 1]


def test_import_without_numpy(tmp_path):
    """The package imports and works when NumPy cannot be imported at all."""
    blocker = tmp_path / "numpy"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('numpy is blocked for this test')\n")
    code = ("import mosaic, array\n"
            "assert not mosaic.have_numpy()\n"
            "s = array.array('f', [1.0] * 8)\n"
            "print(mosaic.losses.infonce((s, (2, 4)), (s, (2, 4)), 0.1))\n")
    res = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True,
                         env=dict(__import__("os").environ,
                                  PYTHONPATH="%s:%s" % (tmp_path, BINDINGS)))
    assert res.returncode == 0, res.stderr
    assert math.isfinite(float(res.stdout))


def test_samples_and_pixels_without_numpy(no_numpy, synth_dir):
    """ds[i] and batch pixels as memoryviews, equal to the NumPy path's values."""
    with mosaic.Dataset(synth_dir, split="all") as ds:
        d = ds[2]
        assert isinstance(d["s2"], memoryview) and d["s2"].shape == (12, 120, 120)
        assert d["labels"].shape == (19,) and d["id"] == ds.sample_id(2)
        with ds.fill_batch([2]) as b:
            whole = b["s2"]
            assert isinstance(whole, memoryview) and whole.shape == (1, 12, 120, 120)
            assert whole.tobytes() == d["s2"].tobytes()
            assert b.pixels["s1"].tobytes() == d["s1"].tobytes()
