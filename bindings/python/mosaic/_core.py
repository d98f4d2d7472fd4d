"""The Pythonic layer over the generated ctypes bindings (_ffi).

Handles (Options, Model, Batch, Dataset, Loader) own one C handle each. It is freed
by close() (or leaving a `with` block), or else by the garbage collector through
weakref.finalize, and at the latest at interpreter exit (in reverse order of creation,
so a loader goes before its dataset). After close() every method raises
InvalidArgumentError (a ValueError), never touches freed memory.
"""

import ctypes
import dataclasses
import json
import operator
import os
import re
import threading
import weakref
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

from . import _arrays
from . import _errors
from . import _ffi
from ._errors import InvalidArgumentError, NotFoundError, UnsupportedError
from ._types import Array, ArrayLike, Modality, OptionsLike, PathLike

_NULL_OPTIONS = ctypes.POINTER(_ffi.msc_options)()


# ---------------------------------------------------------------------------------------
# Status checking
# ---------------------------------------------------------------------------------------

def _decode(b):
    return None if b is None else b.decode("utf-8", "replace")


def _encode(s, what):
    if isinstance(s, bytes):
        return s
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
        if isinstance(s, bytes):
            return s
    if not isinstance(s, str):
        raise InvalidArgumentError("%s: expected a string, got %s" % (what, type(s).__name__))
    if "\0" in s:
        raise InvalidArgumentError("%s: the string contains a NUL character" % what)
    return s.encode("utf-8")


def last_error() -> str:
    """The calling thread's last error message (msc_last_error)."""
    return _decode(_ffi.msc_last_error())


def status_string(status: int) -> str:
    """The library's short description of a status code."""
    return _decode(_ffi.msc_status_string(int(status)))


# The C functions a library message may name, and what a Python user calls instead:
# messages speak Python (e.g. "use msc_dataset_compute_stats" -> "use
# Dataset.compute_stats()"); the library's own text stays in e.c_message.
_PYTHON_NAMES = {
    "msc_dataset_open": "mosaic.Dataset()", "msc_dataset_stats": "Dataset.stats()",
    "msc_dataset_compute_stats": "Dataset.compute_stats()",
    "msc_dataset_fill_batch": "Dataset.fill_batch()", "msc_dataset_series": "Dataset.series()",
    "msc_loader_create": "Dataset.loader()", "msc_loader_next": "next(loader)",
    "msc_model_create": "Model.create()", "msc_model_load": "Model.load()",
    "msc_model_save": "Model.save()", "msc_model_copy_weights": "Model.copy_weights()",
    "msc_embed": "Model.embed()", "msc_predict": "Model.predict()",
    "msc_predict_mask": "Model.predict_mask()", "msc_train_step": "Model.train_step()",
    "msc_train_configure": "Model.configure_training()",
    "msc_options_from_dataset": "Options.from_dataset()",
    "msc_options_default_schedule": "Model.fit()'s schedule",
    "msc_batch_set_modality": "Batch.set()", "msc_batch_set_labels": "Batch.set_labels()",
    "msc_batch_set_mask": "Batch.set_mask()", "msc_batch_modality": "Batch.modality()",
    "msc_scene_open": "mosaic.Scene()", "msc_scene_write": "Scene.write()",
}
_C_NAME = re.compile(r"\bmsc_[a-z0-9_]+\b")


def _pythonise(message: str) -> str:
    return _C_NAME.sub(lambda m: _PYTHON_NAMES.get(m.group(0), m.group(0)), message)


def check(status: int) -> None:
    """Raises the mosaic.Error subclass of a non-zero status, with msc_last_error()
    (C function names in it replaced by their Python counterparts; e.c_message keeps
    the library's text)."""
    if status != _ffi.MSC_OK:
        msg = last_error() or status_string(status)
        e = _errors.error_for(status, _pythonise(msg))
        e.c_message = msg
        raise e


def _get_string(fn, *args):
    """Runs a function with the (buf, cap, len) protocol and returns the string."""
    n = ctypes.c_size_t(0)
    st = fn(*args, None, 0, ctypes.byref(n))
    if st not in (_ffi.MSC_OK, _ffi.MSC_E_BUFFER_TOO_SMALL):
        check(st)
    for _ in range(4):  # the value cannot change between calls; be robust anyway
        buf = ctypes.create_string_buffer(n.value + 1)
        st = fn(*args, buf, n.value + 1, ctypes.byref(n))
        if st == _ffi.MSC_OK:
            return buf.value.decode("utf-8", "replace")
        if st != _ffi.MSC_E_BUFFER_TOO_SMALL:
            check(st)
    check(st)


# ---------------------------------------------------------------------------------------
# Versions, backends, logging, synthetic data
# ---------------------------------------------------------------------------------------

def version() -> str:
    """The version of the loaded library, "MAJOR.MINOR.PATCH"."""
    return _decode(_ffi.msc_version_string())


def version_info() -> Tuple[int, int, int]:
    """The version of the loaded library as a tuple (major, minor, patch)."""
    v = int(_ffi.msc_version())
    return (v // 10000, (v // 100) % 100, v % 100)


def header_version() -> Tuple[int, int, int]:
    """The version of the header the bindings were generated from."""
    return (_ffi.HEADER_VERSION_MAJOR, _ffi.HEADER_VERSION_MINOR, _ffi.HEADER_VERSION_PATCH)


def backends() -> List[str]:
    """The names of the known backends, available or not ("cpu" first)."""
    return [_decode(_ffi.msc_backend_name(i)) for i in range(_ffi.msc_backend_count())]


def backend_available(name: str) -> bool:
    """Whether a known backend can be used here; NotFoundError for an unknown name."""
    st = _ffi.msc_backend_available(_encode(name, "backend"))
    if st == _ffi.MSC_E_BACKEND_UNAVAILABLE:
        return False
    check(st)
    return True


def select_backend(request: str = "auto") -> str:
    """The backend a model created with backend=request would run on."""
    chosen = ctypes.c_char_p()
    check(_ffi.msc_backend_select(_encode(request, "backend"), ctypes.byref(chosen)))
    return _decode(chosen.value)


_LOG_LEVELS = {"error": _ffi.MSC_LOG_ERROR, "warning": _ffi.MSC_LOG_WARNING,
               "info": _ffi.MSC_LOG_INFO, "debug": _ffi.MSC_LOG_DEBUG}
_log_lock = threading.Lock()
_log_callback = None  # the CFUNCTYPE object must live as long as it is installed


def set_log_callback(fn: Optional[Callable[[int, str], None]],
                     level: Union[str, int] = "info") -> None:
    """Installs fn(level: int, message: str) as the library's log callback (None
    removes it). It may be called from the library's own threads; exceptions in it are
    ignored. level: "error", "warning", "info", "debug" or an MSC_LOG_* value."""
    global _log_callback
    lvl = _LOG_LEVELS.get(level, level) if isinstance(level, str) else level
    if not isinstance(lvl, int):
        raise InvalidArgumentError("unknown log level %r" % (level,))
    with _log_lock:
        if fn is None:
            check(_ffi.msc_set_log_callback(_ffi.msc_log_fn(), None, int(lvl)))
            _log_callback = None
            return

        def trampoline(level, message, user):
            try:
                fn(int(level), _decode(message))
            except BaseException:  # an exception must not unwind through C
                pass

        cb = _ffi.msc_log_fn(trampoline)
        check(_ffi.msc_set_log_callback(cb, None, int(lvl)))
        _log_callback = cb


def _remove_log_callback_at_exit():
    if _log_callback is not None:
        try:
            _ffi.msc_set_log_callback(_ffi.msc_log_fn(), None, 0)
        except Exception:
            pass


def synth_write(directory: PathLike, n: int, seed: int = 0, format: str = "bigearthnet-v2",
                options: OptionsLike = None) -> str:
    """Writes a synthetic dataset of n patches under directory (msc_synth_write);
    options: a dict of keys it reads (sen1floods11: {"synth.size": 64})."""
    opts, h = _options_handle(options, {})
    try:
        check(_ffi.msc_synth_write(_encode(directory, "directory"), _encode(format, "format"),
                                   int(n), int(seed) & 0xFFFFFFFFFFFFFFFF, h))
    finally:
        if opts is not None:
            opts.close()
    return os.fspath(directory)


# ---------------------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------------------

class _Handle:
    """Owns one C handle: freed once, by close(), the garbage collector or at exit."""

    _free = None  # the msc_*_free function
    _what = "handle"

    def _adopt(self, ptr, free=None, *extra):
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, free or type(self)._free, ptr, *extra)

    def close(self) -> None:
        """Frees the C object now. Safe to call more than once."""
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()
        self._ptr = None

    @property
    def closed(self) -> bool:
        """Whether close() ran (or the object was never opened)."""
        fin = getattr(self, "_finalizer", None)
        return fin is None or not fin.alive

    def _handle(self):
        if self.closed:
            raise InvalidArgumentError("this %s is closed" % self._what)
        return self._ptr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _flatten_options(value, prefix, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgumentError("option keys are strings, got %r" % (k,))
            _flatten_options(v, prefix + "." + k if prefix else k, out)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        out[prefix + ".count"] = len(value)
        for i, v in enumerate(value):
            _flatten_options(v, "%s.%d" % (prefix, i), out)
    else:
        out[prefix] = value


def _option_items(options, kwargs, default_prefix=None):
    """Flat (dotted key, value) pairs from a dict (nested or dotted) and keyword
    arguments (a double underscore stands for a dot: proj__dim=64 is "proj.dim")."""
    flat = {}
    if options is not None:
        if isinstance(options, Options):
            options = options.to_dict()
        elif isinstance(options, str):
            options = json.loads(options)
        if not isinstance(options, dict):
            raise InvalidArgumentError("options: expected a dict, Options or a JSON string")
        _flatten_options(options, "", flat)
    for k, v in kwargs.items():
        k = k.replace("__", ".")
        if default_prefix and "." not in k and k not in ("seed", "threads", "backend",
                                                         "precision", "conv_algorithm"):
            k = default_prefix + k
        _flatten_options(v, k, flat)
    # Counts first, so that indexed keys come after the count that makes them valid.
    return sorted(flat.items(), key=lambda kv: (not kv[0].endswith(".count"),))


class Options(_Handle):
    """Typed key/value settings (msc_options): Options({"proj.dim": 64}, classes=4).

    Values: int, float, str, bool (as 0/1), a list of numbers (for a floats key such as
    "modality.0.mean" the float32 values themselves, msc_options_set_floats; for other
    keys a comma-separated string) or of strings (';'-separated). Nested dicts join keys
    with '.', a list of dicts sets "<key>.count" and "<key>.<i>.*" (as
    msc_options_from_json). Mapping access: opts["proj.dim"], opts["proj.dim"] = 64,
    "proj.dim" in opts (set explicitly), opts.to_dict() / opts.to_json() (the keys set).
    A floats key reads back as a list of floats. opts.copy() (or copy.copy / copy.deepcopy)
    is an independent copy.
    """

    _free = _ffi.msc_options_free
    _what = "options handle"

    def __init__(self, options: OptionsLike = None, **kwargs: Any) -> None:
        ptr = ctypes.POINTER(_ffi.msc_options)()
        check(_ffi.msc_options_create(ctypes.byref(ptr)))
        self._adopt(ptr)
        try:
            self.update(options, **kwargs)
        except BaseException:
            self.close()
            raise

    @classmethod
    def _wrap(cls, ptr):
        self = cls.__new__(cls)
        self._adopt(ptr)
        return self

    @classmethod
    def from_json(cls, text: str) -> "Options":
        """New options from a JSON object of keys (msc_options_from_json)."""
        o = cls()
        o.apply_json(text)
        return o

    def copy(self) -> "Options":
        """An independent deep copy (msc_options_copy): every key set, with its type and
        exact value (floats keys bit for bit, with their text form)."""
        ptr = ctypes.POINTER(_ffi.msc_options)()
        check(_ffi.msc_options_copy(self._handle(), ctypes.byref(ptr)))
        return type(self)._wrap(ptr)

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    @classmethod
    def from_dataset(cls, dataset: "Dataset", options: OptionsLike = None,
                     stats: str = "auto", stats_samples: int = 256,
                     **kwargs: Any) -> "Options":
        """A model configuration for a Dataset (msc_options_from_dataset): the options
        given (a dict, Options or JSON, and keyword arguments), then the keys the dataset
        determines: modalities (count, names, bands, size; since 0.4.0 band names, scale
        and offset), classes, class names and,
        where not given, the normalisation: stats "published" (msc_dataset_stats),
        "computed" (over stats_samples samples, 0: all) or "auto" (published where the
        dataset has them, else computed)."""
        o = cls(options, **kwargs)
        try:
            o.set_from_dataset(dataset, stats=stats, stats_samples=stats_samples)
        except BaseException:
            o.close()
            raise
        return o

    def set_from_dataset(self, dataset: "Dataset", stats: str = "auto",
                         stats_samples: int = 256) -> "Options":
        """Sets the keys that a Dataset determines (see from_dataset); all or nothing."""
        modes = {"auto": _ffi.MSC_STATS_AUTO, "published": _ffi.MSC_STATS_PUBLISHED,
                 "computed": _ffi.MSC_STATS_COMPUTED}
        if stats not in modes:
            raise InvalidArgumentError("stats: expected one of auto, published, computed, "
                                       "got %r" % (stats,))
        if not isinstance(dataset, Dataset):
            raise InvalidArgumentError("dataset: expected a mosaic.Dataset, got %s"
                                       % type(dataset).__name__)
        check(_ffi.msc_options_from_dataset(self._handle(), dataset._handle(), modes[stats],
                                            int(stats_samples)))
        return self

    def set_floats(self, key: str, values: Sequence[float]) -> "Options":
        """Sets a floats key ("modality.0.mean") to a sequence or array of numbers,
        stored as float32 (msc_options_set_floats)."""
        a = _arrays.as_input(values, "float32", key, ndim=1)
        check(_ffi.msc_options_set_floats(self._handle(), _encode(key, "option key"),
                                          a.ptr, a.size))

    def get_floats(self, key: str) -> List[float]:
        """The values of a floats key as a list of Python floats (float32 values)."""
        h, k = self._handle(), _encode(key, "option key")
        n = ctypes.c_size_t()
        st = _ffi.msc_options_get_floats(h, k, None, 0, ctypes.byref(n))
        if st != _ffi.MSC_E_BUFFER_TOO_SMALL:
            check(st)
            return []
        buf = (ctypes.c_float * n.value)()
        check(_ffi.msc_options_get_floats(h, k, buf, n.value, ctypes.byref(n)))
        return [float(v) for v in buf]

    def update(self, options: OptionsLike = None, _prefix: Optional[str] = None,
               **kwargs: Any) -> "Options":
        """Sets every key of options (a dict, nested dicts of dotted parts, or Options) and
        of the keyword arguments; returns self."""
        for key, value in _option_items(options, kwargs, _prefix):
            self.set(key, value)
        return self

    def set(self, key: str, value: Any) -> "Options":
        """Sets one key: a bool, int, float, str or list of floats, as the key's type
        asks (key_type); an unknown key raises NotFoundError. Returns self."""
        h = self._handle()
        k = _encode(key, "option key")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (str, bytes)) and (
                isinstance(value, (list, tuple)) or hasattr(value, "__array__")
                or isinstance(value, memoryview)) and self.key_type(key) == "floats":
            self.set_floats(key, value)
            return
        if isinstance(value, (list, tuple)):
            if all(isinstance(v, str) for v in value):
                value = ";".join(value)
            else:
                value = ",".join(repr(float(v)) if isinstance(v, float) else str(int(v))
                                 for v in value)
        if isinstance(value, str):
            check(_ffi.msc_options_set_string(h, k, _encode(value, key)))
        elif isinstance(value, int):
            st = _ffi.msc_options_set_int(h, k, value)
            if st == _ffi.MSC_E_INVALID_ARGUMENT and self.key_type(key) == "string":
                st = _ffi.msc_options_set_string(h, k, str(value).encode())
            check(st)
        elif isinstance(value, float):
            st = _ffi.msc_options_set_float(h, k, value)
            if st == _ffi.MSC_E_INVALID_ARGUMENT and self.key_type(key) == "string":
                st = _ffi.msc_options_set_string(h, k, repr(value).encode())
            check(st)
        elif hasattr(value, "__int__") and hasattr(value, "dtype"):  # NumPy scalars
            self.set(key, value.item())
        else:
            raise InvalidArgumentError("%s: unsupported value type %s"
                                       % (key, type(value).__name__))

    def key_type(self, key: str) -> str:
        """"int", "float", "string" or "floats"; NotFoundError for an unknown key."""
        h, k = self._handle(), _encode(key, "option key")
        n = ctypes.c_size_t()
        if _ffi.msc_options_get_floats(h, k, None, 0, ctypes.byref(n)) in (
                _ffi.MSC_OK, _ffi.MSC_E_BUFFER_TOO_SMALL):
            return "floats"
        if _ffi.msc_options_get_int(h, k, ctypes.byref(ctypes.c_int64())) == _ffi.MSC_OK:
            return "int"
        if _ffi.msc_options_get_float(h, k, ctypes.byref(ctypes.c_double())) == _ffi.MSC_OK:
            return "float"
        st = _ffi.msc_options_get_string(h, k, None, 0, None)
        if st in (_ffi.MSC_OK, _ffi.MSC_E_BUFFER_TOO_SMALL):
            return "string"
        check(st)
        raise NotFoundError("%s: unknown key" % key)

    def get(self, key: str) -> Any:
        """The value of a key (the value set, else the default), typed as the key."""
        h, k = self._handle(), _encode(key, "option key")
        t = self.key_type(key)
        if t == "int":
            v = ctypes.c_int64()
            check(_ffi.msc_options_get_int(h, k, ctypes.byref(v)))
            return v.value
        if t == "float":
            v = ctypes.c_double()
            check(_ffi.msc_options_get_float(h, k, ctypes.byref(v)))
            return v.value
        if t == "floats":
            return self.get_floats(key)
        return _get_string(_ffi.msc_options_get_string, h, k)

    def is_set(self, key: str) -> bool:
        """Whether key was set explicitly (rather than holding its default)."""
        out = ctypes.c_int32()
        check(_ffi.msc_options_is_set(self._handle(), _encode(key, "option key"),
                                      ctypes.byref(out)))
        return bool(out.value)

    __getitem__ = get
    __setitem__ = set
    __contains__ = is_set

    def apply_json(self, text: str) -> "Options":
        """Applies a JSON document (msc_options_from_json): all or nothing."""
        if not isinstance(text, (str, bytes)):
            text = json.dumps(text)
        check(_ffi.msc_options_from_json(self._handle(), _encode(text, "json")))
        return self

    def to_json(self) -> str:
        """Every key set, as one JSON object with flat dotted keys."""
        return _get_string(_ffi.msc_options_to_json, self._handle())

    def to_dict(self) -> Dict[str, Any]:
        """Every key that is set, as {key: value} (to_json, parsed)."""
        return json.loads(self.to_json())

    def __repr__(self):
        if self.closed:
            return "<mosaic.Options (closed)>"
        return "<mosaic.Options %s>" % self.to_json()


def _options_handle(options, kwargs, prefix=None):
    """(Options or None, pointer) for a call taking `const msc_options *` (NULL if none)."""
    if options is None and not kwargs:
        return None, _NULL_OPTIONS
    if isinstance(options, Options) and not kwargs:
        return None, options._handle()
    o = Options()
    try:
        o.update(options, _prefix=prefix, **kwargs)
    except BaseException:
        o.close()
        raise
    return o, o._handle()


class Batch(_Handle):
    """The N samples of one call (msc_batch): Batch(s1=..., s2=..., labels=...).

    Modalities are N×C×H×W float32 arrays under the model's modality names; labels an
    N×C multi-hot array (0/1); labeled N per-sample flags. The arrays are copied into
    the batch, so the caller's buffers may be reused at once; mask (set_mask) an N×H×W
    int32 per-pixel label map. Everything can be read back: batch["s2"] (or
    batch.modality("s2")) is an N×C×H×W float32 copy of a modality's raw values,
    batch.modality_names their names, batch.pixels all of them as a dict, and labels,
    labeled and mask the rest — for plots, checks or augmentation of one's own (then
    batch.set(name, array) puts the result back).
    """

    _free = _ffi.msc_batch_free
    _what = "batch"

    def __init__(self, labels: Optional[ArrayLike] = None, labeled: Optional[ArrayLike] = None,
                 **modalities: ArrayLike) -> None:
        ptr = ctypes.POINTER(_ffi.msc_batch)()
        check(_ffi.msc_batch_create(ctypes.byref(ptr)))
        self._adopt(ptr)
        self.epoch = None
        try:
            for name, arr in modalities.items():
                self.set(name, arr)
            if labels is not None:
                self.set_labels(labels)
            if labeled is not None:
                self.set_labeled(labeled)
        except BaseException:
            self.close()
            raise

    def set(self, name: str, nchw: ArrayLike) -> "Batch":
        """Sets (or replaces) modality `name`: an N×C×H×W array of float32."""
        a = _arrays.as_input(nchw, "float32", "modality %s" % name, ndim=4)
        n, c, h, w = a.shape
        check(_ffi.msc_batch_set_modality(self._handle(), _encode(name, "modality"), a.ptr,
                                          n, c, h, w))
        return self

    __setitem__ = set

    def remove(self, name: str) -> "Batch":
        """Removes modality `name` from the batch (msc_batch_remove_modality): a fused
        model then embeds and predicts without it (docs/model.md, "Missing modalities")."""
        check(_ffi.msc_batch_remove_modality(self._handle(), _encode(name, "modality")))
        return self

    __delitem__ = remove

    @property
    def modality_names(self) -> Tuple[str, ...]:
        """The names of the batch's modalities, in order (msc_batch_modality_name)."""
        h = self._handle()
        return tuple(_decode(_ffi.msc_batch_modality_name(h, i))
                     for i in range(_ffi.msc_batch_modality_count(h)))

    def modality(self, name: str) -> Array:
        """A copy of modality `name`: N×C×H×W float32, the raw values that were set or read
        from the dataset (msc_batch_modality). mosaic.NotFoundError (a LookupError) if
        the batch has no such modality."""
        return self._modality(name, squeeze=False)

    def _modality(self, name, squeeze):
        # squeeze: the C×H×W array of a batch of one sample (Dataset.__getitem__)
        hd = self._handle()
        key = _encode(name, "modality")
        c, h, w = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        check(_ffi.msc_batch_modality(hd, key, None, 0, ctypes.byref(c), ctypes.byref(h),
                                      ctypes.byref(w)))
        shape = (len(self), c.value, h.value, w.value)
        if squeeze and shape[0] == 1:
            shape = shape[1:]
        out, ptr = _arrays.output(shape, "float32")
        count = 1
        for d in shape:
            count *= d
        check(_ffi.msc_batch_modality(hd, key, ptr, count, None, None, None))
        return out

    __getitem__ = modality

    def __contains__(self, name):
        return name in self.modality_names

    @property
    def pixels(self) -> Dict[str, Array]:
        """Every modality as {name: N×C×H×W float32 array} (copies)."""
        return {n: self.modality(n) for n in self.modality_names}

    def set_labels(self, multi_hot: ArrayLike) -> "Batch":
        """Sets the N×C multi-hot labels (each 0 or 1; bool arrays are fine)."""
        a = _arrays.as_input(multi_hot, "uint8", "labels", ndim=2)
        check(_ffi.msc_batch_set_labels(self._handle(), a.ptr, a.shape[0], a.shape[1]))
        return self

    def set_labeled(self, flags: ArrayLike) -> "Batch":
        """Sets the N per-sample flags (true: the sample's labels are known)."""
        a = _arrays.as_input(flags, "uint8", "labeled", ndim=1)
        check(_ffi.msc_batch_set_labeled(self._handle(), a.ptr, a.shape[0]))
        return self

    @property
    def labels(self) -> Optional[Array]:
        """The N×C multi-hot labels as uint8 (msc_batch_labels), or None without labels."""
        h = self._handle()
        classes = ctypes.c_int64()
        st = _ffi.msc_batch_labels(h, None, 0, ctypes.byref(classes))
        if st == _ffi.MSC_E_NOT_FOUND:
            return None
        check(st)
        n, c = len(self), classes.value
        out, ptr = _arrays.output((n, c), "uint8")
        check(_ffi.msc_batch_labels(h, ptr, n * c, None))
        return out

    @property
    def labeled(self) -> Array:
        """N uint8 flags: 1 where the supervised terms use the sample's labels, 0 for an
        unlabelled sample (set_labeled, or a dataset with data.labeled_fraction < 1)."""
        n = len(self)
        out, ptr = _arrays.output((n,), "uint8")
        check(_ffi.msc_batch_labeled(self._handle(), ptr, n))
        return out

    def set_mask(self, mask: ArrayLike) -> "Batch":
        """Sets the N×H×W per-pixel label map (int32 class indices, or the ignore value
        for pixels without a class; msc_batch_set_mask)."""
        a = _arrays.as_input(mask, "int32", "mask", ndim=3)
        n, h, w = a.shape
        check(_ffi.msc_batch_set_mask(self._handle(), a.ptr, n, h, w))
        return self

    @property
    def mask(self) -> Optional[Array]:
        """The N×H×W int32 label map (msc_batch_mask), or None without a mask."""
        hd = self._handle()
        h, w = ctypes.c_int64(), ctypes.c_int64()
        st = _ffi.msc_batch_mask(hd, None, 0, ctypes.byref(h), ctypes.byref(w))
        if st == _ffi.MSC_E_NOT_FOUND:
            return None
        check(st)
        shape = (len(self), h.value, w.value)
        out, ptr = _arrays.output(shape, "int32")
        check(_ffi.msc_batch_mask(hd, ptr, shape[0] * shape[1] * shape[2], None, None))
        return out

    def __len__(self) -> int:
        """The number of samples N (0 while empty)."""
        return int(_ffi.msc_batch_size(self._handle()))

    @property
    def size(self) -> int:
        """len(batch)."""
        return len(self)

    def __repr__(self):
        if self.closed:
            return "<mosaic.Batch (closed)>"
        return "<mosaic.Batch of %d samples>" % len(self)


class _BatchArg:
    """The batch of a call: the one given, or a temporary one built from arrays."""

    def __init__(self, batch, arrays, labels=None, labeled=None):
        self.temp = None
        if batch is not None:
            if arrays or labels is not None or labeled is not None:
                raise InvalidArgumentError("give either a Batch or arrays, not both")
            if not isinstance(batch, Batch):
                raise InvalidArgumentError("batch: expected a mosaic.Batch, got %s"
                                           % type(batch).__name__)
            self.batch = batch
        else:
            if not arrays:
                raise InvalidArgumentError("no input: give the modalities as keyword "
                                           "arrays (s1=..., s2=...) or a Batch")
            self.temp = self.batch = Batch(labels=labels, labeled=labeled, **arrays)

    def __enter__(self):
        return self.batch

    def __exit__(self, *exc):
        if self.temp is not None:
            self.temp.close()
        return False


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What one training step did (msc_step_result)."""

    step: int
    loss: float
    loss_intra: float
    loss_inter: float
    loss_fused: float
    loss_views: float
    loss_bce: float
    lr: float
    skipped: bool
    loss_seg: float = 0.0  # per-pixel cross-entropy of a segmentation model (0.4.0)
    loss_dice: float = 0.0  # soft Dice loss of a segmentation model (0.4.0)

    def as_dict(self) -> Dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


_EMBED_KINDS = ("fused", "fused_projection", "features", "projection")


class Model(_Handle):
    """A MoSAiC model (msc_model). Create with Model.create(...) or Model.load(path)."""

    _free = _ffi.msc_model_free
    _what = "model"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Not for direct use: Model.create(...) or Model.load(path)."""
        raise TypeError("use Model.create(...) or Model.load(path)")

    @classmethod
    def _wrap(cls, ptr):
        self = object.__new__(cls)
        self._adopt(ptr)
        return self

    @classmethod
    def create(cls, options: OptionsLike = None, **kwargs: Any) -> "Model":
        """A new model with seeded initialisation.

        options: a dict of option keys (dotted, e.g. {"modality.0.encoder": "tiny"},
        or nested: {"modality": [{"encoder": "tiny"}, ...], "proj": {"dim": 64}}), an
        Options handle or a JSON string; keyword arguments are more keys (a double
        underscore stands for a dot: proj__dim=64).
        """
        opts, h = _options_handle(options, kwargs)
        try:
            ptr = ctypes.POINTER(_ffi.msc_model)()
            check(_ffi.msc_model_create(h, ctypes.byref(ptr)))
            return cls._wrap(ptr)
        finally:
            if opts is not None:
                opts.close()

    @classmethod
    def load(cls, path: PathLike, options: OptionsLike = None, **kwargs: Any) -> "Model":
        """Loads a model saved by save(); options/keywords: run-time keys ("backend",
        "threads", "precision", "conv_algorithm")."""
        opts, h = _options_handle(options, kwargs)
        try:
            ptr = ctypes.POINTER(_ffi.msc_model)()
            check(_ffi.msc_model_load(_encode(path, "path"), h, ctypes.byref(ptr)))
            return cls._wrap(ptr)
        finally:
            if opts is not None:
                opts.close()

    def save(self, path: PathLike) -> None:
        """Saves configuration, weights and training state atomically (safetensors)."""
        check(_ffi.msc_model_save(self._handle(), _encode(path, "path")))

    # -- description ---------------------------------------------------------------
    def options(self) -> Dict[str, Any]:
        """The model's full configuration as a dict of dotted keys."""
        ptr = ctypes.POINTER(_ffi.msc_options)()
        check(_ffi.msc_model_options(self._handle(), ctypes.byref(ptr)))
        with Options._wrap(ptr) as o:
            return o.to_dict()

    @property
    def backend(self) -> str:
        """The backend the model runs on (\"cpu\", \"cuda\")."""
        return _decode(_ffi.msc_model_backend(self._handle()))

    @property
    def modality_names(self) -> Tuple[str, ...]:
        """The names of the model's modalities, in order."""
        h = self._handle()
        return tuple(_decode(_ffi.msc_model_modality_name(h, i))
                     for i in range(_ffi.msc_model_modality_count(h)))

    def _modality_index(self, modality):
        names = self.modality_names
        if isinstance(modality, int) and not isinstance(modality, bool):
            if not 0 <= modality < len(names):
                raise NotFoundError("modality %d: the model has %d" % (modality, len(names)))
            return modality
        if modality not in names:
            raise NotFoundError("modality %r: the model has %s" % (modality, ", ".join(names)))
        return names.index(modality)

    def modality_shape(self, modality: Modality) -> Tuple[int, int]:
        """(bands, size) of a modality given by name or index."""
        i = self._modality_index(modality)
        b, s = ctypes.c_int64(), ctypes.c_int64()
        check(_ffi.msc_model_modality_shape(self._handle(), i, ctypes.byref(b),
                                            ctypes.byref(s)))
        return (b.value, s.value)

    @property
    def modalities(self) -> Dict[str, Tuple[int, int]]:
        """{name: (bands, size)} in the model's order."""
        return {n: self.modality_shape(i) for i, n in enumerate(self.modality_names)}

    def band_names(self, modality: Modality) -> Optional[Tuple[Optional[str], ...]]:
        """The band names a modality expects, in order (a tuple of str, None where the
        model has no names: made without a dataset, or saved before 0.4.0)."""
        i = self._modality_index(modality)
        bands, _ = self.modality_shape(i)
        h = self._handle()
        return tuple(_decode(_ffi.msc_model_band_name(h, i, b)) if
                     _ffi.msc_model_band_name(h, i, b) else None for b in range(bands))

    def inputs(self, modality: Modality) -> List[Dict[str, Any]]:
        """What a modality expects, band by band in order: a list of dicts with name,
        scale and offset (physical = raw * scale + offset) and the normalisation mean and
        std applied to the raw value (msc_model_band_info)."""
        i = self._modality_index(modality)
        bands, _ = self.modality_shape(i)
        names = self.band_names(i)
        out = []
        for b in range(bands):
            v = [ctypes.c_double() for _ in range(4)]
            check(_ffi.msc_model_band_info(self._handle(), i, b, *[ctypes.byref(x) for x in v]))
            out.append({"name": names[b], "scale": v[0].value, "offset": v[1].value,
                        "mean": v[2].value, "std": v[3].value})
        return out

    @property
    def num_classes(self) -> int:
        """The number of classes of the classifier."""
        return int(_ffi.msc_model_class_count(self._handle()))

    @property
    def class_names(self) -> Tuple[str, ...]:
        """The class names, in the classifier's order."""
        h = self._handle()
        return tuple(_decode(_ffi.msc_model_class_name(h, i))
                     for i in range(_ffi.msc_model_class_count(h)))

    @property
    def parameter_count(self) -> int:
        """The number of trainable and running-statistic values of the model."""
        return int(_ffi.msc_model_parameter_count(self._handle()))

    @property
    def step(self) -> int:
        """Optimiser steps taken, including those of the checkpoint it was loaded from."""
        return int(_ffi.msc_model_step(self._handle()))

    def copy_weights(self, source: "Model", prefix: str = "enc.") -> None:
        """Copies the weights of Model `source` that this model has under the same name and
        shape, those whose names start with prefix ("enc.": every encoder; None: all), e.g.
        a PIMC-pretrained "s2" encoder into a EuroSAT model (msc_model_copy_weights).
        Returns the number of tensors copied."""
        copied = ctypes.c_int64()
        check(_ffi.msc_model_copy_weights(self._handle(), source._handle(),
                                          None if prefix is None else prefix.encode(),
                                          ctypes.byref(copied)))
        return copied.value

    def reset_classifier(self, seed: int) -> None:
        """Reinitialises the classification head from seed, as a fresh model with that
        seed has it (msc_model_reset_classifier): the start of a linear probe."""
        check(_ffi.msc_model_reset_classifier(self._handle(), int(seed)))
        return self

    # -- inference -----------------------------------------------------------------
    def _which(self, kind, modality, arrays):
        if isinstance(kind, int) and not isinstance(kind, bool):
            return kind
        if kind in self.modality_names and kind not in _EMBED_KINDS:
            kind, modality = "features", kind
        elif isinstance(kind, str) and kind.endswith("_projection") \
                and kind[:-len("_projection")] in self.modality_names and kind != "fused_projection":
            kind, modality = "projection", kind[:-len("_projection")]
        if kind == "fused":
            return _ffi.MSC_EMBED_FUSED
        if kind == "fused_projection":
            return _ffi.MSC_EMBED_FUSED_PROJECTION
        if kind in ("features", "projection"):
            if modality is None:
                if arrays is not None and len(arrays) == 1:
                    modality = next(iter(arrays))
                else:
                    raise InvalidArgumentError("kind=%r needs modality=<name>" % kind)
            i = self._modality_index(modality)
            return (_ffi.MSC_EMBED_MODALITY(i) if kind == "features"
                    else _ffi.MSC_EMBED_MODALITY_PROJECTION(i))
        raise InvalidArgumentError(
            "kind=%r: expected 'fused', 'fused_projection', 'features' or 'projection' "
            "(with modality=), a modality name, '<name>_projection' or an MSC_EMBED_* value"
            % (kind,))

    def embedding_size(self, kind: Union[str, int] = "fused",
                       modality: Optional[Modality] = None) -> int:
        """The size of one sample's embedding of the given kind."""
        size = ctypes.c_int64()
        check(_ffi.msc_model_embedding_size(self._handle(), self._which(kind, modality, None),
                                            ctypes.byref(size)))
        return size.value

    def embed(self, batch: Optional["Batch"] = None, *, kind: Union[str, int] = "fused",
              modality: Optional[Modality] = None, **arrays: ArrayLike) -> Array:
        """Embeddings of the samples, N × size float32 (inference mode).

        Inputs: a Batch, or the modalities as keyword arrays (s1=..., s2=...), each
        N×C×H×W. kind: "fused" (h_f, the default), "fused_projection" (ẑ_f),
        "features" / "projection" of one modality (modality=<name or index>; or
        kind=<name> / "<name>_projection"), or an MSC_EMBED_* value. Only the
        modalities the output needs must be given; the fused kinds take any non-empty
        subset of the model's modalities (an absent one's features are zeros and the
        present ones are scaled by n_mod / n_present: docs/model.md).
        """
        which = self._which(kind, modality, arrays or None)
        with _BatchArg(batch, arrays) as b:
            size = ctypes.c_int64()
            h = self._handle()
            check(_ffi.msc_model_embedding_size(h, which, ctypes.byref(size)))
            n = len(b)
            out, ptr = _arrays.output((n, size.value), "float32")
            check(_ffi.msc_embed(h, b._handle(), which, ptr, n * size.value))
            return out

    def calibrate(self, batch: Optional["Batch"] = None, **arrays: ArrayLike) -> None:
        """Calibrates a model of precision "int8" (msc_model_calibrate; docs/precision.md):
        runs the batch (every modality: a Batch or keyword arrays) in float32 and records
        the range of every convolution's and linear layer's input; calls accumulate, and
        embed/predict then compute those layers in 8 bits. calibrate(None) with no arrays
        forgets the ranges. mosaic.InvalidArgumentError for a model of another precision.
        """
        if batch is None and not arrays:
            check(_ffi.msc_model_calibrate(self._handle(), None))
            return
        with _BatchArg(batch, arrays) as b:
            check(_ffi.msc_model_calibrate(self._handle(), b._handle()))

    def predict(self, batch: Optional["Batch"] = None, **arrays: ArrayLike) -> Array:
        """Per-class probabilities, N × C float32 from any non-empty subset of the
        model's modalities (the classifier reads the fused features, absent modalities
        as docs/model.md says): the sigmoid of each logit, or for a single-label model
        (option labels="single") the softmax of each row."""
        with _BatchArg(batch, arrays) as b:
            n, c = len(b), self.num_classes
            out, ptr = _arrays.output((n, c), "float32")
            check(_ffi.msc_predict(self._handle(), b._handle(), ptr, n * c))
            return out

    def predict_mask(self, batch: Optional["Batch"] = None, *, probs: bool = False,
                     **arrays: ArrayLike) -> Array:
        """Per-pixel classes of a segmentation model (option task="segmentation"):
        N × H × W int32 arg max of the decoder's logits; with probs=True the pair
        (classes, probabilities), the latter N × C × H × W float32, a softmax over the
        classes of every pixel (msc_predict_mask; docs/segmentation.md)."""
        with _BatchArg(batch, arrays) as b:
            n, c = len(b), self.num_classes
            size = self.modality_shape(0)[1]
            classes, cptr = _arrays.output((n, size, size), "int32")
            p, pptr = _arrays.output((n, c, size, size), "float32") if probs else (None, None)
            check(_ffi.msc_predict_mask(self._handle(), b._handle(), cptr, n * size * size,
                                        pptr, n * c * size * size if probs else 0))
            return (classes, p) if probs else classes

    # -- training ------------------------------------------------------------------
    def configure_training(self, options: OptionsLike = None, **kwargs: Any) -> None:
        """Sets the training configuration from training keys (msc_train_configure);
        with no argument, the defaults (preset mosaic1, AdamW)."""
        opts, h = _options_handle(options, kwargs)
        try:
            check(_ffi.msc_train_configure(self._handle(), h))
        finally:
            if opts is not None:
                opts.close()

    def train_step(self, batch: Optional["Batch"] = None, *, labels: Optional[ArrayLike] = None,
                   labeled: Optional[ArrayLike] = None, raise_on_skip: bool = False,
                   **arrays: ArrayLike) -> "StepResult":
        """One training step on N >= 2 samples; returns a StepResult.

        A step skipped because the loss or a gradient was not finite returns a result
        with skipped=True (the weights are unchanged; training may go on), or raises
        NumericalError with raise_on_skip=True. A non-finite input raises NumericalError.
        """
        with _BatchArg(batch, arrays, labels, labeled) as b:
            r = _ffi.msc_step_result()
            r.struct_size = ctypes.sizeof(_ffi.msc_step_result)
            r.skipped = -1  # untouched on errors other than a skipped step
            st = _ffi.msc_train_step(self._handle(), b._handle(), ctypes.byref(r))
            if st != _ffi.MSC_OK and not (st == _ffi.MSC_E_NUMERICAL and r.skipped == 1
                                          and not raise_on_skip):
                check(st)
            return StepResult(step=r.step, loss=r.loss, loss_intra=r.loss_intra,
                              loss_inter=r.loss_inter, loss_fused=r.loss_fused,
                              loss_views=r.loss_views, loss_bce=r.loss_bce, lr=r.lr,
                              skipped=bool(r.skipped == 1), loss_seg=r.loss_seg,
                              loss_dice=r.loss_dice)

    def set_dist(self, dist: Optional["Dist"]) -> None:
        """Makes training data-parallel over dist (every rank calls it: rank 0's weights
        and optimiser state go to every rank), or single-process again with None
        (msc_train_set_dist). Every rank's model must have the same architecture; the
        communicator must stay open while it is attached (Dist.close detaches it)."""
        if dist is None:
            check(_ffi.msc_train_set_dist(self._handle(), None))
            old = getattr(self, "_dist", None)
            if old is not None:
                old._attached.discard(self)
            self._dist = None
            return
        if not isinstance(dist, Dist):
            raise InvalidArgumentError("dist: expected a mosaic.Dist or None")
        check(_ffi.msc_train_set_dist(self._handle(), dist._handle()))
        self._dist = dist  # (the communicator outlives the attachment)
        dist._attached.add(self)

    def fit(self, dataset: "Dataset", epochs: int = 1, batch_size: int = 32, *,
            seed: int = 0, workers: int = 2, options: OptionsLike = None,
            validation: Optional["Dataset"] = None,
            callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
            dist: Optional["Dist"] = None) -> List[Dict[str, Any]]:
        """Trains on dataset for `epochs` epochs as `mosaic train` does, and returns the
        history: one dict per epoch.

        Batches of batch_size samples (at most the dataset's size) come in a seeded order,
        new every epoch, every batch full (drop_last), read ahead by `workers` threads.
        The training configuration is options' training keys (train.preset, optim.*,
        lambda.*, aug.*: docs/options.md), with the learning-rate schedule over the whole
        run for the keys not given: cosine decay over epochs × len(loader) steps with a
        5 % warm-up (msc_options_default_schedule, the tool's default too). Each history
        entry has epoch, steps, skipped (steps skipped for a non-finite loss), loss and
        each loss term (means over the epoch's other steps), lr (at its end), seconds and,
        with a validation dataset, its metrics (evaluate(validation): macro_ap, ...).
        callback(entry) runs after every epoch; returning False stops training.

        With dist (a Dist; every rank calls fit alike), training is data-parallel: the
        model is attached for the run (set_dist) and detached after it, each rank reads its
        share of every global batch of batch_size samples, and the steps are those of one
        process on the global batch. Validation and the callback run on every rank; after
        every batch read and at the end of each epoch the ranks agree (Dist.agree): an
        exception on one rank (reading its data, in validation or the callback) is raised
        there and as CommError on the others, and a callback returning False on any rank
        stops every rank.
        """
        if epochs < 1:
            raise InvalidArgumentError("epochs must be >= 1, not %d" % epochs)
        if len(dataset) < 2:
            raise InvalidArgumentError("training needs at least 2 samples, the dataset has %d"
                                       % len(dataset))
        if dist is not None and not isinstance(dist, Dist):
            raise InvalidArgumentError("dist: expected a mosaic.Dist or None")
        bs = max(2, min(int(batch_size), len(dataset)))
        rank, ranks = (dist.rank, dist.size) if dist is not None else (0, 1)
        try:
            return self._fit(dataset, epochs, bs, seed, workers, options, validation,
                             callback, dist, rank, ranks)
        finally:
            if dist is not None and not self.closed:
                self.set_dist(None)

    def _fit(self, dataset, epochs, bs, seed, workers, options, validation, callback, dist,
             rank, ranks):
        import time
        history = []
        with dataset.loader(bs, seed=seed, workers=workers, drop_last=True, rank=rank,
                            ranks=ranks) as loader:
            # (the schedule goes into a copy: the caller's options stay as given)
            opts = options.copy() if isinstance(options, Options) else Options(options)
            try:
                check(_ffi.msc_options_default_schedule(opts._handle(), epochs * len(loader)))
                check(_ffi.msc_train_configure(self._handle(), opts._handle()))
            finally:
                opts.close()
            if dist is not None:
                self.set_dist(dist)
            names = ("loss", "loss_intra", "loss_inter", "loss_fused", "loss_views", "loss_bce",
                     "loss_seg", "loss_dice")
            for epoch in range(epochs):
                start = time.monotonic()
                sums = dict.fromkeys(names, 0.0)
                steps = skipped = 0
                lr = 0.0
                batches = iter(loader)
                while True:
                    # Every rank reads the same number of batches; with dist the ranks
                    # agree on each read, so that one whose data fails (a corrupt file in
                    # its share) stops every rank at once (CommError on the others)
                    # instead of leaving them in the step's collectives until the timeout.
                    try:
                        batch = next(batches)
                    except StopIteration:
                        break
                    except BaseException as e:
                        if dist is not None:
                            dist.agree(e)
                        raise
                    try:
                        if dist is not None:
                            dist.agree()  # (raises CommError when another rank failed)
                        r = self.train_step(batch)
                    finally:
                        batch.close()
                    steps += 1
                    lr = r.lr
                    if r.skipped:
                        skipped += 1
                        continue
                    for k in names:
                        sums[k] += getattr(r, k)
                kept = steps - skipped
                entry = {"epoch": epoch, "steps": steps, "skipped": skipped, "lr": lr}
                entry.update({k: (v / kept if kept else float("nan")) for k, v in sums.items()})
                entry["seconds"] = time.monotonic() - start
                stop = False
                try:
                    if validation is not None:
                        entry["validation"] = self.evaluate(validation)
                    history.append(entry)
                    stop = callback is not None and callback(entry) is False
                except BaseException as e:
                    if dist is not None:
                        dist.agree(e)  # the other ranks raise CommError
                    raise
                if dist is not None:
                    dist.agree()  # (raises CommError when another rank failed)
                    # a stop on any rank stops every rank
                    stop = dist._agree_count(_ffi.MSC_E_CANCELLED if stop else _ffi.MSC_OK,
                                             "stopped by the callback", False) > 0
                if stop:
                    break
        return history

    def evaluate(self, dataset: "Dataset", batch_size: int = 64,
                 threshold: float = 0.5) -> Dict[str, Any]:
        """The classifier's metrics on every sample of a labelled dataset: predict() in
        batches, then mosaic.metrics.compute (macro and micro AP, F1 at threshold,
        Hamming loss, Brier score, ...) of the probabilities against the labels, plus
        "samples". Needs NumPy."""
        from . import metrics
        if _arrays.np is None:
            raise UnsupportedError("Model.evaluate needs NumPy")
        np = _arrays.np
        if dataset.num_classes == 0:
            raise InvalidArgumentError("the dataset has no labels to evaluate against")
        probs, labels = [], []
        for batch in dataset.batches(max(1, int(batch_size))):
            with batch:
                probs.append(self.predict(batch))
                labels.append(batch.labels)
        out = metrics.compute(np.concatenate(probs), np.concatenate(labels), threshold)
        out["samples"] = len(dataset)
        return out

    def __repr__(self):
        if self.closed:
            return "<mosaic.Model (closed)>"
        return "<mosaic.Model %s on %s, %d classes, %d parameters>" % (
            ", ".join("%s %dx%dx%d" % (n, b, s, s) for n, (b, s) in self.modalities.items()),
            self.backend, self.num_classes, self.parameter_count)


def train(root: PathLike, format: str = "bigearthnet-v2", *, epochs: int = 1,
          batch_size: int = 32, model: OptionsLike = None, options: OptionsLike = None,
          split: str = "train", validation: Optional[str] = None, stats: str = "auto",
          stats_samples: int = 256, seed: int = 0, workers: int = 2,
          callback: Optional[Callable[[Dict[str, Any]], Any]] = None,
          **data: Any) -> "Model":
    """Opens the dataset at root (split, and data.* keys as keywords: fraction=0.1, ...),
    builds a model for it as `mosaic train` does (model: the model keys, e.g.
    {"modality.0.encoder": "tiny"}; the modalities, classes and normalisation statistics
    come from the dataset: Options.from_dataset with stats / stats_samples), trains it
    with Model.fit (options: the training keys; validation: a split scored after every
    epoch) and returns it, with the history of fit() as model.history."""
    with Dataset(root, format, split=split, **data) as ds:
        with Options.from_dataset(ds, model, stats=stats, stats_samples=stats_samples) as mo:
            m = Model.create(mo)
        try:
            val = Dataset(root, format, split=validation, **data) if validation else None
            try:
                m.history = m.fit(ds, epochs, batch_size, seed=seed, workers=workers,
                                  options=options, validation=val, callback=callback)
            finally:
                if val is not None:
                    val.close()
        except BaseException:
            m.close()
            raise
    return m


# ---------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------

def _free_dataset(ptr, loader_finalizers):
    for fin in list(loader_finalizers):
        fin()  # a no-op for a loader already freed
    _ffi.msc_dataset_free(ptr)


class Dataset(_Handle):
    """A dataset on disk (msc_dataset): Dataset(root, "bigearthnet-v2", split="all").

    Keyword options without a dot are data.* keys (split="train" is data.split;
    "seed" stays "seed"); options= takes a dict of full keys. len(ds) is the number of
    samples; ds[i] is sample i as a dict of arrays (as a TorchGeo dataset gives it) and
    iterating gives the samples in order; fill_batch(indices) reads samples into a Batch;
    batches(n) iterates over the dataset in Batches; loader(...) gives shuffled,
    prefetched batches for training.
    """

    _free = _ffi.msc_dataset_free
    _what = "dataset"

    def __init__(self, root: PathLike, format: str = "bigearthnet-v2",
                 options: OptionsLike = None, **kwargs: Any) -> None:
        opts, h = _options_handle(options, kwargs, prefix="data.")
        try:
            ptr = ctypes.POINTER(_ffi.msc_dataset)()
            check(_ffi.msc_dataset_open(_encode(root, "root"), _encode(format, "format"), h,
                                        ctypes.byref(ptr)))
        finally:
            if opts is not None:
                opts.close()
        # The finalizers of the loaders over this dataset: freeing the dataset (by close,
        # the garbage collector or at exit, in whatever order a collected cycle comes)
        # frees them first, so no loader thread ever reads a freed dataset.
        self._loader_finalizers = []
        self._adopt(ptr, _free_dataset, self._loader_finalizers)
        self.root = os.fspath(root)
        self.format = format

    def __len__(self) -> int:
        """The number of samples."""
        return int(_ffi.msc_dataset_size(self._handle()))

    @property
    def size(self) -> int:
        """len(dataset)."""
        return len(self)

    @property
    def skipped(self) -> int:
        """Patches left out at open because a file was missing (data.on_missing=skip)."""
        return int(_ffi.msc_dataset_skipped(self._handle()))

    @property
    def labeled_count(self) -> int:
        """Samples whose labels the supervised terms see (all, unless data.labeled_fraction
        < 1 marked the others unlabelled; 0 without labels)."""
        return int(_ffi.msc_dataset_labeled_count(self._handle()))

    @property
    def num_classes(self) -> int:
        """The number of classes of the dataset's labels (0 without labels)."""
        return int(_ffi.msc_dataset_class_count(self._handle()))

    @property
    def single_label(self) -> bool:
        """True for a single-label format (EuroSAT: one class per sample)."""
        if not hasattr(_ffi, "msc_dataset_single_label"):
            return False
        return bool(_ffi.msc_dataset_single_label(self._handle()))

    @property
    def class_names(self) -> Tuple[str, ...]:
        """The class names of the dataset's labels, in order."""
        h = self._handle()
        return tuple(_decode(_ffi.msc_dataset_class_name(h, i))
                     for i in range(_ffi.msc_dataset_class_count(h)))

    @property
    def mask_info(self) -> Optional[Tuple[int, int, int]]:
        """(classes, ignore_index, size) of the samples' per-pixel masks, or None when
        they carry none (msc_dataset_mask_info)."""
        h = self._handle()
        c, ig, sz = ctypes.c_int64(), ctypes.c_int32(), ctypes.c_int64()
        st = _ffi.msc_dataset_mask_info(h, ctypes.byref(c), ctypes.byref(ig), ctypes.byref(sz))
        if st == _ffi.MSC_E_NOT_FOUND:
            return None
        check(st)
        return (c.value, ig.value, sz.value)

    @property
    def mask_class_names(self) -> Tuple[str, ...]:
        """The names of the mask's classes (empty without masks)."""
        info = self.mask_info
        h = self._handle()
        return tuple(_decode(_ffi.msc_dataset_mask_class_name(h, i))
                     for i in range(info[0] if info else 0))

    @property
    def modality_names(self) -> Tuple[str, ...]:
        """The names of the dataset's modalities, in order."""
        h = self._handle()
        return tuple(_decode(_ffi.msc_dataset_modality_name(h, i))
                     for i in range(_ffi.msc_dataset_modality_count(h)))

    def _modality_index(self, modality):
        names = self.modality_names
        if isinstance(modality, int) and not isinstance(modality, bool):
            return modality  # the library checks the range (NotFoundError)
        if modality not in names:
            raise NotFoundError("modality %r: the dataset has %s"
                                % (modality, ", ".join(names)))
        return names.index(modality)

    def modality_shape(self, modality: Modality) -> Tuple[int, int]:
        """(bands, size) of a modality (name or index), after resampling."""
        b, s = ctypes.c_int64(), ctypes.c_int64()
        check(_ffi.msc_dataset_modality_shape(self._handle(), self._modality_index(modality),
                                              ctypes.byref(b), ctypes.byref(s)))
        return (b.value, s.value)

    @property
    def modalities(self) -> Dict[str, Tuple[int, int]]:
        """{name: (bands, size)} in the dataset's order."""
        return {n: self.modality_shape(i) for i, n in enumerate(self.modality_names)}

    def band_names(self, modality: Modality) -> Optional[Tuple[str, ...]]:
        """The band names of a modality (name or index) in order; None for a format
        without names (manifest)."""
        i = self._modality_index(modality)
        bands, _ = self.modality_shape(i)
        h = self._handle()
        names = [_ffi.msc_dataset_band_name(h, i, b) for b in range(bands)]
        return tuple(_decode(n) for n in names) if all(names) else None

    def band_scale(self, modality: Modality, band: int) -> Tuple[float, float]:
        """(scale, offset) of a band's values: physical = value * scale + offset
        (msc_dataset_band_scale)."""
        s, o = ctypes.c_double(), ctypes.c_double()
        check(_ffi.msc_dataset_band_scale(self._handle(), self._modality_index(modality), band,
                                          ctypes.byref(s), ctypes.byref(o)))
        return (s.value, o.value)

    def sample_id(self, i: int) -> str:
        """The id of sample i (e.g. the BigEarthNet patch name)."""
        if i < 0:
            i += len(self)
        return _get_string(_ffi.msc_dataset_sample_id, self._handle(), int(i))

    def sample_ids(self) -> List[str]:
        """The ids of all samples, in order."""
        return [self.sample_id(i) for i in range(len(self))]

    def series(self, i: int) -> Tuple[Array, Array]:
        """The time series behind sample i of a time-series dataset (format "pastis"):
        (values, days), values a T × C float32 array on the dataset's time axis (NaN where
        missing), days the T dates as days since 1970-01-01 (msc_dataset_series)."""
        if i < 0:
            i += len(self)
        t = ctypes.c_int64()
        c = ctypes.c_int64()
        check(_ffi.msc_dataset_series(self._handle(), int(i), None, 0, None,
                                      ctypes.byref(t), ctypes.byref(c)))
        values, pv = _arrays.output((t.value, c.value), "float32")
        days, pd = _arrays.output((t.value,), "float64")
        check(_ffi.msc_dataset_series(self._handle(), int(i), pv, t.value * c.value, pd,
                                      ctypes.byref(t), ctypes.byref(c)))
        return values, days

    def fill_batch(self, indices: Union[Sequence[int], ArrayLike],
                   batch: Optional["Batch"] = None) -> "Batch":
        """Reads the samples `indices` into batch (a new Batch if None) and returns it."""
        if isinstance(indices, range):
            indices = list(indices)
        idx = _arrays.as_input(indices, "int64", "indices", ndim=1)
        own = batch is None
        if own:
            batch = Batch()
        try:
            check(_ffi.msc_dataset_fill_batch(self._handle(), idx.ptr, idx.size,
                                              batch._handle()))
        except BaseException:
            if own:
                batch.close()
            raise
        return batch

    def batches(self, batch_size: int = 32,
                indices: Optional[Iterable[int]] = None) -> Iterator["Batch"]:
        """Yields the samples (all, or `indices`) in order as Batches of batch_size."""
        if batch_size < 1:
            raise InvalidArgumentError("batch_size must be >= 1")
        idx = list(range(len(self))) if indices is None else [int(i) for i in indices]
        for start in range(0, len(idx), batch_size):
            yield self.fill_batch(idx[start:start + batch_size])

    def __getitem__(self, i: Union[int, slice]) -> Any:
        """Sample i as a dict: each modality's C×H×W float32 array of raw values under its
        name ("s1", "s2", ...; see modality_names), "labels" (the K multi-hot uint8 labels,
        when the dataset has labels), "mask" (the H×W int32 per-pixel labels, when it has
        masks) and "id" (sample_id(i)). Negative i counts from the end; IndexError past
        either end; a slice gives a list of such dicts. For many samples at once,
        fill_batch or a loader reads faster."""
        n = len(self)
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(n))]
        i = operator.index(i)
        if i < -n or i >= n:
            raise IndexError("sample %d: the dataset has %d samples" % (i, n))
        if i < 0:
            i += n
        with self.fill_batch([i]) as b:
            out = {name: b._modality(name, squeeze=True) for name in b.modality_names}
            labels = b.labels
            if labels is not None:
                out["labels"] = _arrays.row(labels, 0)
            mask = b.mask
            if mask is not None:
                out["mask"] = _arrays.row(mask, 0)
        out["id"] = self.sample_id(i)
        return out

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        """Iterates over the samples in order, each as ds[i] gives it (batches(n)
        iterates in Batches)."""
        for i in range(len(self)):
            yield self[i]

    def stats(self, modality: Modality) -> Tuple[Array, Array]:
        """The published per-band (mean, std) of a modality's selected bands."""
        return self._stats(_ffi.msc_dataset_stats, modality)

    def compute_stats(self, modality: Modality, max_samples: int = 0) -> Tuple[Array, Array]:
        """Per-band (mean, std) computed over max_samples samples (0: all)."""
        return self._stats(_ffi.msc_dataset_compute_stats, modality, int(max_samples))

    def _stats(self, fn, modality, *extra):
        i = self._modality_index(modality)
        bands, _ = self.modality_shape(i)
        mean, pm = _arrays.output((bands,), "float32")
        std, ps = _arrays.output((bands,), "float32")
        check(fn(self._handle(), i, *extra, pm, ps, bands))
        return mean, std

    def loader(self, batch_size: int, seed: int = 0, workers: int = 1,
               drop_last: bool = False, rank: int = 0, ranks: int = 1) -> "Loader":
        """A Loader over this dataset (shuffled epochs, background reading). With ranks >
        1, rank's share of every global batch of batch_size samples (rows
        rank·batch_size/ranks onwards): the ranks of a distributed run (Dist) each read
        their own samples of the batches one process would read."""
        return Loader(self, batch_size, seed=seed, workers=workers, drop_last=drop_last,
                      rank=rank, ranks=ranks)

    def __repr__(self):
        if self.closed:
            return "<mosaic.Dataset (closed)>"
        return "<mosaic.Dataset %s %r: %d samples, %d classes>" % (
            self.format, self.root, len(self), self.num_classes)


class Loader(_Handle):
    """Shuffled batches of a dataset, read ahead by background threads (msc_loader).

    len(loader) is the number of batches in an epoch; `for batch in loader` goes through
    the rest of the current epoch (the whole next one when the last ended), as a
    PyTorch DataLoader does, so `for epoch in range(10): for batch in loader: ...`
    trains ten epochs. next(loader) and next_batch(batch) take the next batch whatever
    the epoch, endlessly (batch.epoch says which). The order depends only on the
    dataset, batch_size, seed and drop_last. Close it (or leave the `with` block) to
    stop its threads; closing the dataset closes its loaders first.
    """

    _free = _ffi.msc_loader_free
    _what = "loader"

    def __init__(self, dataset: "Dataset", batch_size: int, seed: int = 0, workers: int = 1,
                 drop_last: bool = False, rank: int = 0, ranks: int = 1) -> None:
        if not isinstance(dataset, Dataset):
            raise InvalidArgumentError("dataset: expected a mosaic.Dataset")
        ptr = ctypes.POINTER(_ffi.msc_loader)()
        if int(ranks) == 1 and int(rank) == 0:
            check(_ffi.msc_loader_create(dataset._handle(), int(batch_size),
                                         int(seed) & 0xFFFFFFFFFFFFFFFF, int(workers),
                                         1 if drop_last else 0, ctypes.byref(ptr)))
        else:  # one rank's share of every global batch (msc_loader_create_shard)
            check(_ffi.msc_loader_create_shard(dataset._handle(), int(batch_size),
                                               int(seed) & 0xFFFFFFFFFFFFFFFF, int(workers),
                                               1 if drop_last else 0, int(rank), int(ranks),
                                               ctypes.byref(ptr)))
        self._adopt(ptr)
        self.dataset = dataset  # the dataset must outlive the loader
        self.batch_size = int(batch_size)
        self._taken = 0  # batches taken so far, failed ones included (the loader skips them)
        fins = dataset._loader_finalizers
        fins[:] = [f for f in fins if f.alive] + [self._finalizer]

    def next_batch(self, batch: Optional["Batch"] = None) -> "Batch":
        """The next batch (into `batch` if given); its .epoch is set."""
        own = batch is None
        if own:
            batch = Batch()
        epoch = ctypes.c_int64()
        try:
            st = _ffi.msc_loader_next(self._handle(), batch._handle(), ctypes.byref(epoch))
            self._taken += 1  # (a batch a worker failed to read is skipped: counted too)
            check(st)
        except BaseException:
            if own:
                batch.close()
            raise
        batch.epoch = epoch.value
        return batch

    def __len__(self) -> int:
        """The number of batches in an epoch (msc_loader_batches_per_epoch)."""
        return int(_ffi.msc_loader_batches_per_epoch(self._handle()))

    def __iter__(self) -> Iterator["Batch"]:
        """The batches left in the current epoch (all of the next one at an epoch's end)."""
        per = len(self)
        for _ in range(per - self._taken % per):
            yield self.next_batch()

    def __next__(self):
        return self.next_batch()


# Python exceptions other than mosaic.Error, as the status Dist.agree sends for them.
_AGREE_STATUS = ((MemoryError, "MSC_E_OUT_OF_MEMORY"), (OSError, "MSC_E_IO"),
                 (ValueError, "MSC_E_INVALID_ARGUMENT"), (TypeError, "MSC_E_INVALID_ARGUMENT"),
                 (LookupError, "MSC_E_NOT_FOUND"), (ArithmeticError, "MSC_E_NUMERICAL"))


def _free_dist(ptr, attached):
    # (attached models are detached first: a model must not outlive its communicator's
    # attachment; at exit the finalizers may run in either order)
    for m in list(attached):
        if not m.closed:
            _ffi.msc_train_set_dist(m._ptr, None)
            m._dist = None
    attached.clear()
    _ffi.msc_dist_free(ptr)


class Dist(_Handle):
    """A communicator over the processes of a distributed (data-parallel) run (msc_dist):
    start the program under an MPI launcher (`mpirun -np 4 python3 train.py`) and create
    one in every process. Model.fit(..., dist=d) trains on the global batch split over the
    ranks; Model.set_dist and Dataset.loader(rank=, ranks=) do the same by hand
    (docs/distributed.md).

    engine: "mpi" (libmosaic_mpi.so) or "nccl" (libmosaic_nccl.so, one GPU per rank);
    BackendUnavailableError when the module is missing. timeout: seconds any collective
    waits for the other ranks (default 300; 0: forever). close() (or leaving the `with`
    block, or the end of the program) detaches the models attached to it and finalises
    MPI when this communicator started it. A collective that failed or timed out raises
    CommError; the communicator is then unusable, and the program should exit.
    """

    _what = "communicator"

    def __init__(self, engine: str = "mpi", timeout: Optional[float] = None) -> None:
        ptr = ctypes.POINTER(_ffi.msc_dist)()
        check(_ffi.msc_dist_create(_encode(engine, "engine"), None, ctypes.byref(ptr)))
        self._attached = weakref.WeakSet()
        self._adopt(ptr, _free_dist, self._attached)
        if timeout is not None:
            self.set_timeout(timeout)

    @property
    def rank(self) -> int:
        """This process's rank, 0 .. size − 1."""
        return int(_ffi.msc_dist_rank(self._handle()))

    @property
    def size(self) -> int:
        """The number of processes (ranks)."""
        return int(_ffi.msc_dist_size(self._handle()))

    @property
    def comm_seconds(self) -> float:
        """Seconds spent in this communicator's collectives (waiting included)."""
        return float(_ffi.msc_dist_comm_seconds(self._handle()))

    def set_timeout(self, seconds: float) -> None:
        """How long any collective may wait for the other ranks (0: forever)."""
        check(_ffi.msc_dist_set_timeout(self._handle(), float(seconds)))

    def barrier(self) -> None:
        """Waits until every rank has called it (within the timeout)."""
        check(_ffi.msc_dist_barrier(self._handle()))

    def _agree_count(self, status: int, why: Optional[str], others_raise: bool = True) -> int:
        # msc_dist_agree; the number of ranks that failed. Raises when the agreement could
        # not be made, and (others_raise) on a rank that passed MSC_OK when one failed.
        failed = ctypes.c_int32(-1)
        st = _ffi.msc_dist_agree(self._handle(), int(status),
                                 None if why is None else _encode(why, "why"),
                                 ctypes.byref(failed))
        if failed.value < 0 or (status == _ffi.MSC_OK and others_raise):
            check(st)
        return failed.value

    def agree(self, error: Optional[BaseException] = None) -> int:
        """Tells every rank whether every rank is fit to go on (msc_dist_agree): a
        collective, called by every rank at the same point, for work ranks do apart from
        the library's collectives (writing files, validation, user code). Pass the
        exception this rank met, or nothing.

        Returns 0 when no rank passed an error. A rank that passed one gets the number of
        ranks that failed (and should raise its own error); the others raise CommError
        naming the lowest failed rank and its reason. Without it, a rank that fails alone
        and exits leaves the others waiting in their next collective until the timeout.
        """
        if error is None:
            return self._agree_count(_ffi.MSC_OK, None)
        status = getattr(error, "status", None)
        if (not isinstance(error, _errors.Error) or not isinstance(status, int)
                or status >= 0):
            status = _ffi.MSC_E_CANCELLED
            for cls, name in _AGREE_STATUS:
                if isinstance(error, cls):
                    status = getattr(_ffi, name)
                    break
        why = "%s: %s" % (type(error).__name__, error) if str(error) else type(error).__name__
        return self._agree_count(status, why)

    def __repr__(self):
        if self.closed:
            return "<mosaic.Dist (closed)>"
        return "<mosaic.Dist rank %d of %d>" % (self.rank, self.size)
