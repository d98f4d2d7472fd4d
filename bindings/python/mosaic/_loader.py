"""Finds and loads libmosaic, and checks its version against the bindings' header.

Search order (the first that loads wins):
  1. $MOSAIC_LIBRARY: the full path of the library. When it is set, nothing else is
     tried, so a wrong path is reported instead of silently using another copy.
  2. A copy next to the package: mosaic/libmosaic.so.<MAJOR> (or libmosaic.so).
  3. The library directory of the prefix the package was installed into by
     `cmake --install` (<prefix>/lib/python3.X/.../mosaic → <prefix>/lib, or
     <prefix>/lib/<multiarch>), so an install under any prefix works without
     LD_LIBRARY_PATH.
  4. The SONAME libmosaic.so.<MAJOR> through the dynamic loader (LD_LIBRARY_PATH, the
     ld.so cache, the default directories).
  5. ctypes.util.find_library("mosaic").
The library's major version (msc_version() // 10000) must equal the header's:
another major version has another ABI and is refused with IncompatibleLibraryError.
"""

import ctypes
import ctypes.util
import os
import sysconfig

from ._errors import IncompatibleLibraryError, LibraryNotFoundError

#: The path (or name) the library was loaded from, set by load_library().
loaded_from = None


def _candidates(major):
    env = os.environ.get("MOSAIC_LIBRARY")
    if env:
        return [("$MOSAIC_LIBRARY", env)], True
    soname = "libmosaic.so.%d" % major
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for name in (soname, "libmosaic.so"):
        path = os.path.join(here, name)
        if os.path.exists(path):
            out.append(("the copy next to the package", path))
    lib = os.path.normpath(os.path.join(here, os.pardir, os.pardir, os.pardir))
    if os.path.basename(lib) == "lib":
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        for d in ((lib, os.path.join(lib, multiarch)) if multiarch else (lib,)):
            path = os.path.join(d, soname)
            if os.path.exists(path):
                out.append(("the install prefix", path))
    out.append(("the SONAME", soname))
    found = ctypes.util.find_library("mosaic")
    if found and found != soname:
        out.append(("ctypes.util.find_library", found))
    return out, False


def _version(lib, where):
    try:
        fn = lib.msc_version
    except AttributeError:
        raise IncompatibleLibraryError(
            "%s is not libmosaic: it has no msc_version function" % where) from None
    fn.restype = ctypes.c_uint32
    fn.argtypes = ()
    v = int(fn())
    return v // 10000, (v // 100) % 100, v % 100


def load_library(major, minor, patch):
    """The libmosaic CDLL, checked to have the given major version."""
    global loaded_from
    candidates, explicit = _candidates(major)
    tried = []
    for how, path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s): %s" % (path, how, e))
            if explicit:
                raise LibraryNotFoundError(
                    "cannot load libmosaic from MOSAIC_LIBRARY=%s: %s" % (path, e)) from None
            continue
        rmajor, rminor, rpatch = _version(lib, path)
        if rmajor != major:
            raise IncompatibleLibraryError(
                "%s (found through %s) is libmosaic %d.%d.%d, but these bindings were "
                "generated from the header of libmosaic %d.%d.%d: a different major version "
                "has an incompatible ABI. Install the bindings of version %d, or point "
                "MOSAIC_LIBRARY at a libmosaic.so.%d."
                % (path, how, rmajor, rminor, rpatch, major, minor, patch, rmajor, major))
        loaded_from = path
        return lib
    raise LibraryNotFoundError(
        "cannot find libmosaic.so.%d; set MOSAIC_LIBRARY to its full path, add its "
        "directory to LD_LIBRARY_PATH, or install it. Tried: %s" % (major, "; ".join(tried)))


def bind_functions(lib, functions, namespace):
    """Sets argtypes and restype of every function the library exports and puts them in
    namespace under their C names. Returns the names the library lacks (a library of
    an older minor version than the header)."""
    missing = []
    for name, restype, argtypes, _names in functions:
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
        namespace[name] = fn
    return tuple(missing)
