"""Models through the Pythonic layer: create/save/load/embed/predict/train_step, options."""

import copy
import json
import threading

import pytest

from conftest import C, SIZE, TINY, random_inputs

import mosaic

np = pytest.importorskip("numpy")


def test_version():
    assert mosaic.version() == "%d.%d.%d" % mosaic.version_info()
    assert mosaic.version_info()[0] == mosaic.header_version()[0]
    assert "cpu" in mosaic.backends()
    assert mosaic.backend_available("cpu")
    assert mosaic.select_backend("cpu") == "cpu"
    assert mosaic.select_backend() in mosaic.backends()
    with pytest.raises(mosaic.NotFoundError):
        mosaic.backend_available("no-such-backend")


def test_describe(tiny_model):
    m = tiny_model
    assert m.modality_names == ("s1", "s2")
    assert m.modality_shape("s1") == (2, SIZE)
    assert m.modality_shape(1) == (4, SIZE)
    assert m.modalities == {"s1": (2, SIZE), "s2": (4, SIZE)}
    assert m.num_classes == C and m.class_names == ("a", "b", "c", "d")
    assert m.parameter_count > 0
    assert m.backend == mosaic.select_backend("auto")
    assert m.embedding_size() == 32
    assert m.embedding_size("fused_projection") == 16
    assert m.embedding_size("features", "s2") == 16
    assert m.embedding_size("s1_projection") == 16
    assert "tiny" not in repr(m) and "s1 2x16x16" in repr(m)
    with pytest.raises(mosaic.NotFoundError):
        m.modality_shape("s3")


def test_create_save_load_embed_equal(tmp_path, tiny_model):
    s1, s2, _ = random_inputs(3)
    h = tiny_model.embed(s1=s1, s2=s2)
    assert h.shape == (3, 32) and h.dtype == np.float32
    path = tmp_path / "tiny.safetensors"
    tiny_model.save(path)
    with mosaic.Model.load(path) as loaded:
        assert loaded.options() == tiny_model.options()
        np.testing.assert_array_equal(loaded.embed(s1=s1, s2=s2), h)
        np.testing.assert_array_equal(loaded.predict(s1=s1, s2=s2),
                                      tiny_model.predict(s1=s1, s2=s2))
    with mosaic.Model.load(str(path), threads=1) as loaded:
        np.testing.assert_array_equal(loaded.embed(s1=s1, s2=s2), h)
    # The same options give bit-identical weights.
    with mosaic.Model.create(TINY) as again:
        np.testing.assert_array_equal(again.embed(s1=s1, s2=s2), h)


def test_option_spellings_agree():
    s1, s2, _ = random_inputs(2)
    nested = {"modality": [{"encoder": "tiny", "size": SIZE},
                           {"encoder": "tiny", "size": SIZE, "bands": 4}],
              "classes": C, "class_names": ["a", "b", "c", "d"], "proj": {"dim": 16},
              "seed": 7}
    with mosaic.Model.create(TINY) as a, mosaic.Model.create(nested) as b, \
            mosaic.Model.create(options=json.dumps(TINY)) as c, \
            mosaic.Model.create({k: v for k, v in TINY.items() if k != "proj.dim"},
                                proj__dim=16) as d, \
            mosaic.Model.create(mosaic.Options(TINY)) as e:
        ref = a.embed(s1=s1, s2=s2)
        for m in (b, c, d, e):
            np.testing.assert_array_equal(m.embed(s1=s1, s2=s2), ref)


def test_embed_kinds(tiny_model):
    m = tiny_model
    s1, s2, _ = random_inputs(4)
    fused = m.embed(s1=s1, s2=s2)
    f1 = m.embed(s1=s1, kind="features")          # the only modality given
    f2 = m.embed(s2=s2, kind="s2")
    np.testing.assert_allclose(np.concatenate([f1, f2], axis=1), fused, rtol=1e-6)
    z = m.embed(s1=s1, s2=s2, kind="fused_projection")
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, rtol=1e-5)
    p = m.embed(s1=s1, s2=s2, kind="projection", modality="s1")
    np.testing.assert_array_equal(p, m.embed(s1=s1, kind="s1_projection"))
    np.testing.assert_array_equal(p, m.embed(s1=s1, kind=mosaic.EMBED_MODALITY_PROJECTION(0)))
    with pytest.raises(mosaic.InvalidArgumentError):
        m.embed(s1=s1, s2=s2, kind="projection")     # which modality?
    with pytest.raises(mosaic.InvalidArgumentError):
        m.embed(s1=s1, kind="sideways")


def test_predict(tiny_model):
    s1, s2, _ = random_inputs(5)
    p = tiny_model.predict(s1=s1, s2=s2)
    assert p.shape == (5, C) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    with mosaic.Batch(s1=s1, s2=s2) as b:
        assert len(b) == 5
        np.testing.assert_array_equal(tiny_model.predict(b), p)


def test_input_conversions(tiny_model):
    """Other dtypes and memory orders are converted; the results do not change."""
    s1, s2, _ = random_inputs(3)
    ref = tiny_model.embed(s1=s1, s2=s2)
    np.testing.assert_array_equal(tiny_model.embed(s1=s1.astype(np.float64),
                                                   s2=np.asfortranarray(s2)), ref)
    big = np.zeros((3, 4, SIZE, 2 * SIZE), np.float32)
    big[..., ::2] = s2                              # a strided view
    np.testing.assert_array_equal(tiny_model.embed(s1=s1.tolist(), s2=big[..., ::2]), ref)


def test_train_step(tiny_model):
    m = tiny_model
    s1, s2, y = random_inputs(8)
    before = m.embed(s1=s1, s2=s2)
    r = m.train_step(s1=s1, s2=s2, labels=y)
    assert isinstance(r, mosaic.StepResult)
    assert r.step == 1 and not r.skipped and np.isfinite(r.loss) and r.lr > 0
    d = r.as_dict()
    assert set(d) == {"step", "loss", "loss_intra", "loss_inter", "loss_fused", "loss_views",
                      "loss_bce", "lr", "skipped", "loss_seg", "loss_dice"}
    assert d["loss_seg"] == 0 and d["loss_dice"] == 0  # a contrastive model
    assert d["loss_bce"] > 0 and d["loss_intra"] > 0
    assert not np.array_equal(m.embed(s1=s1, s2=s2), before)  # the weights moved
    # A Batch object, bool labels, labelled flags (half unlabelled).
    with mosaic.Batch(s1=s1, s2=s2, labels=y.astype(bool),
                      labeled=[1, 0, 1, 0, 1, 0, 1, 0]) as b:
        r2 = m.train_step(b)
    assert r2.step == 2 and m.step == 2
    with mosaic.Batch(s1=s1, s2=s2, labels=y) as b:
        np.testing.assert_array_equal(b.labels, y)
        assert b.labels.dtype == np.uint8
    with mosaic.Batch(s1=s1, s2=s2) as b:
        assert b.labels is None
    # Self-supervised only: no labels at all.
    m.configure_training({"train.preset": "simclr"})
    r3 = m.train_step(s1=s1, s2=s2)
    assert r3.step == 3 and r3.loss_bce == 0 and r3.loss_intra > 0
    m.configure_training()  # back to the defaults
    with pytest.raises(mosaic.InvalidArgumentError):
        m.configure_training({"train.preset": "nonsense"})


def test_options_roundtrip():
    o = mosaic.Options(TINY, **{"optim.lr": 0.01, "aug.hflip": False})
    assert o["classes"] == C and isinstance(o["classes"], int)
    assert o["optim.lr"] == pytest.approx(0.01) and isinstance(o["optim.lr"], float)
    assert o["class_names"] == "a;b;c;d"
    assert o["aug.hflip"] == 0
    assert o["proj.hidden"] == 0 and "proj.hidden" not in o and "proj.dim" in o
    assert o.key_type("modality.0.encoder") == "string"
    o["optim.lr"] = 1                    # an int for a float key
    assert o["optim.lr"] == 1.0
    o["modality.0.widths"] = [8, 16]     # a list for a string key
    assert o["modality.0.widths"] == "8,16"
    text = o.to_json()
    again = mosaic.Options.from_json(text)
    assert again.to_json() == text and again.to_dict() == json.loads(text)
    with mosaic.Model.create(o) as m:
        cfg = m.options()
        with mosaic.Model.create(cfg) as m2:
            assert m2.options() == cfg
    # from_json is all or nothing
    with pytest.raises(mosaic.NotFoundError):
        again.apply_json('{"classes": 5, "no.such.key": 1}')
    assert again["classes"] == C
    with pytest.raises(mosaic.BadFormatError):
        again.apply_json("{not json")
    o.close()
    again.close()


def test_concurrent_embed(tiny_model):
    s1, s2, _ = random_inputs(2)
    ref = tiny_model.embed(s1=s1, s2=s2)
    results, errors = [], []

    def worker():
        try:
            for _ in range(5):
                results.append(tiny_model.embed(s1=s1, s2=s2))
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, ref)


def test_log_callback():
    seen = []
    mosaic.set_log_callback(lambda level, msg: seen.append((level, msg)), "debug")
    try:
        with mosaic.Model.create(TINY, backend="cpu"):
            pass
    finally:
        mosaic.set_log_callback(None)
    assert all(isinstance(m, str) for _, m in seen)
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.set_log_callback(print, 17)


def test_skipped_step(tmp_path):
    """A non-finite loss skips the update: a result with skipped=True (or NumericalError
    with raise_on_skip), the weights unchanged; a NaN pixel is an input error."""
    with mosaic.Model.create(TINY) as m:
        s1, s2, y = random_inputs(8)
        assert not m.train_step(s1=s1, s2=s2, labels=y).skipped
        m.save(tmp_path / "before.safetensors")
        huge = np.full_like(s2, 3e38)  # finite pixels whose activations overflow
        r = m.train_step(s1=s1, s2=huge, labels=y)
        assert r.skipped and r.step == 1
        with pytest.raises(mosaic.NumericalError):
            m.train_step(s1=s1, s2=huge, labels=y, raise_on_skip=True)
        m.save(tmp_path / "after.safetensors")
        assert (tmp_path / "before.safetensors").read_bytes() == \
            (tmp_path / "after.safetensors").read_bytes()
        assert m.train_step(s1=s1, s2=s2, labels=y).step == 2
        s2[0, 0, 0, 0] = np.nan
        with pytest.raises(mosaic.NumericalError) as e:
            m.train_step(s1=s1, s2=s2, labels=y)
        assert e.value.status == mosaic._ffi.MSC_E_NUMERICAL
        assert isinstance(e.value, ArithmeticError)


def test_reset_classifier(tmp_path, tiny_model):
    """A reset head predicts exactly as a fresh model with that seed: same encoders
    (untrained here) and the same seeded classifier."""
    s1, s2, y = random_inputs(8)
    m = tiny_model
    m.train_step(s1=s1, s2=s2, labels=y)
    assert m.step == 1
    path = tmp_path / "trained.safetensors"
    m.save(path)
    with mosaic.Model.load(path) as loaded:
        assert loaded.step == 1
    with mosaic.Model.create(TINY, seed=99) as fresh:
        assert fresh.step == 0
        want = fresh.predict(s1=s1, s2=s2)
        with mosaic.Model.create(TINY, seed=5) as other:
            assert not np.array_equal(other.predict(s1=s1, s2=s2), want)
            # Encoders from seed 5, head from seed 99: the scores differ from both
            # models' own, and resetting again with 5 gives model 5 back.
            before = other.predict(s1=s1, s2=s2)
            other.reset_classifier(99)
            assert not np.array_equal(other.predict(s1=s1, s2=s2), before)
            other.reset_classifier(5)
            np.testing.assert_array_equal(other.predict(s1=s1, s2=s2), before)


def test_options_floats():
    o = mosaic.Options()
    assert o.key_type("modality.0.mean") == "floats"
    assert o["modality.0.mean"] == [] and "modality.0.mean" not in o
    # Lists and arrays of numbers go in as float32 values (msc_options_set_floats).
    o["modality.0.mean"] = [1.5, -2, 0.1]
    assert o["modality.0.mean"] == [1.5, -2.0, float(np.float32(0.1))]
    assert o.to_dict() == {"modality.0.mean": "1.5,-2,0.100000001"}  # "%.9g" text form
    o.set_floats("modality.0.std", np.array([5.116, 5.464], dtype=np.float32))
    assert o.get_floats("modality.0.std") == [float(np.float32(5.116)),
                                              float(np.float32(5.464))]
    # The text form still works, and reads back as floats.
    o["modality.1.std"] = "1, 2e-3"
    assert o["modality.1.std"] == [1.0, float(np.float32(2e-3))]
    # A JSON round trip gives the same float32 bits.
    again = mosaic.Options.from_json(o.to_json())
    assert np.array_equal(np.float32(again["modality.0.mean"]), np.float32([1.5, -2, 0.1]))
    # Validation: NaN, std <= 0, wrong key types, unknown keys.
    with pytest.raises(mosaic.InvalidArgumentError, match="value 2 \\(nan\\)"):
        o["modality.0.mean"] = [1.0, float("nan")]
    with pytest.raises(mosaic.InvalidArgumentError, match="is not > 0"):
        o["modality.0.std"] = [1.0, 0.0]
    with pytest.raises(mosaic.InvalidArgumentError, match="not a list of numbers"):
        o.set_floats("classes", [1.0])
    with pytest.raises(mosaic.NotFoundError):
        o.set_floats("modality.9.mean", [1.0])
    assert o.get_floats("modality.0.std") == [float(np.float32(5.116)),
                                              float(np.float32(5.464))]  # unchanged
    o.close()
    again.close()


def test_options_copy():
    o = mosaic.Options(TINY, **{"optim.lr": 0.012345678901234567, "seed": 7})
    o["modality.0.mean"] = [1.5, -2, 0.1, -0.0]               # float32 values
    o["modality.0.std"] = " 1, 2e-3 "                         # the text form, as given
    o["modality.1.mean"] = []
    c = o.copy()
    assert isinstance(c, mosaic.Options) and c is not o
    assert c.to_json() == o.to_json()
    for key in ("classes", "seed", "optim.lr", "class_names", "modality.0.encoder",
                "modality.0.std", "modality.1.mean", "proj.hidden"):
        assert c[key] == o[key] and type(c[key]) is type(o[key])
        assert (key in c) == (key in o)
    assert "proj.hidden" not in c
    assert c["optim.lr"] == 0.012345678901234567              # the exact double
    assert c.to_dict()["modality.0.std"] == " 1, 2e-3 "      # the text form kept
    # float lists bit for bit (-0.0 included)
    assert (np.float32(c["modality.0.mean"]).view(np.uint32)
            == np.float32([1.5, -2, 0.1, -0.0]).view(np.uint32)).all()
    # independent: changes to one do not reach the other, closing one keeps the other
    c["classes"] = 2
    c["modality.0.mean"] = [3.0]
    o["seed"] = 9
    assert o["classes"] == C and o["modality.0.mean"][0] == 1.5 and c["seed"] == 7
    before = c.to_json()
    o.close()
    assert c.to_json() == before
    # copy.copy and copy.deepcopy give the same kind of copy
    for d in (copy.copy(c), copy.deepcopy(c)):
        assert d.to_json() == before and d is not c
        d["classes"] = 3
        assert c["classes"] == 2
        d.close()
    c.close()
    with pytest.raises(mosaic.InvalidArgumentError, match="closed"):
        c.copy()
