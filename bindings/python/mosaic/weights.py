"""Weights in: start a model's encoder from published ResNet or ConvNeXt-V2 weights.

torchvision's ResNets (resnet18, resnet34, resnet50) and the ResNet backbones built on
them (TorchGeo's SSL4EO-S12 weights, timm's, ...) name their parameters exactly as
libmosaic's encoders do under "enc.<modality>." (conv1, bn1, layer1.0.conv1,
layer2.0.downsample.0, ...; docs/model.md), with the same shapes, so importing them is
a renaming:

    import mosaic, mosaic.weights
    with mosaic.Model.create({"modality.1.encoder": "resnet18", ...}) as m:
        m2 = mosaic.weights.import_resnet(m, "resnet18.safetensors", modality="s2")

ConvNeXt-V2 encoders (presets convnextv2_atto .. convnextv2_tiny) name theirs as
facebookresearch/ConvNeXt-V2's models/convnextv2.py does (downsample_layers.0.0,
stages.1.0.dwconv, stages.1.0.grn.gamma, norm, ...); its pointwise layers (nn.Linear,
[4C, C]) and GRN's gamma and beta ([1, 1, 1, C]) are held as [4C, C, 1, 1] and [C],
the same values, which import_convnextv2 reshapes (and msc_model_load accepts as they
are):

    m2 = mosaic.weights.import_convnextv2(m, "convnextv2_atto.safetensors", modality="s2")

The source is a safetensors file of a state_dict (what `save_file(model.state_dict())`
of the safetensors package writes, or `python3 -m mosaic.weights convert in.pth
out.safetensors`, the one step that needs PyTorch), or a dict of arrays (NumPy arrays,
or torch tensors). Keys may carry a prefix ("backbone.", "module.", "encoder."): the
shortest one before the stem's key ("conv1.weight", "downsample_layers.0.0.weight") is
stripped. The classifier ("fc.*", "head.*") and BatchNorm's num_batches_tracked are not
used. Reading and writing safetensors is done
here with the standard library (the format is a JSON header and raw little-endian data:
https://github.com/huggingface/safetensors), so importing needs neither PyTorch nor
NumPy.

A model's modality may have another number of bands than the weights' first
convolution has input channels (3 for ImageNet weights, 13 for SSL4EO-S12): with
first_conv="repeat" the weights' filters are averaged over their input channels and
repeated over the model's bands, scaled by (weights' channels / model's bands) so that
activations keep their magnitude (TorchGeo's and timm's practice); with "exact" (the
default) the counts must agree. The input normalisation is the model's own
(modality.<i>.mean / std): set it to what the weights were trained with.
"""

import json
import os
import struct
import sys
import tempfile
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ._core import Model
from ._errors import InvalidArgumentError, NotFoundError, ShapeError
from ._types import PathLike

__all__ = ["import_resnet", "import_convnextv2", "read_safetensors", "write_safetensors",
           "convert"]

# safetensors dtype -> (struct code, bytes)
_DTYPES = {"F32": ("f", 4), "F64": ("d", 8), "F16": ("e", 2), "I64": ("q", 8),
           "I32": ("i", 4), "U8": ("B", 1), "BF16": (None, 2)}

Tensor = Tuple[str, Tuple[int, ...], bytes]  # (safetensors dtype, shape, little-endian bytes)


def read_safetensors(path: PathLike) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """The tensors of a safetensors file as {name: (dtype, shape, raw bytes)}, and its
    __metadata__ ({} without). Raises mosaic.BadFormatError for a malformed file."""
    from ._errors import BadFormatError
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise BadFormatError("%s: not a safetensors file (too short)" % os.fspath(path))
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise BadFormatError("%s: header of %d bytes in a file of %d" % (path, n, len(data)))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadFormatError("%s: bad header: %s" % (path, e)) from None
    base = 8 + n
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, t in header.items():
        dtype, shape, (a, b) = t["dtype"], tuple(int(d) for d in t["shape"]), t["data_offsets"]
        if dtype not in _DTYPES:
            raise BadFormatError("%s: tensor %r has dtype %s" % (path, name, dtype))
        count = 1
        for d in shape:
            count *= d
        if not (0 <= a <= b <= len(data) - base) or b - a != count * _DTYPES[dtype][1]:
            raise BadFormatError("%s: tensor %r has bad data offsets" % (path, name))
        out[name] = (dtype, shape, data[base + a:base + b])
    return out, dict(meta)


def write_safetensors(path: PathLike, tensors: Mapping[str, Tensor],
                      metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes {name: (dtype, shape, raw bytes)} (and __metadata__) as safetensors,
    atomically (a temporary file renamed over path)."""
    header: Dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # (8-byte alignment of the data, as the format advises)
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for _, _, raw in tensors.values():
                f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _as_f32(dtype: str, shape: Tuple[int, ...], raw: bytes) -> Tuple[float, ...]:
    """The values of a tensor as Python floats (any dtype read_safetensors accepts)."""
    count = len(raw) // _DTYPES[dtype][1]
    if dtype == "BF16":  # the high half of a float32
        halves = struct.unpack("<%dH" % count, raw)
        return struct.unpack("<%df" % count, b"".join(struct.pack("<I", h << 16) for h in halves))
    return tuple(float(v) for v in struct.unpack("<%d%s" % (count, _DTYPES[dtype][0]), raw))


def _f32(values) -> bytes:
    return struct.pack("<%df" % len(values), *values)


def _source_tensors(source: Union[PathLike, Mapping[str, Any]]) -> Dict[str, Tensor]:
    """The state_dict as {name: (dtype, shape, raw)}, from a file or a dict of arrays."""
    if isinstance(source, Mapping):
        out = {}
        for name, v in source.items():
            if hasattr(v, "detach"):  # a torch tensor
                v = v.detach().cpu().float().numpy()
            shape = tuple(int(d) for d in getattr(v, "shape", ()))
            if hasattr(v, "astype"):
                raw = v.astype("<f4").tobytes()
            else:
                raise InvalidArgumentError("state_dict[%r]: expected an array or a tensor" % name)
            out[name] = ("F32", shape, raw)
        return out
    return read_safetensors(source)[0]


def _strip_prefix(names, stem: str = "conv1.weight", what: str = "ResNet") -> str:
    """The prefix before the stem's key (the shortest such key)."""
    stems = sorted((n for n in names if n.endswith(stem) and "layer" not in n[:-len(stem)]),
                   key=len)
    if not stems:
        raise NotFoundError("the weights have no stem convolution (%r): not a %s state_dict"
                            % (stem, what))
    return stems[0][:-len(stem)]


def _squeezed(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _repeat_first_conv(raw: Tuple[float, ...], shape: Tuple[int, ...], bands: int) -> bytes:
    """Filters o × c × k × k averaged over c and repeated over bands, times c / bands."""
    o, c, kh, kw = shape
    per = kh * kw
    out = []
    for oi in range(o):
        mean = [sum(raw[((oi * c + ci) * per) + j] for ci in range(c)) / c for j in range(per)]
        scaled = [m * c / bands for m in mean]
        out.extend(scaled * bands)
    return _f32(out)


def import_resnet(model: Model, source: Union[PathLike, Mapping[str, Any]], modality: str,
                  first_conv: str = "exact", **runtime: Any) -> Model:
    """A new Model: model's configuration and weights with the encoder of `modality`
    (its name, e.g. "s2") taken from a torchvision-layout ResNet state_dict (a
    safetensors path, or a dict of arrays / torch tensors). Every parameter and running
    statistic of enc.<modality>.* must be found with its exact shape (ShapeError or
    NotFoundError naming it otherwise), except the first convolution's input channels
    with first_conv="repeat" (see the module's docstring). runtime: the run-time keys
    of Model.load (backend, threads, precision). model itself is not changed."""
    return _import(model, source, modality, first_conv, "conv1.weight", "ResNet", False,
                   runtime)


def import_convnextv2(model: Model, source: Union[PathLike, Mapping[str, Any]], modality: str,
                      first_conv: str = "exact", **runtime: Any) -> Model:
    """As import_resnet, for a ConvNeXt-V2 encoder (block convnext) and a state_dict named
    as facebookresearch/ConvNeXt-V2's models/convnextv2.py (downsample_layers.*,
    stages.*, norm.*; head.* is not used). A tensor whose shape differs from the model's
    only by dimensions of size 1 (pwconv1/pwconv2 weights [4C, C] for the model's
    [4C, C, 1, 1], grn.gamma / grn.beta [1, 1, 1, C] for [C]) is taken as it is: the
    values are the same. first_conv="repeat" adapts the stem convolution
    (downsample_layers.0.0.weight) to the model's bands."""
    return _import(model, source, modality, first_conv, "downsample_layers.0.0.weight",
                   "ConvNeXt-V2", True, runtime)


def _import(model: Model, source: Union[PathLike, Mapping[str, Any]], modality: str,
            first_conv: str, stem: str, what: str, squeeze: bool, runtime: Dict[str, Any]
            ) -> Model:
    if first_conv not in ("exact", "repeat"):
        raise InvalidArgumentError("first_conv must be 'exact' or 'repeat', not %r" % first_conv)
    if modality not in model.modality_names:
        raise NotFoundError("modality %r: the model has %s" % (modality, ", ".join(model.modality_names)))
    src = _source_tensors(source)
    prefix = _strip_prefix(src, stem, what)
    with tempfile.TemporaryDirectory(prefix="mosaic-import-") as tmp:
        path = os.path.join(tmp, "model.safetensors")
        model.save(path)
        tensors, meta = read_safetensors(path)
        mine = "enc.%s." % modality
        first = mine + stem
        used = 0
        for name in list(tensors):
            if not name.startswith(mine):
                continue
            key = prefix + name[len(mine):]
            if key not in src:
                raise NotFoundError("the weights have no %r (for %s)" % (key, name))
            dtype, shape, raw = tensors[name]
            sdtype, sshape, sraw = src[key]
            values = _as_f32(sdtype, sshape, sraw)
            if sshape != shape and not (squeeze and _squeezed(sshape) == _squeezed(shape)):
                if (first_conv == "repeat" and name == first and len(shape) == 4
                        and sshape[:1] + sshape[2:] == shape[:1] + shape[2:]):
                    tensors[name] = ("F32", shape, _repeat_first_conv(values, sshape, shape[1]))
                    used += 1
                    continue
                raise ShapeError("%s is %s in the model but %s is %s in the weights%s" % (
                    name, list(shape), key, list(sshape),
                    " (first_conv='repeat' adapts the input channels)" if name == first else ""))
            tensors[name] = ("F32", shape, _f32(values))
            used += 1
        if used == 0:
            raise NotFoundError("the model has no parameters under %r" % mine)
        write_safetensors(path, tensors, meta)
        return Model.load(path, **runtime)


def convert(src: PathLike, dst: PathLike) -> int:
    """Converts a PyTorch checkpoint (a state_dict saved with torch.save, or a dict
    holding one under "state_dict" or "model") into a safetensors file of float32
    tensors. Needs PyTorch (imported here only). Returns the number of tensors."""
    import torch  # noqa: PLC0415 - only this conversion needs it

    obj = torch.load(os.fspath(src), map_location="cpu")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    tensors = {}
    for name, t in obj.items():
        if not hasattr(t, "dtype") or not t.dtype.is_floating_point:
            continue  # (num_batches_tracked and other integer bookkeeping)
        a = t.detach().cpu().float().contiguous().numpy()
        tensors[name] = ("F32", tuple(a.shape), a.astype("<f4").tobytes())
    write_safetensors(dst, tensors, {"format": "pt"})
    return len(tensors)


def _main(argv) -> int:
    if len(argv) != 3 or argv[0] != "convert":
        sys.stderr.write("usage: python3 -m mosaic.weights convert CHECKPOINT.pth OUT.safetensors\n")
        return 2
    n = convert(argv[1], argv[2])
    print("%s: %d tensors" % (argv[2], n))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
