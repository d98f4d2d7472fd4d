"""Shared fixtures of the Python binding tests.

CTest sets MOSAIC_LIBRARY (the libmosaic under test) and PYTHONPATH (bindings/python).
Run by hand:
    MOSAIC_LIBRARY=$PWD/build/libmosaic.so.0 PYTHONPATH=bindings/python \
        /usr/bin/python3 -m pytest -q tests/python
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINDINGS = os.path.join(ROOT, "bindings", "python")
EXAMPLE_DATA = os.path.join(ROOT, "examples", "data", "bigearthnet-v2")

try:
    import mosaic  # noqa: F401
except ImportError as e:
    if "No module named 'mosaic'" not in str(e):
        raise
    sys.path.insert(0, BINDINGS)
    import mosaic  # noqa: F401

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="NumPy is not installed")

SIZE = 16
C = 4
# The tiny model of tests/test_train.c: S1 2 bands, S2 4 bands, 16x16, 4 classes.
TINY = {
    "modality.0.encoder": "tiny", "modality.1.encoder": "tiny",
    "modality.0.size": SIZE, "modality.1.size": SIZE, "modality.1.bands": 4,
    "classes": C, "class_names": "a;b;c;d", "proj.dim": 16, "seed": 7, "threads": 1,
}


@pytest.fixture
def tiny_model():
    with mosaic.Model.create(TINY) as m:
        yield m


def random_inputs(n, seed=0):
    """(s1, s2, labels) NumPy arrays for the tiny model."""
    rng = np.random.default_rng(seed)
    s1 = rng.normal(-10, 3, size=(n, 2, SIZE, SIZE)).astype(np.float32)
    s2 = rng.uniform(0, 3000, size=(n, 4, SIZE, SIZE)).astype(np.float32)
    y = rng.random((n, C)) < 0.4
    y[np.arange(n), np.arange(n) % C] = True
    return s1, s2, y.astype(np.uint8)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A synthetic BigEarthNet v2 dataset of 24 patches (msc_synth_write)."""
    d = tmp_path_factory.mktemp("synth") / "ben"
    mosaic.synth_write(d, 24, seed=5)
    return d
