"""Datasets and loaders: a synthetic BigEarthNet v2 (msc_synth_write) and the bundled
samples of examples/data when present."""

import os

import pytest

from conftest import EXAMPLE_DATA

import mosaic

np = pytest.importorskip("numpy")

# A small model for the dataset's shapes (S1 2 bands, S2 12 bands, 120x120, 19 classes).
BEN_TINY = {"modality.0.encoder": "tiny", "modality.1.encoder": "tiny", "proj.dim": 8,
            "threads": 1}


def test_synthetic(synth_dir):
    with mosaic.Dataset(synth_dir, "bigearthnet-v2", split="all") as ds:
        assert len(ds) == 24 and ds.skipped == 0
        assert ds.num_classes == 19 and len(ds.class_names) == 19
        assert ds.class_names[0] == "Urban fabric"
        assert ds.modality_names == ("s1", "s2")
        assert ds.modalities == {"s1": (2, 120), "s2": (12, 120)}
        ids = ds.sample_ids()
        assert len(set(ids)) == 24 and ds.sample_id(-1) == ids[-1]
        with mosaic.Model.create(BEN_TINY) as model:
            assert model.class_names == ds.class_names
            b = ds.fill_batch([0, 5, 7])
            assert len(b) == 3
            h = model.embed(b)
            p = model.predict(b)
            assert h.shape == (3, 32) and p.shape == (3, 19)
            # The same samples read again (into the same batch) embed the same.
            ds.fill_batch(np.array([0, 5, 7]), batch=b)
            np.testing.assert_array_equal(model.embed(b), h)
            r = model.train_step(ds.fill_batch(range(4)))
            assert r.step == 1 and r.loss_bce > 0   # the dataset's labels were used
            b.close()
        sizes = [len(b) for b in ds.batches(10)]
        assert sizes == [10, 10, 4]


def test_splits_and_options(synth_dir):
    parts = [len(mosaic.Dataset(synth_dir, split=s)) for s in ("train", "validation", "test")]
    assert sum(parts) == 24 and parts[0] > 0
    with mosaic.Dataset(synth_dir, split="all", fraction=0.5, seed=3) as half, \
            mosaic.Dataset(synth_dir, options={"data.split": "all", "data.fraction": 0.5,
                                               "seed": 3}) as again:
        assert len(half) == 12
        assert half.sample_ids() == again.sample_ids()
    with mosaic.Dataset(synth_dir, split="all", s2_bands="B04,B03,B02") as rgb:
        assert rgb.modality_shape("s2") == (3, 120)
        mean, std = rgb.stats("s2")
        assert mean.shape == (3,) and np.all(std > 0)


def test_stats(synth_dir):
    with mosaic.Dataset(synth_dir, split="all") as ds:
        mean, std = ds.stats("s1")
        assert mean.shape == (2,) and mean.dtype == np.float32
        with pytest.raises(mosaic.NotFoundError):
            ds.stats("s2")   # B01 and B09 have no published statistics
        m2, s2 = ds.compute_stats("s2", max_samples=6)
        assert m2.shape == (12,) and np.all(s2 > 0)
        with pytest.raises(mosaic.NotFoundError):
            ds.compute_stats(5)


def test_loader(synth_dir):
    ds = mosaic.Dataset(synth_dir, split="all")
    with ds.loader(5, seed=1, workers=2, drop_last=True) as ld:
        epochs = [next(ld).epoch for _ in range(10)]
    assert epochs == [0] * 4 + [1] * 4 + [2] * 2
    # The order depends on the seed only: two loaders agree, whatever their threads.
    with mosaic.Model.create(BEN_TINY) as model:
        a = ds.loader(6, seed=9, workers=1)
        b = ds.loader(6, seed=9, workers=3)
        for _ in range(3):
            np.testing.assert_array_equal(model.embed(next(a), kind="s1"),
                                          model.embed(next(b), kind="s1"))
        a.close()
        mine = mosaic.Batch()
        assert b.next_batch(mine) is mine and len(mine) == 6
    # Closing the dataset stops its remaining loaders first.
    ds.close()
    assert b.closed
    with pytest.raises(mosaic.InvalidArgumentError):
        next(b)
    with pytest.raises(mosaic.InvalidArgumentError):
        len(ds)


def test_dataset_errors(tmp_path, synth_dir):
    with pytest.raises(mosaic.IOError) as e:
        mosaic.Dataset(tmp_path / "missing")
    assert isinstance(e.value, OSError) and e.value.status == mosaic._ffi.MSC_E_IO
    assert "missing" in str(e.value)
    with pytest.raises(mosaic.NotFoundError) as e:
        mosaic.Dataset(synth_dir, "no-such-format")
    assert "bigearthnet-v2" in str(e.value)  # the message lists the formats
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.Dataset(synth_dir, split="all", fraction="half")
    with mosaic.Dataset(synth_dir, split="all") as ds:
        with pytest.raises(mosaic.InvalidArgumentError):
            ds.fill_batch([0, 99])
        with pytest.raises(mosaic.InvalidArgumentError):
            ds.sample_id(99)
        with pytest.raises(mosaic.InvalidArgumentError):
            ds.loader(0)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "precious.txt").write_text("do not overwrite")
    with pytest.raises(mosaic.InvalidArgumentError):
        mosaic.synth_write(tmp_path / "user", 3)
    with pytest.raises(mosaic.UnsupportedError):
        mosaic.synth_write(tmp_path / "other", 3, format="sen12ms")


@pytest.mark.skipif(not os.path.isfile(os.path.join(EXAMPLE_DATA, "metadata.tsv")),
                    reason="examples/data/bigearthnet-v2 is not present")
def test_bundled_samples():
    with mosaic.Dataset(EXAMPLE_DATA, "bigearthnet-v2", split="all") as ds:
        assert len(ds) >= 1
        assert ds.modalities == {"s1": (2, 120), "s2": (12, 120)}
        with mosaic.Model.create(BEN_TINY) as model:
            p = model.predict(ds.fill_batch(range(len(ds))))
        assert p.shape == (len(ds), 19) and np.all(np.isfinite(p))
        mean, std = ds.compute_stats("s2")
        assert np.all(np.isfinite(mean)) and np.all(std > 0)


def test_loader_in_a_collected_cycle(synth_dir):
    """A dataset and its loader that die together in a reference cycle are freed loader
    first, whatever order the garbage collector picks."""
    import gc
    for _ in range(5):
        ds = mosaic.Dataset(synth_dir, split="all")
        ld = ds.loader(4, workers=2)
        next(ld)
        ds.cycle = ld   # dataset -> loader -> dataset
        fin_ds, fin_ld = ds._finalizer, ld._finalizer
        del ds, ld
        gc.collect()
        assert not fin_ds.alive and not fin_ld.alive


def test_options_from_dataset(synth_dir):
    with mosaic.Dataset(synth_dir, "bigearthnet-v2", split="all") as ds:
        mean, std = ds.compute_stats("s2", 4)
        # The synthetic S2 bands include B01 and B09, which have no published statistics.
        with pytest.raises(mosaic.NotFoundError, match="published statistics of s2"):
            mosaic.Options.from_dataset(ds, BEN_TINY, stats="published")
        with mosaic.Options.from_dataset(ds, BEN_TINY, stats="auto", stats_samples=4) as o:
            assert o["modality.count"] == 2
            assert o["modality.0.name"] == "s1" and o["modality.1.name"] == "s2"
            assert o["modality.1.bands"] == 12 and o["modality.1.size"] == 120
            assert o["classes"] == 19 and o["class_names"].split(";") == list(ds.class_names)
            assert o["modality.0.encoder"] == "tiny"  # the options given are kept
            assert np.array_equal(np.float32(o["modality.1.mean"]), mean)
            s1_mean, _ = ds.stats("s1")  # published for S1
            assert np.array_equal(np.float32(o["modality.0.mean"]), s1_mean)
            with mosaic.Model.create(o) as model:
                assert model.modalities == ds.modalities
        # Normalisation keys already set are kept.
        with mosaic.Options.from_dataset(ds, {"modality.0.std": [2.0, 3.0]},
                                         stats="computed", stats_samples=2) as o:
            assert o["modality.0.std"] == [2.0, 3.0]
        with pytest.raises(mosaic.InvalidArgumentError):
            mosaic.Options.from_dataset(ds, stats="sometimes")


def test_samples_as_dicts(synth_dir):
    """ds[i], iteration and slices against the Batch of the same samples."""
    with mosaic.Dataset(synth_dir, split="all") as ds:
        n = len(ds)
        with ds.fill_batch([0, 3, n - 1]) as b:
            s1, s2, labels = b["s1"], b.modality("s2"), b.labels
        for row, i in enumerate([0, 3, n - 1]):
            d = ds[i]
            assert set(d) == {"s1", "s2", "labels", "id"}
            assert d["s1"].shape == (2, 120, 120) and d["s1"].dtype == np.float32
            assert d["s2"].shape == (12, 120, 120)
            np.testing.assert_array_equal(d["s1"], s1[row])
            np.testing.assert_array_equal(d["s2"], s2[row])
            np.testing.assert_array_equal(d["labels"], labels[row])
            assert d["labels"].shape == (19,) and d["id"] == ds.sample_id(i)
        np.testing.assert_array_equal(ds[-1]["s2"], s2[2])
        assert ds[-n]["id"] == ds.sample_id(0)
        for bad in (n, -n - 1):
            with pytest.raises(IndexError):
                ds[bad]
        with pytest.raises(TypeError):
            ds["0"]
        assert [d["id"] for d in ds[1:4]] == [ds.sample_id(i) for i in (1, 2, 3)]
        ids = [d["id"] for d in ds]
        assert ids == ds.sample_ids()


def test_batch_pixels_read_back():
    rng = np.random.default_rng(5)
    s1 = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    s2 = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
    with mosaic.Batch(s1=s1, s2=s2) as b:
        assert b.modality_names == ("s1", "s2") and "s2" in b and "s3" not in b
        np.testing.assert_array_equal(b["s1"], s1)
        px = b.pixels
        assert list(px) == ["s1", "s2"]
        np.testing.assert_array_equal(px["s2"], s2)
        # a copy: changing it changes nothing in the batch, until it is set back
        got = b["s2"]
        got *= 2
        np.testing.assert_array_equal(b["s2"], s2)
        b.set("s2", got)
        np.testing.assert_array_equal(b["s2"], 2 * s2)
        with pytest.raises(mosaic.NotFoundError):
            b["s3"]
        del b["s1"]
        assert b.modality_names == ("s2",)


def test_loader_epochs_as_iterations(synth_dir):
    """len(loader) is the batches of an epoch (24 samples: 5 of 5 with 4 left, or 4
    with drop_last), and `for` runs to the end of the current epoch."""
    ds = mosaic.Dataset(synth_dir, split="all")
    with ds.loader(5, seed=2) as ld:
        assert len(ld) == 5
        first = [(b.epoch, len(b)) for b in ld]
        assert first == [(0, 5)] * 4 + [(0, 4)]
        assert next(ld).epoch == 1          # one batch of epoch 1 taken by hand ...
        rest = [b.epoch for b in ld]        # ... so the loop gives its other 4
        assert rest == [1] * 4
        assert [b.epoch for b in ld] == [2] * 5
    with ds.loader(5, seed=2, drop_last=True) as ld:
        assert len(ld) == 4
        assert [len(b) for b in ld] == [5] * 4
    ds.close()
