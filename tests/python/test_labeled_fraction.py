"""data.labeled_fraction (docs/data.md, "Low-label training"): every sample of the split
stays; a stratified, seeded share keeps its labels and the others are marked unlabelled in
batches and loaders. data.fraction, by contrast, drops the rest of the split."""

import pytest

import mosaic

np = pytest.importorskip("numpy")


def open_ds(root, **kw):
    return mosaic.Dataset(root, "bigearthnet-v2", {"data.split": "train", "seed": 3, **kw})


def test_labeled_share_keeps_every_sample(synth_dir):
    with open_ds(synth_dir) as full, open_ds(synth_dir, **{"data.labeled_fraction": 0.25}) as low, \
            open_ds(synth_dir, **{"data.fraction": 0.25}) as cut:
        n = len(full)
        assert len(low) == n and full.labeled_count == n
        k = low.labeled_count
        assert abs(k - round(0.25 * n)) <= max(2, 0.05 * n)
        assert len(cut) < n
        # The same samples in the same order; flags in batches and the loader.
        assert low.sample_ids() == full.sample_ids()
        flags = []
        for b in low.batches(16):
            with b:
                f = b.labeled
                assert f.shape == (len(b),) and set(np.unique(f)) <= {0, 1}
                assert b.labels is not None          # labels stay readable
                flags.append(f)
        flags = np.concatenate(flags)
        assert int(flags.sum()) == k
        with full.fill_batch(range(8)) as b:
            assert b.labeled.tolist() == [1] * 8
        # Seeded: the same options give the same labelled samples.
        with open_ds(synth_dir, **{"data.labeled_fraction": 0.25}) as again:
            f2 = np.concatenate([b.labeled for b in again.batches(16)])
            assert f2.tolist() == flags.tolist()
        # Stratified: every class with enough samples keeps labelled members.
        y = np.concatenate([b.labels for b in full.batches(64)]).astype(bool)
        keep = flags.astype(bool)
        for c in range(y.shape[1]):
            if y[:, c].sum() >= 12:
                assert y[keep, c].sum() > 0, "class %d lost every label" % c
