"""Python bindings of libmosaic: multi-modal contrastive learning for satellite imagery.

    import mosaic
    with mosaic.Model.create({"modality.0.encoder": "tiny",
                              "modality.1.encoder": "tiny"}) as model:
        h = model.embed(s1=s1, s2=s2)            # N × D_f float32 (NumPy)

The ctypes layer (mosaic._ffi) is generated from include/mosaic/mosaic.h by
bindings/generate.py; this package adds handles that free themselves, NumPy (or
buffer) arrays in and out, and exceptions: every status code is a subclass of
mosaic.Error with .status and the library's message. docs/python.md has the details.
"""

from . import _errors
from ._errors import *  # noqa: F401,F403 - the exception classes
from ._errors import Error, IncompatibleLibraryError, LibraryNotFoundError
from . import _ffi

_errors.install_codes(_ffi, globals())
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, Error):
        _cls.__module__ = __name__  # shown as mosaic.NotFoundError in tracebacks
del _cls

from . import _arrays  # noqa: E402
from ._core import (  # noqa: E402,F401
    Batch, Dataset, Dist, Loader, Model, Options, StepResult, backend_available, backends,
    check, header_version, last_error, select_backend, set_log_callback, status_string,
    synth_write, train, version, version_info,
)
from . import losses  # noqa: E402,F401
from . import metrics  # noqa: E402,F401
from . import cluster  # noqa: E402,F401
from . import sits  # noqa: E402,F401
from . import forecast  # noqa: E402,F401
from .scene import Scene  # noqa: E402,F401 - also adds Model.map

import atexit as _atexit  # noqa: E402
from ._core import _remove_log_callback_at_exit  # noqa: E402

_atexit.register(_remove_log_callback_at_exit)

#: Values of `kind` for Model.embed, as in the header (MSC_EMBED_*).
EMBED_FUSED = _ffi.MSC_EMBED_FUSED
EMBED_FUSED_PROJECTION = _ffi.MSC_EMBED_FUSED_PROJECTION
EMBED_MODALITY = _ffi.MSC_EMBED_MODALITY
EMBED_MODALITY_PROJECTION = _ffi.MSC_EMBED_MODALITY_PROJECTION


def library_path() -> str:
    """The path (or SONAME) libmosaic was loaded from."""
    from . import _loader
    return _loader.loaded_from


def have_numpy() -> bool:
    """Whether arrays come back as NumPy arrays (else as memoryviews)."""
    return _arrays.np is not None


__version__ = "%d.%d.%d" % header_version()

__all__ = [
    "Batch", "Dataset", "Dist", "Loader", "Model", "Options", "StepResult",
    "backend_available", "backends", "header_version", "last_error", "library_path",
    "select_backend", "set_log_callback", "status_string", "synth_write", "version",
    "version_info", "losses", "metrics", "cluster", "sits", "forecast", "have_numpy", "check",
    "EMBED_FUSED", "EMBED_FUSED_PROJECTION", "EMBED_MODALITY", "EMBED_MODALITY_PROJECTION",
]
# Every exception class (mosaic.IOError stays out of star imports: it would shadow the
# built-in name).
__all__ += sorted(n for n, v in list(globals().items())
                  if isinstance(v, type) and issubclass(v, Error) and n != "IOError")
