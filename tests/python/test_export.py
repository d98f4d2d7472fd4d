"""Weights out (mosaic.export): an encoder exported to ONNX is a valid model (onnx's
checker, shape inference) whose output, computed by an independent NumPy interpreter of
its operators (onnx_numpy.py), equals libmosaic's encoder features."""

import pytest

import mosaic

np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx")

from mosaic import export  # noqa: E402
import onnx_numpy  # noqa: E402 - needs onnx

SIZE = 32


def create(encoder):
    return mosaic.Model.create({
        "modality.0.encoder": "tiny", "modality.0.size": SIZE,
        "modality.1.encoder": encoder, "modality.1.size": SIZE, "modality.1.bands": 4,
        "modality.1.mean": [100.0, 200.0, 300.0, 400.0], "modality.1.std": [50.0, 60.0, 70.0, 80.0],
        "classes": 3, "class_names": "a;b;c", "proj.dim": 8, "seed": 4, "threads": 2})


@pytest.mark.parametrize("encoder", ["tiny", "resnet18", "resnet50"])
def test_onnx_encoder_matches_features(encoder, tmp_path):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((2, 4, SIZE, SIZE)) * 80 + 250).astype(np.float32)
    with create(encoder) as m:
        # a few training steps, so that BatchNorm statistics are not the initial 0 / 1
        # (resnet50 only checks the bottleneck layout: the BatchNorm mapping is the same)
        for _ in range(0 if encoder == "resnet50" else 2):
            m.train_step(s1=rng.standard_normal((4, 2, SIZE, SIZE)).astype(np.float32),
                         s2=(rng.standard_normal((4, 4, SIZE, SIZE)) * 80 + 250).astype(np.float32),
                         labels=np.eye(3, dtype=np.uint8)[[0, 1, 2, 0]])
        want = m.embed(s2=x, kind="features", modality="s2")
        path = tmp_path / "enc.onnx"
        info = export.export_onnx(m, path, "s2")
    assert info["inputs"] == [4, SIZE, SIZE] and info["features"] == want.shape[1]
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == want.shape[1]
    got = onnx_numpy.run(model, x)
    scale = float(np.abs(want).max())
    assert float(np.abs(got - want).max()) <= 1e-4 * scale


def test_export_errors(tmp_path):
    with create("tiny") as m:
        with pytest.raises(mosaic.NotFoundError, match="modality 's9'"):
            export.export_onnx(m, tmp_path / "x.onnx", "s9")
    assert not list(tmp_path.iterdir())
