"""The package installs offline with pip (no build isolation, the system's setuptools),
and the installed package finds libmosaic by its SONAME through the dynamic loader."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import BINDINGS

import mosaic


def test_pip_install_offline(tmp_path):
    pytest.importorskip("setuptools")
    if subprocess.run([sys.executable, "-m", "pip", "--version"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("pip is not installed")
    lib = mosaic.library_path()
    if not os.path.isfile(lib):
        pytest.skip("the library was not loaded from a path")
    src = tmp_path / "src"  # a copy: the build writes build/ and *.egg-info next to it
    shutil.copytree(BINDINGS, src, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", "libmosaic.so*"))
    site = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                          "--no-index", "--no-deps", "--target", str(site), str(src)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, env=env, cwd=str(tmp_path))
    assert res.returncode == 0, res.stdout
    assert (site / "mosaic" / "_ffi.py").is_file()
    # The SONAME, found through LD_LIBRARY_PATH as for an installed library.
    libdir = tmp_path / "lib"
    libdir.mkdir()
    soname = "libmosaic.so.%d" % mosaic.header_version()[0]
    shutil.copy(os.path.realpath(lib), libdir / soname)
    env.pop("MOSAIC_LIBRARY", None)
    env["PYTHONPATH"] = str(site)
    env["LD_LIBRARY_PATH"] = str(libdir)
    res = subprocess.run([sys.executable, "-c",
                          "import mosaic; print(mosaic.version(), mosaic.library_path())"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=env, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [mosaic.version(), soname]
