"""Exceptions: one mosaic.Error subclass per status code of the header.

Every error of the library is raised as the subclass of its MSC_E_* code, carrying
.status (the code) and the message of msc_last_error() (str(e), also e.message).
Subclasses also derive from the matching built-in exception where there is one, so
`except ValueError` catches an invalid argument and `except OSError` an I/O failure.
This module imports nothing of the package, so the library loader can use it.
"""

import re

__all__ = [
    "Error", "LibraryNotFoundError", "IncompatibleLibraryError",
    "InvalidArgumentError", "OutOfMemoryError", "IOError", "BadFormatError",
    "UnsupportedError", "BackendUnavailableError", "DeviceError", "NumericalError",
    "ShapeError", "NotFoundError", "BufferTooSmallError", "VersionError", "InternalError",
    "CancelledError", "CommError",
]

_builtin_OSError = OSError


class Error(Exception):
    """Base class of every libmosaic error.

    status: the MSC_E_* code (an int; None for errors that have no code, such as a
    library that cannot be found). str(e) and e.message: what went wrong, from
    msc_last_error() when the library raised the error, with the C functions it names
    replaced by their Python counterparts ("use Dataset.compute_stats()"); c_message:
    the library's text as it was (None for errors the package raises itself).
    """

    #: The status code of the class; an instance of Error itself may carry its own.
    status = None
    #: msc_last_error() as the library wrote it, when the library raised the error.
    c_message = None

    @property
    def message(self):
        return str(self.args[0]) if self.args else ""

    @property
    def status_string(self):
        """The library's short description of .status ("invalid argument")."""
        if self.status is None:
            return ""
        try:
            from . import _ffi
        except ImportError:
            return ""
        return _ffi.msc_status_string(self.status).decode("utf-8", "replace")

    def __repr__(self):
        return "%s(%r, status=%r)" % (type(self).__name__, self.message, self.status)


class LibraryNotFoundError(Error, ImportError):
    """libmosaic could not be found or loaded (raised when the package is imported)."""


class IncompatibleLibraryError(Error, ImportError):
    """The loaded libmosaic has another major version than the bindings' header."""

    status = -12  # MSC_E_VERSION (fixed by the ABI; _ffi cannot be imported here)


class InvalidArgumentError(Error, ValueError):
    """MSC_E_INVALID_ARGUMENT: a NULL pointer, bad value or bad option."""


class OutOfMemoryError(Error, MemoryError):
    """MSC_E_OUT_OF_MEMORY: an allocation failed."""


class IOError(Error, _builtin_OSError):  # noqa: A001 - mosaic.IOError, an OSError
    """MSC_E_IO: a file could not be opened, read or written."""


class BadFormatError(Error, ValueError):
    """MSC_E_BAD_FORMAT: a file or buffer is corrupt or not of the expected format."""


class UnsupportedError(Error, NotImplementedError):
    """MSC_E_UNSUPPORTED: valid, but not supported by this build or backend."""


class BackendUnavailableError(Error):
    """MSC_E_BACKEND_UNAVAILABLE: the requested backend cannot be used here."""


class DeviceError(Error):
    """MSC_E_DEVICE: the compute device or its runtime reported an error."""


class NumericalError(Error, ArithmeticError):
    """MSC_E_NUMERICAL: a NaN or infinity appeared in an input or a result."""


class ShapeError(Error, ValueError):
    """MSC_E_SHAPE: array dimensions do not match what is expected."""


class NotFoundError(Error, LookupError):
    """MSC_E_NOT_FOUND: a named item (key, modality, file) does not exist."""


class BufferTooSmallError(Error):
    """MSC_E_BUFFER_TOO_SMALL: an output buffer is smaller than required."""


class VersionError(Error):
    """MSC_E_VERSION: a file or module was made for an incompatible version."""


class InternalError(Error):
    """MSC_E_INTERNAL: a bug in libmosaic (please report it)."""


class CancelledError(Error):
    """MSC_E_CANCELLED: the operation was stopped on request."""


class CommError(Error):
    """MSC_E_COMM: another process of a distributed run failed, or a collective timed out."""


_CLASSES = {
    "MSC_E_INVALID_ARGUMENT": InvalidArgumentError,
    "MSC_E_OUT_OF_MEMORY": OutOfMemoryError,
    "MSC_E_IO": IOError,
    "MSC_E_BAD_FORMAT": BadFormatError,
    "MSC_E_UNSUPPORTED": UnsupportedError,
    "MSC_E_BACKEND_UNAVAILABLE": BackendUnavailableError,
    "MSC_E_DEVICE": DeviceError,
    "MSC_E_NUMERICAL": NumericalError,
    "MSC_E_SHAPE": ShapeError,
    "MSC_E_NOT_FOUND": NotFoundError,
    "MSC_E_BUFFER_TOO_SMALL": BufferTooSmallError,
    "MSC_E_VERSION": VersionError,
    "MSC_E_INTERNAL": InternalError,
    "MSC_E_CANCELLED": CancelledError,
    "MSC_E_COMM": CommError,
}

#: status code -> exception class, filled by install_codes() from the generated constants.
BY_STATUS = {}


def install_codes(ffi, namespace=None):
    """Gives every class its status from the header's constants. A code of the header
    without a class here (one appended in a newer header) gets a class of its own,
    named after it (MSC_E_FOO_BAR -> FooBarError), added to namespace if given."""
    for name in sorted(n for n in dir(ffi) if n.startswith("MSC_E_")):
        code = getattr(ffi, name)
        cls = _CLASSES.get(name)
        if cls is None:
            words = name[len("MSC_E_"):].split("_")
            cls_name = "".join(w.capitalize() for w in words) + "Error"
            cls_name = re.sub(r"[^A-Za-z0-9_]", "", cls_name)
            cls = type(cls_name, (Error,), {
                "__doc__": "%s (status %d)." % (name, code),
                "__module__": __name__})
            _CLASSES[name] = cls
            globals()[cls_name] = cls
            if namespace is not None:
                namespace[cls_name] = cls
        cls.status = code
        BY_STATUS[code] = cls


def error_for(status, message):
    """The exception for a status code and a message (not raised)."""
    cls = BY_STATUS.get(status)
    if cls is None:
        e = Error(message)
        e.status = status
        return e
    return cls(message)
