"""Weights in (mosaic.weights): a torchvision-layout ResNet-18, built in PyTorch with
random weights and BatchNorm statistics (tv_resnet.py), saved with torch.save, converted
to safetensors and imported into a libmosaic model: its encoder features must equal the
PyTorch model's pooled features on the same input."""

import os

import pytest

import mosaic
from mosaic import weights

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

import tv_resnet  # noqa: E402 - needs torch

SIZE = 64


def model_opts(bands):
    return {"modality.0.encoder": "tiny", "modality.0.size": SIZE,
            "modality.1.encoder": "resnet18", "modality.1.size": SIZE,
            "modality.1.bands": bands, "modality.1.mean": [0.0] * bands,
            "modality.1.std": [1.0] * bands, "classes": 4, "class_names": "a;b;c;d",
            "proj.dim": 16, "seed": 1, "threads": 2}


def features(model, x):
    return model.embed(s2=x, kind="features", modality="s2")


def close(got, want):
    scale = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    assert err <= 1e-4 * scale, "max |diff| %g of max %g" % (err, scale)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("tv")
    net = tv_resnet.randomised(seed=3)
    pth = d / "resnet18.pth"
    torch.save(net.state_dict(), pth)
    st = d / "resnet18.safetensors"
    n = weights.convert(pth, st)  # the step that needs torch
    assert n == len([k for k, v in net.state_dict().items() if v.dtype.is_floating_point])
    return net, st


def test_torchvision_resnet18_features_match(reference):
    net, st = reference
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    with torch.no_grad():
        want = net.features(torch.from_numpy(x)).numpy()
    with mosaic.Model.create(model_opts(3)) as m:
        before = features(m, x)
        with weights.import_resnet(m, st, "s2", threads=2) as m2:
            got = features(m2, x)
            assert m2.modality_shape("s2") == (3, SIZE)
        # the source model is unchanged
        np.testing.assert_array_equal(features(m, x), before)
    assert got.shape == (2, 512)
    close(got, want)


def test_prefixed_dict_and_repeated_first_conv(reference):
    """A state_dict under "backbone." given as a dict of tensors, into a 4-band model:
    first_conv="repeat" averages conv1 over its 3 channels and repeats it over 4, times 3/4
    (computed here in PyTorch, the other way round)."""
    net, _ = reference
    sd = {"backbone." + k: v for k, v in net.state_dict().items()}
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, SIZE, SIZE)).astype(np.float32)
    net4 = tv_resnet.ResNet()
    net4.conv1 = torch.nn.Conv2d(4, 64, 7, 2, 3, bias=False)
    state = dict(net.state_dict())
    state["conv1.weight"] = net.conv1.weight.detach().mean(1, keepdim=True).repeat(1, 4, 1, 1) * 0.75
    net4.load_state_dict(state)
    net4.eval()
    with torch.no_grad():
        want = net4.features(torch.from_numpy(x)).numpy()
    with mosaic.Model.create(model_opts(4)) as m:
        with pytest.raises(mosaic.ShapeError, match="first_conv='repeat'"):
            weights.import_resnet(m, sd, "s2")
        with weights.import_resnet(m, sd, "s2", first_conv="repeat") as m2:
            close(features(m2, x), want)


def test_errors(reference, tmp_path):
    net, st = reference
    sd = dict(net.state_dict())
    del sd["layer3.1.bn2.running_var"]
    with mosaic.Model.create(model_opts(3)) as m:
        with pytest.raises(mosaic.NotFoundError, match="layer3.1.bn2.running_var"):
            weights.import_resnet(m, sd, "s2")
        with pytest.raises(mosaic.NotFoundError, match="modality 's3'"):
            weights.import_resnet(m, st, "s3")
        with pytest.raises(mosaic.NotFoundError, match="conv1.weight"):
            weights.import_resnet(m, {"fc.weight": net.fc.weight}, "s2")
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"\xff" * 4)
        with pytest.raises(mosaic.BadFormatError):
            weights.import_resnet(m, bad, "s2")
    assert not list(tmp_path.glob("*.tmp"))


def test_safetensors_round_trip(tmp_path):
    t = {"a": ("F32", (2, 2), np.arange(4, dtype="<f4").tobytes()),
         "b": ("F16", (3,), np.array([1, 2, 3], dtype="<f2").tobytes())}
    p = tmp_path / "x.safetensors"
    weights.write_safetensors(p, t, {"k": "v"})
    got, meta = weights.read_safetensors(p)
    assert got == t and meta == {"k": "v"}
    assert (os.path.getsize(p) - 8 - sum(len(r) for _, _, r in t.values())) % 8 == 0
