"""Fused embeddings and predictions from a subset of the modalities (docs/model.md,
"Missing modalities"): an absent modality's features are zeros, the present ones are
scaled by n_mod / n_present, and the classifier is linear in the fused features."""

import pytest

from conftest import random_inputs

import mosaic

np = pytest.importorskip("numpy")


def test_fused_features_without_a_modality(tiny_model):
    s1, s2, _ = random_inputs(5)
    h1 = tiny_model.embed(s1=s1, kind="s1")
    h2 = tiny_model.embed(s2=s2, kind="s2")
    got = tiny_model.embed(s1=s1)
    np.testing.assert_allclose(got, np.hstack([2 * h1, np.zeros_like(h1)]), rtol=1e-6,
                               atol=1e-6)
    got = tiny_model.embed(s2=s2)
    np.testing.assert_allclose(got, np.hstack([np.zeros_like(h2), 2 * h2]), rtol=1e-6,
                               atol=1e-6)
    z = tiny_model.embed(s2=s2, kind="fused_projection")
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    # Batch.remove gives the same batch as leaving the array out.
    with mosaic.Batch(s1=s1, s2=s2) as b:
        b.remove("s1")
        np.testing.assert_array_equal(tiny_model.embed(b), got)
        with pytest.raises(mosaic.NotFoundError):
            b.remove("s1")


def test_predictions_without_a_modality(tiny_model):
    # logit = W h_f + b: with one modality each, 2 W_1 h_1 + b and 2 W_2 h_2 + b, whose
    # sum is twice the logit of the full batch, whatever the weights.
    s1, s2, _ = random_inputs(6, seed=3)
    s1, s2 = s1 / 10, s2 / 3000  # moderate logits: probabilities far from 0 and 1
    logit = lambda p: np.log(p.astype(np.float64)) - np.log1p(-p.astype(np.float64))
    full = logit(tiny_model.predict(s1=s1, s2=s2))
    only1 = logit(tiny_model.predict(s1=s1))
    only2 = logit(tiny_model.predict(s2=s2))
    np.testing.assert_allclose(only1 + only2, 2 * full, rtol=1e-4, atol=1e-4)
    assert not np.allclose(only1, full, atol=1e-3)


def test_no_modality_is_refused(tiny_model):
    s1, _, _ = random_inputs(2)
    with pytest.raises(mosaic.NotFoundError, match="none of the model's modalities"):
        tiny_model.predict(s3=s1)


def test_training_option(tiny_model):
    with mosaic.Options() as o:
        o["train.modality_dropout"] = 0.3
        assert o["train.modality_dropout"] == pytest.approx(0.3)
        with pytest.raises(mosaic.InvalidArgumentError):
            o["train.modality_dropout"] = 1.5
