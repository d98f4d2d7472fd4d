"""The Python examples of README.md and docs/python.md run as written."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

import mosaic

np = pytest.importorskip("numpy")


def python_blocks(path):
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def run(code, cwd):
    # The package and library under test, whatever the working directory.
    env = dict(os.environ)
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(mosaic.__file__)))
    env["PYTHONPATH"] = pkg + os.pathsep + env.get("PYTHONPATH", "")
    if os.path.isfile(mosaic.library_path()):
        env["MOSAIC_LIBRARY"] = os.path.abspath(mosaic.library_path())
    res = subprocess.run([sys.executable, "-c", code], cwd=str(cwd), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=240)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_readme_example(tmp_path):
    """The README's session reads the model main.sh trains and the bundled real samples:
    here a small model with the same modalities and classes stands in for it."""
    blocks = python_blocks("README.md")
    assert blocks, "README.md has no python example"
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    (tmp_path / "main-out").mkdir()
    opts = {"modality.0.encoder": "tiny", "modality.1.encoder": "tiny", "seed": 3}
    with mosaic.Model.create(opts) as m:
        m.save(tmp_path / "main-out" / "model.safetensors")
        with mosaic.Dataset(os.path.join(ROOT, "examples", "data", "bigearthnet-v2"),
                            split="all") as ds:
            ids = [ds.sample_id(i) for i in range(len(ds))]
            p = m.predict(ds.fill_batch(range(len(ds))))
            names = m.class_names
    out = run(blocks[0], tmp_path).splitlines()
    assert out[0].startswith("libmosaic " + mosaic.version())
    # One line per real sample: its id and the model's top class, as computed here.
    for i, sid in enumerate(ids):
        assert out[1 + i].startswith(sid) and out[1 + i].endswith(names[int(p[i].argmax())])
    assert "macro_ap" in out[1 + len(ids)]


def test_python_md_session(tmp_path):
    blocks = python_blocks(os.path.join("docs", "python.md"))
    assert blocks
    run(blocks[0], tmp_path)
