"""A plain NumPy interpreter of the ONNX operators mosaic.export writes (Sub, Mul, Conv,
BatchNormalization, Relu, MaxPool, Add, GlobalAveragePool, Flatten), following the ONNX
operator specification (https://onnx.ai/onnx/operators/): the independent reference of
test_export.py (onnx 1.12, Debian's, has no evaluator of its own, and onnxruntime is not
packaged)."""

import numpy as np
from onnx import numpy_helper


def _attrs(node):
    out = {}
    for a in node.attribute:
        if a.type == a.INTS:
            out[a.name] = list(a.ints)
        elif a.type == a.INT:
            out[a.name] = a.i
        elif a.type == a.FLOAT:
            out[a.name] = a.f
    return out


def _pad(x, pads, value):
    t, l, b, r = pads[0], pads[1], pads[2], pads[3]
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _windows(x, kh, kw, sh, sw):
    """N × C × OH × OW × kh × kw views of x's windows."""
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]))


def conv(x, w, a):
    kh, kw = w.shape[2:]
    sh, sw = a.get("strides", [1, 1])
    xp = _pad(x.astype(np.float64), a.get("pads", [0, 0, 0, 0]), 0.0)
    win = _windows(xp, kh, kw, sh, sw)
    return np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64))


def run(model, x):
    """The graph's output for input x (float64 throughout: the reference)."""
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for node in model.graph.node:
        a = _attrs(node)
        i = [env[n] for n in node.input]
        op = node.op_type
        if op == "Sub":
            y = i[0] - i[1]
        elif op == "Mul":
            y = i[0] * i[1]
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Relu":
            y = np.maximum(i[0], 0.0)
        elif op == "Conv":
            y = conv(i[0], i[1], a)
        elif op == "BatchNormalization":
            g, b, m, v = (t.reshape(1, -1, 1, 1) for t in i[1:])
            y = (i[0] - m) / np.sqrt(v + a.get("epsilon", 1e-5)) * g + b
        elif op == "MaxPool":
            kh, kw = a["kernel_shape"]
            sh, sw = a.get("strides", [1, 1])
            xp = _pad(i[0], a.get("pads", [0, 0, 0, 0]), -np.inf)
            y = _windows(xp, kh, kw, sh, sw).max(axis=(4, 5))
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        else:
            raise NotImplementedError(op)
        env[node.output[0]] = y
    return env[model.graph.output[0].name]
