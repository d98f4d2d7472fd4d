"""Preset-dependent defaults (docs/losses.md, "Presets"): the dual-encoder preset trains
without hand-made augmentations unless asked; the others keep them."""

import pytest

import mosaic

GEOMETRY = ("aug.crop", "aug.hflip", "aug.vflip", "aug.rot90")
PHOTOMETRY = ("aug.jitter_brightness", "aug.jitter_contrast", "aug.speckle")


@pytest.mark.parametrize("preset", ["mosaic1", "mosaic2", "simclr", "iai", "supervised", "pimc"])
def test_augmentations_on_by_default(preset):
    with mosaic.Options({"train.preset": preset}) as o:
        assert [o.get(k) for k in GEOMETRY] == [1, 1, 1, 1]
        assert [o.get(k) for k in PHOTOMETRY] == pytest.approx([0.1, 0.1, 0.1])


def test_dual_has_no_augmentation_unless_asked():
    with mosaic.Options({"train.preset": "dual"}) as o:
        assert [o.get(k) for k in GEOMETRY] == [0, 0, 0, 0]
        assert [o.get(k) for k in PHOTOMETRY] == [0.0, 0.0, 0.0]
        assert not o.is_set("aug.crop")
        o.set("aug.hflip", 1)
        o.set("aug.speckle", 0.2)
        assert o.get("aug.hflip") == 1 and o.get("aug.speckle") == pytest.approx(0.2)
        assert o.get("aug.vflip") == 0
