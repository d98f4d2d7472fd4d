"""Names of the types the package's annotations use (PEP 484; the package is typed:
py.typed). NumPy is optional, so arrays are annotated loosely:

ArrayLike  what the package accepts as an array: a NumPy array, any object with the
           buffer protocol (memoryview, array.array, bytes for uint8), nested lists,
           or a (buffer, shape) pair.
Array      what the package returns as an array: a NumPy array, or without NumPy a
           memoryview of the same shape and element type.
"""

import os
from typing import TYPE_CHECKING, Any, Mapping, Union

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Options

ArrayLike = Any
Array = Any
PathLike = Union[str, os.PathLike]
# Options: an Options handle, a dict of keys (dotted, or nested dicts), or None
OptionsLike = Union["Options", Mapping[str, Any], None]
# A modality: its name ("s2") or its index (1)
Modality = Union[str, int]
