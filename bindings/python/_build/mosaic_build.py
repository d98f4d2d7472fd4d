"""mosaic_build — the PEP 517 build backend of the mosaic Python package.

The package is pure Python (ctypes over libmosaic), so building it is only zipping its
files with the metadata pip expects. setuptools can do that, but only together with the
`wheel` package, which a fresh virtual environment lacks, and with pip's default build
isolation it would have to download both: `pip install ./bindings/python` failed offline
("invalid command 'bdist_wheel'"). This backend needs nothing beyond the standard
library, so pip installs the package in any venv, offline, with or without build
isolation (docs/python.md, "Install").

Wheel contents: the package directory mosaic/ (its *.py files) and, when the build is
given a library, a copy of it as mosaic/libmosaic.so.<major>, which the package loads
before any other (mosaic/_core.py): `pip install --config-settings
library=/path/libmosaic.so.0 .` or MOSAIC_BUNDLE_LIBRARY=/path/libmosaic.so.0 in the
environment. A wheel with a library is tagged for this platform (linux_<machine>); one
without is py3-none-any and finds libmosaic at import time.

Hooks: build_wheel, build_sdist, build_editable (PEP 660: a .pth file pointing at the
source tree), the get_requires_* hooks (nothing) and prepare_metadata_for_build_wheel.
"""

import base64
import hashlib
import io
import os
import platform
import re
import tarfile
import zipfile

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bindings/python
NAME = "mosaic"


def _project():
    """name, version, summary and Python requirement from pyproject.toml (read with a
    regular expression: tomllib is Python 3.11+, and the file is this project's own)."""
    with open(os.path.join(_HERE, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    proj = text.split("[project]", 1)[1].split("\n[", 1)[0]

    def field(key):
        m = re.search(r'^%s\s*=\s*"([^"]*)"' % key, proj, re.M)
        if not m:
            raise RuntimeError("pyproject.toml: [project] has no %s" % key)
        return m.group(1)

    return field("name"), field("version"), field("description"), field("requires-python")


def _metadata():
    name, version, summary, requires = _project()
    return (
        "Metadata-Version: 2.1\n"
        "Name: %s\nVersion: %s\nSummary: %s\nRequires-Python: %s\n"
        "License: see the libmosaic source distribution\n"
        "Provides-Extra: numpy\nRequires-Dist: numpy; extra == \"numpy\"\n"
        "Description-Content-Type: text/plain\n\n"
        "Python bindings of libmosaic, generated from its C header. See docs/python.md.\n"
        % (name, version, summary, requires)
    )


def _library(config_settings):
    lib = (config_settings or {}).get("library") or os.environ.get("MOSAIC_BUNDLE_LIBRARY")
    if lib and not os.path.isfile(lib):
        raise RuntimeError("mosaic_build: the library to bundle, %s, is not a file" % lib)
    return lib


def _package_files():
    """(path in the archive, path on disk) of every .py file of the package, and its
    py.typed marker (PEP 561: the package carries its own annotations)."""
    pkg = os.path.join(_HERE, NAME)
    for entry in sorted(os.listdir(pkg)):
        if entry.endswith(".py") or entry == "py.typed":
            yield "%s/%s" % (NAME, entry), os.path.join(pkg, entry)


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _wheel(wheel_directory, files, tag):
    """Writes a wheel holding files ((arcname, bytes) pairs) and returns its name."""
    name, version = _project()[:2]
    dist_info = "%s-%s.dist-info" % (name, version)
    wheel_name = "%s-%s-%s.whl" % (name, version, tag)
    meta = [
        ("%s/METADATA" % dist_info, _metadata().encode()),
        ("%s/WHEEL" % dist_info,
         ("Wheel-Version: 1.0\nGenerator: mosaic_build\nRoot-Is-Purelib: %s\nTag: %s\n"
          % ("true" if tag.endswith("-any") else "false", tag)).encode()),
        ("%s/top_level.txt" % dist_info, (NAME + "\n").encode()),
    ]
    record = []
    path = os.path.join(wheel_directory, wheel_name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for arcname, data in list(files) + meta:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if arcname.endswith(".so") or ".so." in arcname
                                  else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            record.append(_record_line(arcname, data))
        record.append("%s/RECORD,," % dist_info)
        z.writestr("%s/RECORD" % dist_info, "\n".join(record) + "\n")
    return wheel_name


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name, version = _project()[:2]
    dist_info = "%s-%s.dist-info" % (name, version)
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    with open(os.path.join(metadata_directory, dist_info, "METADATA"), "w",
              encoding="utf-8") as f:
        f.write(_metadata())
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = [(arc, _read(p)) for arc, p in _package_files()]
    lib = _library(config_settings)
    tag = "py3-none-any"
    if lib:
        m = re.search(r"\.so\.(\d+)", os.path.basename(os.path.realpath(lib)))
        major = m.group(1) if m else "0"
        files.append(("%s/libmosaic.so.%s" % (NAME, major), _read(lib)))
        tag = "py3-none-linux_%s" % platform.machine()
    return _wheel(wheel_directory, files, tag)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name = _project()[0]
    pth = ("_%s_editable.pth" % name, (_HERE + "\n").encode())
    return _wheel(wheel_directory, [pth], "py3-none-any")


def build_sdist(sdist_directory, config_settings=None):
    name, version = _project()[:2]
    base = "%s-%s" % (name, version)
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as t:
        members = [("pyproject.toml", os.path.join(_HERE, "pyproject.toml")),
                   ("_build/mosaic_build.py", os.path.abspath(__file__))]
        members += list(_package_files())
        for arcname, src in members:
            t.add(src, arcname="%s/%s" % (base, arcname), recursive=False)
        pkg_info = _metadata().encode()
        info = tarfile.TarInfo("%s/PKG-INFO" % base)
        info.size = len(pkg_info)
        info.mtime = 1577836800
        t.addfile(info, io.BytesIO(pkg_info))
    return base + ".tar.gz"


def write_dist_info(site_dir, installer="cmake"):
    """Writes <name>-<version>.dist-info into site_dir, beside a package directory that
    was copied there without pip (`cmake --install`: bindings/CMakeLists.txt), so that
    `pip show mosaic` and `pip uninstall mosaic` know it. RECORD lists the package's
    files as they are in site_dir."""
    name, version = _project()[:2]
    dist_info = "%s-%s.dist-info" % (name, version)
    target = os.path.join(site_dir, dist_info)
    os.makedirs(target, exist_ok=True)
    files = {"METADATA": _metadata(), "INSTALLER": installer + "\n",
             "top_level.txt": NAME + "\n"}
    record = []
    pkg = os.path.join(site_dir, NAME)
    for entry in sorted(os.listdir(pkg)):
        path = os.path.join(pkg, entry)
        if os.path.isfile(path):
            record.append(_record_line("%s/%s" % (NAME, entry), _read(path)))
    for fname, text in files.items():
        with open(os.path.join(target, fname), "w", encoding="utf-8") as f:
            f.write(text)
        record.append(_record_line("%s/%s" % (dist_info, fname), text.encode()))
    record.append("%s/RECORD,," % dist_info)
    with open(os.path.join(target, "RECORD"), "w", encoding="utf-8") as f:
        f.write("\n".join(record) + "\n")
    return target


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "dist-info":
        sys.stderr.write("usage: mosaic_build.py dist-info SITE_DIR\n")
        sys.exit(2)
    print(write_dist_info(sys.argv[2]))
