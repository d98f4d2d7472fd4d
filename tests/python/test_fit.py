"""Model.fit, Model.evaluate and mosaic.train: the tool's defaults (msc_options_default_schedule),
checked against the same training written out by hand with train_step."""

import math

import pytest

import mosaic
from mosaic import metrics

np = pytest.importorskip("numpy")

TINY = {"modality.0.encoder": "tiny", "modality.1.encoder": "tiny", "proj.dim": 8,
        "seed": 5, "threads": 2}


def create(ds):
    with mosaic.Options.from_dataset(ds, TINY) as o:
        return mosaic.Model.create(o)


def test_fit_equals_the_loop_by_hand(synth_dir):
    with mosaic.Dataset(synth_dir, split="all") as ds:
        user = mosaic.Options({"optim.lr": 0.002})
        with create(ds) as m:
            hist = m.fit(ds, epochs=2, batch_size=8, seed=3, workers=1, options=user)
            assert m.step == 6
        assert not user.is_set("optim.total_steps")  # the caller's options are untouched
        assert [h["epoch"] for h in hist] == [0, 1] and [h["steps"] for h in hist] == [3, 3]
        # By hand: 24 samples in batches of 8 = 3 steps an epoch, 6 in all: the default
        # schedule is total_steps 6 and no warm-up (6 < 20).
        with create(ds) as m:
            m.configure_training({"optim.lr": 0.002, "optim.total_steps": 6,
                                  "optim.warmup_steps": 0})
            losses, lrs = [], []
            with ds.loader(8, seed=3, workers=1, drop_last=True) as ld:
                for _ in range(6):
                    r = m.train_step(next(ld))
                    losses.append(r.loss)
                    lrs.append(r.lr)
        for e in range(2):
            assert math.isclose(hist[e]["loss"], sum(losses[3 * e:3 * e + 3]) / 3, rel_tol=1e-9)
        assert hist[1]["lr"] == lrs[-1] and lrs[-1] < lrs[0]  # decayed


def test_evaluate_and_validation(synth_dir):
    with mosaic.Dataset(synth_dir, split="all") as ds, create(ds) as m:
        got = m.evaluate(ds, batch_size=10)
        with ds.fill_batch(range(len(ds))) as b:
            want = metrics.compute(m.predict(b), b.labels)
        assert got["samples"] == len(ds)
        for k, v in want.items():
            assert got[k] == v or (isinstance(v, float) and math.isnan(v) and math.isnan(got[k]))
        seen = []
        hist = m.fit(ds, epochs=3, batch_size=12, workers=1, validation=ds,
                     callback=lambda e: seen.append(e["epoch"]) or e["epoch"] < 1)
        assert seen == [0, 1] and len(hist) == 2  # stopped by the callback after epoch 1
        assert "macro_ap" in hist[0]["validation"]


def test_train_from_a_folder(synth_dir):
    m = mosaic.train(synth_dir, split="all", epochs=1, batch_size=6, workers=1,
                     model={"modality.0.encoder": "tiny", "modality.1.encoder": "tiny",
                            "proj.dim": 8})
    with m:
        assert m.step == 4 and len(m.history) == 1 and m.num_classes == 19
    with pytest.raises(mosaic.InvalidArgumentError):
        with mosaic.Dataset(synth_dir, split="all") as ds, create(ds) as m2:
            m2.fit(ds, epochs=0)
