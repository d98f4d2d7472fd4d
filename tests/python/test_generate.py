"""The generated ctypes layer matches the header: no drift, every function bound."""

import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BINDINGS, ROOT

import mosaic
from mosaic import _ffi

GENERATOR = os.path.join(ROOT, "bindings", "generate.py")
HEADER = os.path.join(ROOT, "include", "mosaic", "mosaic.h")
COMMITTED = os.path.join(BINDINGS, "mosaic", "_ffi.py")


def header_text():
    with open(HEADER, encoding="utf-8") as f:
        return f.read()


def header_functions():
    text = re.sub(r"/\*.*?\*/", " ", header_text(), flags=re.S)
    return re.findall(r"MSC_API\s+[^;(]*?\b(msc_\w+)\s*\(", text)


def test_no_drift(tmp_path):
    """Regenerating from the header gives the committed _ffi.py byte for byte."""
    pytest.importorskip("pycparser")
    out = tmp_path / "_ffi.py"
    res = subprocess.run([sys.executable, GENERATOR, "--output", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if res.returncode == 77:
        pytest.skip(res.stderr.strip())
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", "the generator left something of the header out"
    with open(COMMITTED, "rb") as f:
        committed = f.read()
    assert out.read_bytes() == committed, (
        "bindings/python/mosaic/_ffi.py is out of date with include/mosaic/mosaic.h: "
        "run /usr/bin/python3 bindings/generate.py")


def test_check_mode_detects_drift(tmp_path):
    pytest.importorskip("pycparser")
    stale = tmp_path / "_ffi.py"
    with open(COMMITTED, encoding="utf-8") as f:
        stale.write_text(f.read().replace("MSC_E_SHAPE = -9", "MSC_E_SHAPE = -99"))
    res = subprocess.run([sys.executable, GENERATOR, "--check", "--output", str(stale)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert res.returncode == 1
    assert "MSC_E_SHAPE" in res.stderr and "out of date" in res.stderr


def test_every_header_function_is_bound():
    names = header_functions()
    assert len(names) > 50
    bound = [f[0] for f in _ffi.FUNCTIONS]
    assert bound == names
    assert _ffi.MISSING == ()  # the library under test exports all of them
    for name in names:
        fn = getattr(_ffi, name)
        assert fn.argtypes is not None


def test_constants_from_defines():
    text = header_text()
    for name, value in re.findall(r"#define\s+(MSC_(?:E|LOG|METRIC|EMBED)_\w+)\s+\(?(-?\d+)\)?",
                                  text):
        assert getattr(_ffi, name) == int(value), name
    assert _ffi.MSC_OK == 0
    assert _ffi.MSC_VERSION_NUMBER == (_ffi.MSC_VERSION_MAJOR * 10000
                                       + _ffi.MSC_VERSION_MINOR * 100
                                       + _ffi.MSC_VERSION_PATCH)
    assert _ffi.MSC_EMBED_MODALITY(0) == 0x100
    assert _ffi.MSC_EMBED_MODALITY(3) == 0x103
    assert _ffi.MSC_EMBED_MODALITY_PROJECTION(1) == 0x201
    assert (_ffi.HEADER_VERSION_MAJOR, _ffi.HEADER_VERSION_MINOR) == \
        (_ffi.MSC_VERSION_MAJOR, _ffi.MSC_VERSION_MINOR)


def test_struct_layout(tmp_path):
    """msc_step_result has the C compiler's offsets and size."""
    r = _ffi.msc_step_result
    names = [f[0] for f in r._fields_]
    assert names[0] == "struct_size"
    assert r.struct_size.offset == 0
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to compare with")
    src = tmp_path / "layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include <mosaic/mosaic.h>\n"
                   "int main(void) {\n"
                   + "".join('  printf("%s %%zu\\n", offsetof(msc_step_result, %s));\n' % (n, n)
                             for n in names)
                   + '  printf("sizeof %zu\\n", sizeof(msc_step_result));\n  return 0;\n}\n')
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", os.path.join(ROOT, "include"), str(src), "-o",
                    str(exe)], check=True)
    out = subprocess.run([str(exe)], stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    c = {k: int(v) for k, v in (line.split() for line in out.splitlines())}
    for n in names:
        assert getattr(r, n).offset == c[n], n
    assert ctypes.sizeof(r) == c["sizeof"]


def test_prototypes():
    assert _ffi.msc_model_create.restype is _ffi.msc_status
    assert _ffi.msc_version.restype is ctypes.c_uint32
    assert _ffi.msc_last_error.restype is ctypes.c_char_p
    assert _ffi.msc_model_free.restype is None
    assert _ffi.msc_batch_set_modality.argtypes[2] is ctypes.POINTER(ctypes.c_float)
    assert _ffi.msc_loader_create.argtypes[2] is ctypes.c_uint64
    assert _ffi.msc_options_get_string.argtypes[2] is ctypes.POINTER(ctypes.c_char)
    assert _ffi.msc_backend_select.argtypes[1] is ctypes.POINTER(ctypes.c_char_p)


def test_package_version_matches_header():
    with open(os.path.join(BINDINGS, "pyproject.toml"), encoding="utf-8") as f:
        m = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
    assert m.group(1) == "%d.%d.%d" % mosaic.header_version()
    assert mosaic.__version__ == m.group(1)


def test_generator_rejects_varargs(tmp_path):
    """Constructs that ctypes cannot bind safely are reported, not bound wrongly."""
    pytest.importorskip("pycparser")
    h = tmp_path / "bad.h"
    h.write_text("#include <stdint.h>\n#define MSC_VERSION_MAJOR 0\n#define MSC_VERSION_MINOR 1\n"
                 "#define MSC_VERSION_PATCH 0\nint32_t msc_printf(const char *f, ...);\n")
    res = subprocess.run([sys.executable, GENERATOR, "--header", str(h), "--output",
                          str(tmp_path / "out.py")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert res.returncode == 1
    assert "varargs" in res.stderr


def test_generator_constructs(tmp_path):
    """What the generator makes of constructs the header may grow: macros built on other
    macros, floating-point and string constants, enums, arrays in structs, callbacks."""
    pytest.importorskip("pycparser")
    h = tmp_path / "t.h"
    h.write_text("""#include <stdint.h>
#include <stddef.h>
#define MSC_VERSION_MAJOR 1
#define MSC_VERSION_MINOR 2
#define MSC_VERSION_PATCH 3
#define MSC_F(i) (0x100 + (i))
#define MSC_S1 MSC_F(1)
#define MSC_HALF 0.5f
#define MSC_NAME "mosaic"
#define MSC_U 10u
#define MSC_WEIRD sizeof(int)
typedef enum { MSC_A = 2, MSC_B, MSC_C = MSC_A << 3 } msc_e;
typedef struct { float v[4]; int32_t n; } msc_arr;
typedef struct msc_h msc_h;
typedef void (*msc_cb)(int32_t level, const char *m, void *user);
int32_t msc_f(msc_h **out, const msc_arr *a, msc_cb cb, char *buf, size_t cap);
const char *msc_g(void);
""")
    out = tmp_path / "t_ffi.py"
    res = subprocess.run([sys.executable, GENERATOR, "--header", str(h), "--output", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert res.returncode == 0, res.stderr
    assert "MSC_WEIRD" in res.stderr  # reported, not bound
    text = out.read_text()
    ns = {"__name__": "t_ffi"}
    # Run the generated module without loading a library.
    code = text.replace("from ._loader import", "# from ._loader import")
    code = code[:code.index("#: The loaded shared library")]
    exec(compile(code, str(out), "exec"), ns)
    assert (ns["HEADER_VERSION_MAJOR"], ns["HEADER_VERSION_MINOR"]) == (1, 2)
    assert ns["MSC_F"](2) == 0x102 and ns["MSC_S1"] == 0x101
    assert ns["MSC_HALF"] == 0.5 and ns["MSC_NAME"] == "mosaic" and ns["MSC_U"] == 10
    assert "MSC_WEIRD" not in ns
    assert (ns["MSC_A"], ns["MSC_B"], ns["MSC_C"]) == (2, 3, 16)
    arr = ns["msc_arr"]
    assert ctypes.sizeof(arr) == 20 and arr.n.offset == 16
    (name, res_t, args, names), (gname, gres, gargs, _) = ns["FUNCTIONS"]
    assert name == "msc_f" and res_t is ctypes.c_int32
    assert names == ("out", "a", "cb", "buf", "cap")
    assert args[0] is ctypes.POINTER(ctypes.POINTER(ns["msc_h"]))
    assert args[2] is ns["msc_cb"] and args[3] is ctypes.POINTER(ctypes.c_char)
    assert args[4] is ctypes.c_size_t
    assert gres is ctypes.c_char_p and gargs == ()


@pytest.mark.parametrize("lang", ["python", "cpp", "rust", "go", "java", "node"])
def test_every_language_notices_a_header_change(tmp_path, lang):
    """A function added to the header without regenerating fails each language's drift
    check, and the diff names it (docs/bindings.md)."""
    pytest.importorskip("pycparser")
    header = tmp_path / "mosaic" / "mosaic.h"
    header.parent.mkdir()
    text = header_text().replace(
        "MSC_API const char *msc_last_error(void);",
        "MSC_API const char *msc_last_error(void);\n\n"
        "/** A function the bindings have not seen. */\n"
        "MSC_API int32_t msc_zz_not_bound(int64_t x);", 1)
    assert "msc_zz_not_bound" in text
    header.write_text(text)
    args = [sys.executable, GENERATOR, "--check", "--header", str(header), "--lang", lang]
    res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert res.returncode == 1, res.stderr
    assert "msc_zz_not_bound" in res.stderr and "out of date" in res.stderr
