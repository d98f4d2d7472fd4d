"""Status codes mapped to exceptions, library loading and version checks, handle life."""

import gc
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BINDINGS, TINY, random_inputs

import mosaic
from mosaic import _errors, _ffi, _loader


def test_one_class_per_status():
    codes = {n: getattr(_ffi, n) for n in dir(_ffi) if n.startswith("MSC_E_")}
    assert len(codes) >= 14
    classes = set()
    for name, code in codes.items():
        cls = _errors.BY_STATUS[code]
        assert issubclass(cls, mosaic.Error) and cls is not mosaic.Error
        assert cls.status == code
        assert getattr(mosaic, cls.__name__) is cls
        classes.add(cls)
        e = _errors.error_for(code, "boom")
        assert isinstance(e, cls) and e.status == code and str(e) == "boom"
        assert e.status_string == mosaic.status_string(code) != "unknown status"
    assert len(classes) == len(codes)
    assert issubclass(mosaic.InvalidArgumentError, ValueError)
    assert issubclass(mosaic.IOError, OSError)
    assert issubclass(mosaic.NotFoundError, LookupError)
    assert issubclass(mosaic.OutOfMemoryError, MemoryError)
    unknown = _errors.error_for(-999, "new code")
    assert type(unknown) is mosaic.Error and unknown.status == -999
    assert issubclass(mosaic.LibraryNotFoundError, ImportError)
    assert issubclass(mosaic.IncompatibleLibraryError, ImportError)
    assert issubclass(mosaic.IncompatibleLibraryError, mosaic.Error)


def test_library_errors_carry_the_message(tmp_path):
    with pytest.raises(mosaic.IOError) as e:
        mosaic.Model.load(tmp_path / "nope.safetensors")
    assert e.value.status == _ffi.MSC_E_IO and "nope.safetensors" in e.value.message
    assert mosaic.last_error() == e.value.c_message
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(mosaic.BadFormatError):
        mosaic.Model.load(bad)
    with pytest.raises(mosaic.NotFoundError) as e:
        mosaic.Model.create(**{"no.such.key": 1})
    assert "no.such.key" in str(e.value)
    with pytest.raises(mosaic.InvalidArgumentError) as e:
        mosaic.Model.create(classes=0)
    assert "classes" in str(e.value)
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Model.create(classes="many")
    with pytest.raises(mosaic.NotFoundError):
        mosaic.Model.create(TINY, backend="nosuchbackend")
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Model.create(TINY).save(tmp_path / "no-dir" / "x\0y")


def test_shape_and_input_errors(tiny_model):
    np = pytest.importorskip("numpy")
    s1, s2, y = random_inputs(3)
    with pytest.raises(mosaic.ShapeError) as e:
        tiny_model.embed(s1=s1[:, :1], s2=s2)
    assert "s1" in str(e.value)
    with pytest.raises(mosaic.ShapeError):
        tiny_model.embed(s1=s1[0], s2=s2)              # 3-D: refused in Python
    with pytest.raises(mosaic.ShapeError):
        tiny_model.embed(s1=s1, s2=s2[:2])             # N differs
    with pytest.raises(mosaic.NotFoundError):
        tiny_model.predict(s3=s2)                      # none of the model's modalities
    with pytest.raises(mosaic.NotFoundError):
        tiny_model.embed(s1=s1, kind="features", modality="s2")  # s2 missing
    with pytest.raises(mosaic.NotFoundError):
        tiny_model.embed(s3=s2)
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.embed()                             # nothing given
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.embed(mosaic.Batch(), s1=s1)        # both
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.embed(mosaic.Batch())               # empty batch
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.train_step(s1=s1[:1], s2=s2[:1])    # N < 2
    with pytest.raises(mosaic.ShapeError):
        tiny_model.train_step(s1=s1, s2=s2, labels=y[:, :2])
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.embed(s1=np.array([["a"]]), s2=s2)
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.embed(s1=None, s2=s2)


def test_closed_handles_raise(tmp_path):
    m = mosaic.Model.create(TINY)
    m.close()
    m.close()  # twice is fine
    assert m.closed and "closed" in repr(m)
    for call in (lambda: m.embedding_size(), lambda: m.save(tmp_path / "x"),
                 lambda: m.num_classes, lambda: m.predict(s1=[[[[0.0]]]])):
        with pytest.raises(mosaic.InvalidArgumentError):
            call()
    o = mosaic.Options()
    o.close()
    with pytest.raises(mosaic.InvalidArgumentError):
        o["classes"]
    with pytest.raises(TypeError):
        mosaic.Model()


def test_garbage_collector_frees():
    import weakref
    m = mosaic.Model.create(TINY)
    fin = m._finalizer
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None and not fin.alive


def test_version_mismatch_is_refused():
    major = _ffi.HEADER_VERSION_MAJOR
    with pytest.raises(mosaic.IncompatibleLibraryError) as e:
        _loader.load_library(major + 1, 0, 0)
    assert isinstance(e.value, ImportError)
    assert "major version" in str(e.value)
    assert "libmosaic %d." % major in str(e.value)


def run_python(code, env_changes, cwd=None):
    env = dict(os.environ)
    env.update(env_changes)
    for k, v in list(env.items()):
        if v is None:
            del env[k]
    return subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, cwd=cwd)


def test_bad_mosaic_library_path():
    res = run_python("import mosaic", {"MOSAIC_LIBRARY": "/nonexistent/libmosaic.so.0",
                                       "PYTHONPATH": BINDINGS})
    assert res.returncode != 0
    assert "LibraryNotFoundError" in res.stderr and "/nonexistent/libmosaic.so.0" in res.stderr
    res = run_python("import mosaic\n", {"MOSAIC_LIBRARY": "/bin/sh", "PYTHONPATH": BINDINGS})
    assert res.returncode != 0 and "LibraryNotFoundError" in res.stderr  # not a library


def test_copy_next_to_the_package(tmp_path):
    """Without MOSAIC_LIBRARY, a libmosaic.so.<MAJOR> inside the package is found first."""
    lib = mosaic.library_path()
    if not os.path.isfile(lib):
        pytest.skip("the library was not loaded from a path")
    pkg = tmp_path / "mosaic"
    shutil.copytree(os.path.join(BINDINGS, "mosaic"), pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "libmosaic.so*"))
    soname = "libmosaic.so.%d" % _ffi.HEADER_VERSION_MAJOR
    shutil.copy(os.path.realpath(lib), pkg / soname)
    res = run_python("import mosaic; print(mosaic.library_path()); print(mosaic.version())",
                     {"MOSAIC_LIBRARY": None, "PYTHONPATH": str(tmp_path),
                      "LD_LIBRARY_PATH": None})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0] == str(pkg / soname)
    assert res.stdout.split()[1] == mosaic.version()


def test_safe_at_exit(synth_dir):
    """Handles still open at exit (a loader with running threads included) are freed
    in a safe order, silently."""
    code = ("import mosaic\n"
            "m = mosaic.Model.create(%r)\n"
            "ds = mosaic.Dataset(%r, split='all')\n"
            "ld = ds.loader(4, workers=2)\n"
            "b = next(ld)\n"
            "o = mosaic.Options(classes=3)\n"
            "mosaic.set_log_callback(lambda l, m: None, 'debug')\n"
            "cycle = [m]; cycle.append(cycle)\n"
            "print('ok')\n" % (TINY, str(synth_dir)))
    res = run_python(code, {"PYTHONPATH": BINDINGS})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok" and res.stderr == ""


def test_null_arguments(tiny_model):
    """NULL where the C API forbids it: an error status, never a crash."""
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.check(_ffi.msc_model_create(None, None))
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.check(_ffi.msc_model_save(None, b"x.safetensors"))
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.check(_ffi.msc_options_set_int(None, b"classes", 3))
    assert _ffi.msc_model_class_count(None) == 0
    _ffi.msc_model_free(None)  # destructors accept NULL
    with pytest.raises(mosaic.InvalidArgumentError):
        tiny_model.save(None)
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Dataset(None)
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Options()[None]


def test_messages_speak_python(synth_dir):
    """A library message naming a C function names the Python one instead; c_message
    keeps the library's text."""
    with mosaic.Dataset(synth_dir, split="all") as ds:
        with pytest.raises(mosaic.NotFoundError) as e:
            ds.stats("s2")  # B01 and B09 have no published statistics
    assert "use Dataset.compute_stats()" in e.value.message
    assert "msc_" not in e.value.message
    assert "use msc_dataset_compute_stats" in e.value.c_message
    assert e.value.c_message.startswith("msc_dataset_stats:")
    assert e.value.message.startswith("Dataset.stats():")
