"""Segmentation models from Python: Model.predict_mask (msc_predict_mask) gives the arg
max of its own per-pixel probabilities, which sum to 1 over the classes; training on a
mask through Batch.set_mask lowers the per-pixel loss; a contrastive model is refused
(docs/segmentation.md)."""

import pytest

import mosaic
from mosaic import _ffi

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not hasattr(_ffi, "msc_predict_mask"),
                                reason="libmosaic has no msc_predict_mask yet")

from conftest import SIZE, TINY, random_inputs  # noqa: E402

SEG = dict(TINY, task="segmentation")


def test_predict_mask_matches_probabilities():
    s1, s2, _ = random_inputs(3, seed=2)
    with mosaic.Model.create(SEG) as m:
        classes, p = m.predict_mask(s1=s1, s2=s2, probs=True)
        assert classes.shape == (3, SIZE, SIZE) and classes.dtype == np.int32
        assert p.shape == (3, m.num_classes, SIZE, SIZE) and p.dtype == np.float32
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(classes, p.argmax(axis=1))
        np.testing.assert_array_equal(m.predict_mask(s1=s1, s2=s2), classes)


def test_training_on_a_mask_lowers_the_loss():
    s1, s2, _ = random_inputs(4, seed=3)
    # Class of a pixel: from the sign of S1's first band around its mean (learnable).
    mask = (s1[:, 0] > -10).astype(np.int32)
    mask[:, 0, :] = -1  # ignored row
    with mosaic.Model.create(SEG) as m:
        m.configure_training({"optim.lr": 0.01, "lambda.dice": 0.5})
        with mosaic.Batch(s1=s1, s2=s2) as b:
            b.set_mask(mask)
            r = m.train_step(b)
            first = r.loss
            # The per-pixel terms have their own fields (0.4.0); loss_bce is the patch term.
            assert r.loss_seg > 0 and 0 < r.loss_dice < 1 and r.loss_bce == 0
            assert r.loss == pytest.approx(r.loss_seg + 0.5 * r.loss_dice, rel=1e-12)
            for _ in range(15):
                last = m.train_step(b).loss
        assert last < 0.7 * first


def test_convnext_encoders_train_a_decoder():
    # ConvNeXt-V2 encoders (small custom widths) under the U-Net decoder: its levels are the
    # stages' outputs at strides 4 and 8 (docs/model.md), upsampled back to the patch size.
    cnx = {"modality.0.encoder": "convnextv2_atto", "modality.1.encoder": "convnextv2_atto",
           "modality.0.widths": "8,16", "modality.0.depths": "1,1",
           "modality.1.widths": "8,16", "modality.1.depths": "1,1"}
    s1, s2, _ = random_inputs(4, seed=5)
    mask = (s1[:, 0] > -10).astype(np.int32)
    with mosaic.Model.create(dict(SEG, **cnx)) as m:
        classes, p = m.predict_mask(s1=s1, s2=s2, probs=True)
        assert classes.shape == (4, SIZE, SIZE)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
        m.configure_training({"optim.lr": 0.01, "train.drop_path": 0.0})
        with mosaic.Batch(s1=s1, s2=s2) as b:
            b.set_mask(mask)
            first = m.train_step(b).loss
            for _ in range(15):
                last = m.train_step(b).loss
        assert last < 0.7 * first


def test_contrastive_model_refused():
    s1, s2, _ = random_inputs(2)
    with mosaic.Model.create(TINY) as m:
        with pytest.raises(mosaic.InvalidArgumentError, match="decoder"):
            m.predict_mask(s1=s1, s2=s2)


def test_decoder_on_one_modality_predicts_from_it_alone():
    # seg.modalities = s1: S2 may have another patch size and is not needed to predict.
    opts = dict(SEG, **{"seg.modalities": "s1", "modality.1.size": 24})
    s1, _, _ = random_inputs(2, seed=4)
    s2 = np.random.default_rng(5).uniform(0, 3000, size=(2, 4, 24, 24)).astype(np.float32)
    with mosaic.Model.create(opts) as m:
        alone = m.predict_mask(s1=s1)
        assert alone.shape == (2, SIZE, SIZE)
        np.testing.assert_array_equal(m.predict_mask(s1=s1, s2=s2), alone)
    with pytest.raises(mosaic.InvalidArgumentError, match="seg.modalities"):
        mosaic.Model.create(dict(SEG, **{"seg.modalities": "s3"}))


def test_odd_patch_size_gives_masks_of_that_size():
    # 15 is not divisible by the tiny encoder's total stride 2: the decoder interpolates
    # layer2's 8x8 to layer1's 15x15.
    opts = dict(SEG, **{"modality.0.size": 15, "modality.1.size": 15})
    rng = np.random.default_rng(6)
    s1 = rng.normal(-10, 3, size=(2, 2, 15, 15)).astype(np.float32)
    s2 = rng.uniform(0, 3000, size=(2, 4, 15, 15)).astype(np.float32)
    with mosaic.Model.create(opts) as m:
        classes, p = m.predict_mask(s1=s1, s2=s2, probs=True)
        assert classes.shape == (2, 15, 15) and p.shape == (2, m.num_classes, 15, 15)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
