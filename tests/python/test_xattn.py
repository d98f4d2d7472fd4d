"""Cross-attention fusion (option fusion = xattn; docs/model.md, "Fusion"): its tensors
(names, shapes and count derived here from the description, not read back from the
library), h_f's width, a save/load round trip, the single-modality case (self-attention)
and the refusals. The op itself is tested in test_convnext_ops.c (reference and finite
differences), the whole graph's gradients and learning in test_train.c."""

import json
import struct

import pytest

from conftest import TINY, random_inputs

import mosaic

np = pytest.importorskip("numpy")

D, HEADS = 16, 4
XATTN = dict(TINY, **{"fusion": "xattn", "fusion.dim": D, "fusion.heads": HEADS})


def safetensors_shapes(path):
    """{name: shape} from a safetensors file's JSON header."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def expected_fusion(mods, d):
    """The fusion tensors of modalities mods = [(name, token channels)]."""
    out = {}
    for m, c in mods:
        p = f"fusion.{m}."
        out[p + "proj.weight"], out[p + "proj.bias"] = [d, c, 1, 1], [d]
        out[p + "norm.weight"], out[p + "norm.bias"] = [d], [d]
        sources = [k for k, _ in mods if k != m] or [m]
        for name in ["q", "out"] + [f"{t}.{k}" for k in sources for t in ("k", "v")]:
            out[p + name + ".weight"], out[p + name + ".bias"] = [d, d, 1, 1], [d]
    return out


def head(dim):
    """Parameters reading h_f of width dim: the fused head (dim -> dim -> proj.dim 16) and
    the classifier (dim -> 4 classes)."""
    return (dim * dim + dim) + (dim * 16 + 16) + (dim * 4 + 4)


def test_tensors_and_width(tmp_path):
    with mosaic.Model.create(TINY) as plain, mosaic.Model.create(XATTN) as m:
        # The tiny encoders end at 16 channels (docs/model.md): tokens of 16 channels.
        fusion = expected_fusion([("s1", 16), ("s2", 16)], D)
        count = sum(int(np.prod(s)) for s in fusion.values())
        # The fused head and classifier read h_f: 2·D wide instead of 16 + 16.
        assert m.parameter_count == plain.parameter_count + count - head(32) + head(2 * D)
        s1, s2, _ = random_inputs(3)
        h = m.embed(s1=s1, s2=s2)
        assert h.shape == (3, 2 * D)
        assert np.isfinite(h).all()
        m.save(tmp_path / "x.safetensors")
        shapes = safetensors_shapes(tmp_path / "x.safetensors")
        got = {k: v for k, v in shapes.items() if k.startswith("fusion.")}
        assert got == fusion
        with mosaic.Model.load(tmp_path / "x.safetensors") as back:
            np.testing.assert_array_equal(back.embed(s1=s1, s2=s2), h)
            np.testing.assert_array_equal(back.predict(s1=s1, s2=s2), m.predict(s1=s1, s2=s2))
        # Per-modality features do not go through the fusion: equal to concat's.
        np.testing.assert_array_equal(m.embed(s1=s1, kind="s1"), plain.embed(s1=s1, kind="s1"))


def test_every_modality_attends_to_the_other():
    # Changing S2 changes the S1 block of h_f (its keys and values come from S2).
    with mosaic.Model.create(XATTN) as m:
        s1, s2, _ = random_inputs(2, seed=4)
        a = m.embed(s1=s1, s2=s2)
        b = m.embed(s1=s1, s2=s2 * 0.5)
        assert not np.allclose(a[:, :D], b[:, :D], atol=1e-5)


def test_one_modality_attends_to_itself():
    opts = {k: v for k, v in XATTN.items() if not k.startswith("modality.1")}
    opts["modality.count"] = 1
    opts["train.preset"] = "simclr"  # (the cross-modal terms need two modalities)
    with mosaic.Model.create(opts) as m:
        s1, _, _ = random_inputs(2)
        assert m.embed(s1=s1).shape == (2, D)
        with mosaic.Model.create({k: v for k, v in opts.items()
                                  if not k.startswith("fusion")}) as plain:
            fusion = expected_fusion([("s1", 16)], D)
            count = sum(int(np.prod(s)) for s in fusion.values())
            assert m.parameter_count == plain.parameter_count + count - head(16) + head(D)


def test_refusals():
    with pytest.raises(mosaic.InvalidArgumentError, match="'fusion.heads' \\(3\\) must divide"):
        mosaic.Model.create(dict(XATTN, **{"fusion.heads": 3}))
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Model.create(dict(XATTN, fusion="sum"))
    with mosaic.Model.create(XATTN) as m:
        s1, _, _ = random_inputs(2)
        with pytest.raises(mosaic.NotFoundError, match="no 's2' array.*fusion xattn"):
            m.embed(s1=s1)
        assert m.embed(s1=s1, kind="s1").shape == (2, 16)
        with pytest.raises(mosaic.InvalidArgumentError, match="train.modality_dropout"):
            m.configure_training({"train.modality_dropout": 0.2})
