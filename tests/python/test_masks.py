"""Per-pixel masks in batches and datasets (msc_batch_set_mask / msc_batch_mask,
msc_dataset_mask_info)."""

import pytest

import mosaic
from conftest import EXAMPLE_DATA, needs_numpy, np


@needs_numpy
def test_batch_mask_roundtrip():
    b = mosaic.Batch()
    assert b.mask is None
    m = (np.arange(2 * 3 * 4).reshape(2, 3, 4) % 5 - 1).astype(np.int32)
    b.set_mask(m)
    assert len(b) == 2
    got = b.mask
    assert got.dtype == np.int32 and got.shape == (2, 3, 4)
    assert np.array_equal(got, m)
    m[0, 0, 0] = 42  # the batch holds a copy
    assert b.mask[0, 0, 0] == -1
    with pytest.raises(mosaic.ShapeError):
        b.set_mask(np.zeros((3, 2, 2), np.int32))  # n differs from the batch's
    b.close()


def test_dataset_without_masks():
    ds = mosaic.Dataset(EXAMPLE_DATA, split="all")
    assert ds.mask_info is None
    assert ds.mask_class_names == ()
    b = ds.fill_batch([0])
    assert b.mask is None
    b.close()
    ds.close()


@needs_numpy
def test_sen1floods11_masks(tmp_path):
    d = mosaic.synth_write(tmp_path / "floods", 6, seed=3, format="sen1floods11",
                           options={"synth.size": 32})
    ds = mosaic.Dataset(d, "sen1floods11", split="all")
    assert ds.mask_info == (2, -1, 32)
    assert ds.mask_class_names == ("not water", "water")
    assert ds.num_classes == 0
    b = ds.fill_batch(range(len(ds)))
    m = b.mask
    assert m.shape == (6, 32, 32) and m.dtype == np.int32
    assert set(np.unique(m)) <= {-1, 0, 1}
    assert (m == 1).any() and (m == 0).any()
    # ds[i] carries sample i's mask (and no labels: the format has no classes)
    d = ds[4]
    assert "labels" not in d and d["mask"].shape == (32, 32)
    np.testing.assert_array_equal(d["mask"], m[4])
    np.testing.assert_array_equal(d["s1"], b["s1"][4])
    b.close()
    ds.close()
