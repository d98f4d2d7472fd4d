"""Weights out: a modality's encoder as an ONNX model, for deployment runtimes
(onnxruntime, OpenVINO, TensorRT, ...).

    import mosaic, mosaic.export
    with mosaic.Model.load("model.safetensors") as m:
        mosaic.export.export_onnx(m, "s2_encoder.onnx", modality="s2")

The ONNX graph computes exactly what `model.embed(kind="features", modality=...)`
computes in float32: the model's input normalisation ((x − mean) · (1 / std) per band),
the ResNet encoder (convolution, BatchNormalization in inference form, ReLU, max-pool,
residual additions) and the global average pool, from the input "x" (N × bands × size ×
size raw values, N free) to the output "features" (N × D). Opset 13; the protobuf is
written by the `onnx` package (Debian: python3-onnx), which only this module needs.

The graph follows the encoder configuration the model was built with (the
modality.<i>.stem_*, maxpool, block, widths and depths keys: docs/model.md), so every
encoder libmosaic builds (resnet18/34/50, tiny, or a custom one) is exported; the
weights are the model's (a saved copy is read: mosaic.weights.read_safetensors).
tests/python/test_export.py evaluates the exported graph with an independent NumPy
interpreter of its operators and compares it with libmosaic's features.
"""

import os
import struct
import tempfile
from typing import Any, Dict, List

from ._core import Model
from ._errors import NotFoundError, UnsupportedError
from ._types import PathLike
from .weights import _as_f32, read_safetensors

__all__ = ["export_onnx"]

OPSET = 13


def _numbers(text: Any, kind: type) -> List[Any]:
    """A list option as the model's options give it: a list, or "a,b,c"."""
    if isinstance(text, (list, tuple)):
        return [kind(v) for v in text]
    return [kind(v) for v in str(text).split(",") if v.strip()]


def export_onnx(model: Model, path: PathLike, modality: str) -> Dict[str, Any]:
    """Writes the encoder of `modality` (its name) as an ONNX model to path; returns a
    summary {"inputs": [bands, size, size], "features": D, "nodes": count}. Raises
    mosaic.UnsupportedError without the onnx package, NotFoundError for an unknown
    modality."""
    try:
        import onnx  # noqa: PLC0415 - optional
        from onnx import TensorProto, helper
    except ImportError:
        raise UnsupportedError("exporting to ONNX needs the onnx package (Debian: "
                               "python3-onnx)") from None
    names = model.modality_names
    if modality not in names:
        raise NotFoundError("modality %r: the model has %s" % (modality, ", ".join(names)))
    i = names.index(modality)
    o = model.options()

    def key(k: str) -> Any:
        return o["modality.%d.%s" % (i, k)]

    bands, size = model.modality_shape(i)
    stem_w, stem_k, stem_s = int(key("stem_width")), int(key("stem_kernel")), int(key("stem_stride"))
    maxpool = bool(key("maxpool"))
    bottleneck = str(key("block")) == "bottleneck"
    widths, depths = _numbers(key("widths"), int), _numbers(key("depths"), int)
    eps = float(o.get("bn.eps", 1e-5))
    mean, std = _numbers(key("mean"), float), _numbers(key("std"), float)

    with tempfile.TemporaryDirectory(prefix="mosaic-export-") as tmp:
        saved = os.path.join(tmp, "model.safetensors")
        model.save(saved)
        tensors, _ = read_safetensors(saved)

    prefix = "enc.%s." % modality
    inits, nodes = [], []
    done = set()
    counter = [0]

    def init(name: str, dims, values) -> str:
        inits.append(helper.make_tensor(name, TensorProto.FLOAT, list(dims),
                                        [float(v) for v in values]))
        return name

    def param(name: str) -> str:
        full = prefix + name
        if full not in tensors:
            raise NotFoundError("the model has no tensor %r" % full)
        dtype, shape, raw = tensors[full]
        if full not in done:
            done.add(full)
            if dtype != "F32":  # (a saved model is float32; anything else is converted)
                vals = _as_f32(dtype, shape, raw)
                raw = struct.pack("<%df" % len(vals), *vals)
            # the little-endian float32 bytes as they are: no per-value conversion
            inits.append(helper.make_tensor(full, TensorProto.FLOAT, list(shape), raw, raw=True))
        return full

    def out(tag: str) -> str:
        counter[0] += 1
        return "%s_%d" % (tag, counter[0])

    def conv(x: str, name: str, k: int, stride: int) -> str:
        y = out(name)
        nodes.append(helper.make_node("Conv", [x, param(name + ".weight")], [y], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        return y

    def bn(x: str, name: str, relu: bool) -> str:
        y = out(name)
        nodes.append(helper.make_node(
            "BatchNormalization",
            [x] + [param(name + "." + p) for p in ("weight", "bias", "running_mean", "running_var")],
            [y], name=name, epsilon=eps))
        if not relu:
            return y
        z = out(name + "_relu")
        nodes.append(helper.make_node("Relu", [y], [z]))
        return z

    # input normalisation, as msci_model_normalise computes it: (x - mean) * (1 / std)
    inv = [1.0 / s for s in std]
    nodes.append(helper.make_node("Sub", ["x", init("input.mean", [1, bands, 1, 1], mean)],
                                  ["x_centred"]))
    nodes.append(helper.make_node("Mul", ["x_centred", init("input.inv_std", [1, bands, 1, 1], inv)],
                                  ["x_normalised"]))
    x = bn(conv("x_normalised", "conv1", stem_k, stem_s), "bn1", True)
    if maxpool:
        y = out("maxpool")
        nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[3, 3], strides=[2, 2],
                                      pads=[1, 1, 1, 1]))
        x = y
    cin = stem_w
    for s, (width, depth) in enumerate(zip(widths, depths)):
        for k in range(depth):
            stride = 2 if (s > 0 and k == 0) else 1
            name = "layer%d.%d" % (s + 1, k)
            cout = width * (4 if bottleneck else 1)
            if bottleneck:
                y = bn(conv(x, name + ".conv1", 1, 1), name + ".bn1", True)
                y = bn(conv(y, name + ".conv2", 3, stride), name + ".bn2", True)
                y = bn(conv(y, name + ".conv3", 1, 1), name + ".bn3", False)
            else:
                y = bn(conv(x, name + ".conv1", 3, stride), name + ".bn1", True)
                y = bn(conv(y, name + ".conv2", 3, 1), name + ".bn2", False)
            short = x
            if stride != 1 or cin != cout:
                short = bn(conv(x, name + ".downsample.0", 1, stride), name + ".downsample.1", False)
            added, z = out(name + "_add"), out(name + "_relu")
            nodes.append(helper.make_node("Add", [y, short], [added]))
            nodes.append(helper.make_node("Relu", [added], [z]))
            x, cin = z, cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))

    graph = helper.make_graph(
        nodes, "mosaic_encoder_%s" % modality,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", bands, size, size])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", cin])],
        initializer=inits)
    onnx_model = helper.make_model(graph, producer_name="libmosaic",
                                   opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.doc_string = ("libmosaic encoder of modality %s: raw N x %d x %d x %d in, "
                             "features N x %d out" % (modality, bands, size, size, cin))
    onnx.checker.check_model(onnx_model)
    tmp_path = os.fspath(path) + ".tmp"
    try:
        onnx.save(onnx_model, tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
    return {"inputs": [bands, size, size], "features": cin, "nodes": len(nodes)}
