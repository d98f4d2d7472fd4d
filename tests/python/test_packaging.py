"""The package installs offline with pip: with the system's pip and no build isolation,
and in a fresh virtual environment with pip's defaults (build isolation, nothing
downloadable), where the package's own build backend (bindings/python/_build) needs
nothing but the standard library. The installed package finds libmosaic by its SONAME,
or a copy bundled into the wheel; `cmake --install` leaves a dist-info pip knows."""

import os
import shutil
import subprocess
import sys

import pytest

from test_docs import python_blocks

from conftest import BINDINGS, ROOT, SIZE, TINY

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


def clean_env(**extra):
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    for k in ("PYTHONPATH", "MOSAIC_LIBRARY", "PIP_NO_BUILD_ISOLATION", "VIRTUAL_ENV"):
        env.pop(k, None)
    env.update(extra)
    return env


def sh(args, **kw):
    kw.setdefault("env", clean_env())
    return subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, **kw)


def make_venv(path, system_site=False):
    """A fresh venv with the interpreter's bundled pip; skips where venv or ensurepip is
    missing (Debian: python3-venv)."""
    args = [sys.executable, "-m", "venv"] + (["--system-site-packages"] if system_site else [])
    res = sh(args + [path])
    if res.returncode != 0:
        pytest.skip("cannot create a venv (python3-venv): " + res.stdout[-300:])
    return path / "bin" / "python"


def copy_sources(dst):
    shutil.copytree(BINDINGS, dst, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", "libmosaic.so*"))
    return dst


def library():
    lib = mosaic.library_path()
    if not os.path.isfile(lib):
        pytest.skip("the library was not loaded from a path")
    return os.path.abspath(lib)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A plain venv (no system packages: no setuptools beyond the bundled one, no wheel,
    no NumPy) into which `pip install ./bindings/python` installed the package offline
    with build isolation on, pip's default."""
    base = tmp_path_factory.mktemp("venv")
    py = make_venv(base / "env")
    src = copy_sources(base / "src")
    res = sh([py, "-m", "pip", "install", "--no-index", src], cwd=str(base))
    assert res.returncode == 0, res.stdout
    return py


def test_venv_pip_show(venv):
    res = sh([venv, "-m", "pip", "show", "mosaic"])
    assert res.returncode == 0, res.stdout
    fields = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert fields["Name"] == "mosaic" and fields["Version"] == mosaic.version()
    assert os.path.realpath(fields["Location"]).startswith(os.path.realpath(str(venv.parent.parent)))


EMBED = """
import array, sys
import mosaic
n = 2
s1 = array.array("f", [((i * 7919) %% 23) - 11.5 for i in range(n * 2 * %(size)d * %(size)d)])
s2 = array.array("f", [float((i * 104729) %% 3000) for i in range(n * 4 * %(size)d * %(size)d)])
with mosaic.Model.create(%(opts)r) as m:
    h = m.embed(s1=(s1, (n, 2, %(size)d, %(size)d)), s2=(s2, (n, 4, %(size)d, %(size)d)))
    print(mosaic.have_numpy(), mosaic.library_path())
    print(" ".join(repr(v) for v in h.tolist()[1][:8]))
"""


def embed_here():
    """What the EMBED script computes, computed in this process (NumPy or not)."""
    import array
    n = 2
    s1 = array.array("f", [((i * 7919) % 23) - 11.5 for i in range(n * 2 * SIZE * SIZE)])
    s2 = array.array("f", [float((i * 104729) % 3000) for i in range(n * 4 * SIZE * SIZE)])
    with mosaic.Model.create(TINY) as m:
        h = m.embed(s1=(s1, (n, 2, SIZE, SIZE)), s2=(s2, (n, 4, SIZE, SIZE)))
        return [float(v) for v in list(h.tolist()[1])[:8]]


def test_venv_imports_and_embeds(venv, tmp_path):
    lib = library()
    res = sh([venv, "-c", EMBED % {"size": SIZE, "opts": TINY}], cwd=str(tmp_path),
             env=clean_env(MOSAIC_LIBRARY=lib))
    assert res.returncode == 0, res.stdout
    head, values = res.stdout.splitlines()[-2:]
    assert head.split() == ["False", lib]  # the venv has no NumPy: the buffer path
    site = venv.parent.parent / "lib"
    assert list(site.glob("python3*/site-packages/mosaic/py.typed"))  # (PEP 561)
    got = [float(v) for v in values.split()]
    want = embed_here()
    assert len(got) == 8 and all(abs(a - b) <= 1e-5 * (1 + abs(b)) for a, b in zip(got, want))


def test_wheel_with_bundled_library(tmp_path):
    """`--config-settings library=...` puts the library into the wheel; the installed
    package then loads that copy, with no MOSAIC_LIBRARY and no LD_LIBRARY_PATH."""
    lib = library()
    py = make_venv(tmp_path / "env")
    src = copy_sources(tmp_path / "src")
    res = sh([py, "-m", "pip", "install", "--no-index", "--config-settings",
              "library=" + lib, src], cwd=str(tmp_path))
    assert res.returncode == 0, res.stdout
    env = clean_env()
    env.pop("LD_LIBRARY_PATH", None)
    res = sh([py, "-c", "import mosaic; print(mosaic.version(), mosaic.library_path())"],
             cwd=str(tmp_path), env=env)
    assert res.returncode == 0, res.stdout
    version, path = res.stdout.split()
    assert version == mosaic.version()
    assert path.startswith(str(tmp_path / "env")) and path.endswith("mosaic/libmosaic.so.%d"
                                                                    % mosaic.header_version()[0])
    res = sh([py, "-m", "pip", "uninstall", "-y", "mosaic"])
    assert res.returncode == 0, res.stdout
    assert not os.path.exists(path)


def test_readme_block_in_venv(tmp_path):
    """The README's Python session, run by the interpreter of a venv the package was
    pip-installed into (with the system's NumPy: --system-site-packages)."""
    pytest.importorskip("numpy")
    lib = library()
    py = make_venv(tmp_path / "env", system_site=True)
    res = sh([py, "-m", "pip", "install", "--no-index", copy_sources(tmp_path / "src")],
             cwd=str(tmp_path))
    assert res.returncode == 0, res.stdout
    os.symlink(os.path.join(ROOT, "examples"), str(tmp_path / "examples"))
    (tmp_path / "main-out").mkdir()
    with mosaic.Model.create({"modality.0.encoder": "tiny", "modality.1.encoder": "tiny",
                              "seed": 3}) as m:
        m.save(tmp_path / "main-out" / "model.safetensors")
    res = sh([py, "-c", "import mosaic; print(mosaic.__file__)"], cwd=str(tmp_path),
             env=clean_env(MOSAIC_LIBRARY=lib))
    assert res.returncode == 0 and res.stdout.startswith(str(tmp_path / "env")), res.stdout
    res = sh([py, "-c", python_blocks("README.md")[0]], cwd=str(tmp_path),
             env=clean_env(MOSAIC_LIBRARY=lib))
    assert res.returncode == 0, res.stdout
    assert res.stdout.startswith("libmosaic " + mosaic.version())
    assert "macro_ap" in res.stdout


def test_cmake_install_dist_info(tmp_path):
    """`cmake --install` copies the package and then runs the build backend's
    write_dist_info (bindings/CMakeLists.txt): pip then shows the package and its files."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(BINDINGS, "mosaic"), site / "mosaic",
                    ignore=shutil.ignore_patterns("__pycache__", "libmosaic.so*"))
    res = sh([sys.executable, os.path.join(BINDINGS, "_build", "mosaic_build.py"),
              "dist-info", site])
    assert res.returncode == 0, res.stdout
    res = sh([sys.executable, "-m", "pip", "show", "-f", "mosaic"],
             env=clean_env(PYTHONPATH=str(site)))
    if "No module named pip" in res.stdout:
        pytest.skip("pip is not installed")
    assert res.returncode == 0, res.stdout
    assert "Version: " + mosaic.version() in res.stdout
    assert "mosaic/_ffi.py" in res.stdout and "mosaic/__init__.py" in res.stdout
