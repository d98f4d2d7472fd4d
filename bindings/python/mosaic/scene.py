"""Whole scenes (msc_scene_*; docs/scenes.md): a model mapped over rasters of any size.

    import mosaic
    model = mosaic.Model.load("seg.safetensors")
    with mosaic.Scene(model, {"s1": "S1.tif", "s2": "S2.tif"}, stride=384) as scene:
        print(scene.size)                       # (width, height, tiles)
        scene.write(mask="map.tif", probs="probs.tif", progress=print)
        scene.write_embeddings("emb.tif")       # one pixel per tile, fused embedding
    # or in one call:
    model.map({"s1": "S1.tif", "s2": "S2.tif"}, mask="map.tif")

Options are the scene.* keys without their prefix (stride, batch, resample, blend, mask,
max_masked, overviews, embedding_type, harmonize) or with it. progress(done, total) is called after every row of tiles; returning True
cancels, and write() raises mosaic.CancelledError (an exception raised by progress
cancels too and is re-raised). The outputs are georeferenced Cloud-Optimised GeoTIFFs
written atomically; docs/scenes.md has the rules (grid, tiles, blending, missing pixels).
"""

import ctypes
from typing import Any, Callable, Optional, Tuple, Union

from . import _ffi
from ._core import Model, _Handle, _encode, _options_handle, check
from ._errors import InvalidArgumentError
from ._types import Modality, OptionsLike, PathLike

__all__ = ["Scene"]


class Scene(_Handle):
    """A scene opened for a model (msc_scene_open): one raster per modality."""

    _free = _ffi.msc_scene_free
    _what = "scene"

    def __init__(self, model: Model, inputs: Any, options: OptionsLike = None,
                 **kwargs: Any) -> None:
        """inputs: {modality name: path} or a list of paths in the model's modality
        order; a modality left out (or None) is absent, and the model maps without it
        where it can (docs/scenes.md, "Missing modalities"). options/keywords: scene.*
        keys (the prefix may be left out)."""
        names = model.modality_names
        if isinstance(inputs, dict):
            extra = [n for n in inputs if n not in names]
            if extra:
                raise InvalidArgumentError(
                    "inputs: the model's modalities are %s; unknown %s" % (names, extra))
            paths = [inputs.get(n) for n in names]
        else:
            paths = list(inputs)
        enc = [None if p is None else _encode(p, "input path") for p in paths]
        arr = (ctypes.c_char_p * max(1, len(enc)))(*enc)
        opts, h = _options_handle(options, kwargs, prefix="scene.")
        try:
            ptr = ctypes.POINTER(_ffi.msc_scene)()
            check(_ffi.msc_scene_open(arr, len(enc), model._handle(), h, ctypes.byref(ptr)))
        finally:
            if opts is not None:
                opts.close()
        self._model = model  # the scene borrows the model: keep it alive
        self._adopt(ptr)

    @property
    def size(self) -> Tuple[int, int, int]:
        """(width, height, tiles) of the scene's grid."""
        w, h, t = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        check(_ffi.msc_scene_size(self._handle(), ctypes.byref(w), ctypes.byref(h),
                                  ctypes.byref(t)))
        return w.value, h.value, t.value

    def write(self, mask: Optional[PathLike] = None, probs: Optional[PathLike] = None,
              progress: Optional[Callable[[int, int], Any]] = None) -> None:
        """Runs the model over the scene and writes the class map (mask) and/or the
        class probabilities (probs), GeoTIFF paths (at least one)."""
        raised = []

        def on_progress(done, total, user):
            try:
                return 1 if progress(done, total) else 0
            except BaseException as e:  # noqa: B902 - re-raised below
                raised.append(e)
                return 1

        cb = _ffi.msc_progress_fn(on_progress) if progress else _ffi.msc_progress_fn()
        st = _ffi.msc_scene_write(self._handle(),
                                  _encode(mask, "mask path") if mask is not None else None,
                                  _encode(probs, "probs path") if probs is not None else None,
                                  cb, None)
        if raised:
            raise raised[0]
        check(st)

    def write_embeddings(self, path: PathLike, kind: Union[str, int] = "fused",
                         modality: Optional[Modality] = None,
                         progress: Optional[Callable[[int, int], Any]] = None) -> None:
        """Writes the embedding map (msc_scene_write_embeddings): the model's embedding
        of every tile at (i·stride, j·stride), one pixel per tile, as a GeoTIFF of
        embedding-size bands at stride × the scene's pixel size. kind/modality as
        Model.embed ("fused", the default, "fused_projection", a modality name, ...)."""
        which = self._model._which(kind, modality, None)
        st, raised = None, []

        def on_progress(done, total, user):
            try:
                return 1 if progress(done, total) else 0
            except BaseException as e:  # noqa: B902 - re-raised below
                raised.append(e)
                return 1

        cb = _ffi.msc_progress_fn(on_progress) if progress else _ffi.msc_progress_fn()
        st = _ffi.msc_scene_write_embeddings(self._handle(), _encode(path, "embeddings path"),
                                             which, cb, None)
        if raised:
            raise raised[0]
        check(st)


def _model_map(self: Model, inputs: Any, mask: Optional[PathLike] = None,
               probs: Optional[PathLike] = None,
               progress: Optional[Callable[[int, int], Any]] = None,
               options: OptionsLike = None, **kwargs: Any) -> Tuple[int, int, int]:
    """Maps a whole scene with this model (mosaic.Scene(...).write(...)); returns the
    scene's (width, height, tiles)."""
    with Scene(self, inputs, options, **kwargs) as scene:
        scene.write(mask=mask, probs=probs, progress=progress)
        return scene.size


Model.map = _model_map
