"""python_dist.py — the Python package's distributed training (mosaic.Dist, Model.fit(...,
dist=...), Dist.agree), run under `mpirun -np 2` by tests/dist/dist.cmake:

  - every rank trains a single-process model on the whole global batch (the reference),
    then the same model with fit(dist=d) on its share: the history's losses, the step and
    the embeddings of a fixed batch agree with the reference (encoders frozen, as in
    tests/dist/tool.sh: local BatchNorm is the one documented difference); the model is
    detached afterwards (a further train_step runs alone: it changes only this rank);
  - a callback returning False on rank 1 only stops both ranks after that epoch;
  - rank 1's data failing (its S2 bands cut short): rank 1 gets the read error, rank 0
    CommError naming rank 1, at once;
  - a callback raising on rank 1 only: rank 1 gets its own exception, rank 0 CommError
    naming rank 1 and the exception, at once (well within the 60 s timeout);
  - Dist.agree by hand: nothing failed (0), then rank 0 failing with an OSError (rank 0
    gets 1, rank 1 CommError naming rank 0's "input/output error");
  - closing the communicator detaches the models attached to it.

Prints "PYTHON DIST OK rank R" and exits 0 on success; exits 77 when libmosaic_mpi.so is
missing.
"""

import glob
import math
import os
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:  # (python3-numpy: scripts/install-deps.sh installs it)
    print("SKIP: no numpy")
    sys.exit(77)

import mosaic

TINY = {"modality.0.encoder": "tiny", "modality.1.encoder": "tiny", "proj.dim": 8,
        "seed": 5, "threads": 1}
FROZEN = {"train.freeze_encoders": 1}  # (a training key: fit's options)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL rank %s: %s" % (RANK, what), file=sys.stderr, flush=True)


def create(ds):
    with mosaic.Options.from_dataset(ds, TINY) as o:
        return mosaic.Model.create(o)


def embed_all(m, ds):
    with ds.fill_batch(range(len(ds))) as b:
        return np.asarray(m.embed(b))


def main(tmp):
    global RANK
    try:
        d = mosaic.Dist("mpi", timeout=60)
    except mosaic.BackendUnavailableError as e:
        print("SKIP: %s" % e)
        return 77
    RANK = d.rank
    check(d.size == 2, "2 ranks, not %d" % d.size)
    root = os.path.join(tmp, "ben")  # (each rank writes the same synthetic data)
    mosaic.synth_write(root, 24, seed=5)
    with mosaic.Dataset(root, split="all") as ds:
        # The reference: one process on the global batch of 8.
        with create(ds) as ref:
            want = ref.fit(ds, epochs=2, batch_size=8, seed=3, workers=1, options=FROZEN)
            want_z = embed_all(ref, ds)
        with create(ds) as m:
            got = m.fit(ds, epochs=2, batch_size=8, seed=3, workers=1, options=FROZEN, dist=d)
            check(m.step == 6, "6 steps, not %d" % m.step)
            check([h["steps"] for h in got] == [3, 3], "3 steps an epoch")
            for e in range(2):
                check(math.isclose(got[e]["loss"], want[e]["loss"], rel_tol=1e-4),
                      "epoch %d loss %.7g, one process %.7g" % (e, got[e]["loss"],
                                                                want[e]["loss"]))
            z = embed_all(m, ds)
            err = float(np.max(np.abs(z - want_z)) / max(1.0, float(np.max(np.abs(want_z)))))
            check(err < 2e-4, "embeddings differ from one process by %.3g" % err)
            # detached after fit: a step now is this rank's alone (its own 2 samples)
            with ds.fill_batch([2 * RANK, 2 * RANK + 1]) as b:
                m.train_step(b)
            check(not d._attached, "fit left the model attached")

        # A stop on one rank is a stop on both.
        with create(ds) as m:
            hist = m.fit(ds, epochs=3, batch_size=8, workers=1, dist=d,
                         callback=lambda e: not (RANK == 1 and e["epoch"] == 0))
            check(len(hist) == 1, "stopped after epoch 0 on both ranks, not %d" % len(hist))

        # An exception on one rank: its own there, CommError on the other, at once.
        def boom(entry):
            if RANK == 1:
                raise KeyError("no 'x' in the log")

        with create(ds) as m:
            t0 = time.monotonic()
            try:
                m.fit(ds, epochs=2, batch_size=8, workers=1, dist=d, callback=boom)
                check(False, "the failed callback went unnoticed")
            except mosaic.CommError as e:
                check(RANK == 0 and "rank 1 failed (not found): KeyError" in str(e),
                      "rank %d: CommError %s" % (RANK, e))
            except KeyError:
                check(RANK == 1, "rank 0 got rank 1's KeyError")
            check(time.monotonic() - t0 < 30, "the failure took %.1f s" % (time.monotonic() - t0))
            check(not d._attached, "a failed fit left the model attached")

    # A rank whose data fails: its own error there, CommError on the other, at once. Each
    # rank has its own copy of the data; rank 1's S2 bands are cut short after opening.
    bad = os.path.join(tmp, "bad")
    mosaic.synth_write(bad, 24, seed=5)
    with mosaic.Dataset(bad, split="all") as ds, create(ds) as m:
        if RANK == 1:
            for f in glob.glob(os.path.join(bad, "BigEarthNet-S2", "*", "*", "*_B04.tif")):
                with open(f, "r+b") as fh:
                    fh.truncate(300)
        t0 = time.monotonic()
        try:
            m.fit(ds, epochs=2, batch_size=8, workers=1, dist=d)
            check(False, "the cut rasters went unnoticed")
        except mosaic.CommError as e:
            check(RANK == 0 and "rank 1 failed (bad format): BadFormatError: dataset" in str(e),
                  "rank %d: CommError %s" % (RANK, e))
        except mosaic.Error as e:
            check(RANK == 1 and "B04" in str(e), "rank %d: %s" % (RANK, e))
        check(time.monotonic() - t0 < 30, "the failure took %.1f s" % (time.monotonic() - t0))
        check(not d._attached, "a failed fit left the model attached")

    # Dist.agree by hand.
    check(d.agree() == 0, "nothing failed")
    if RANK == 0:
        check(d.agree(OSError("disk full")) == 1, "rank 0 failed alone")
    else:
        try:
            d.agree()
            check(False, "rank 0's failure went unnoticed")
        except mosaic.CommError as e:
            check("rank 0 failed (input/output error): OSError: disk full" in str(e),
                  "CommError %s" % e)
    d.barrier()  # the communicator works after an agreement

    # close() detaches what is attached (the model then trains alone).
    with mosaic.Dataset(root, split="all") as ds, create(ds) as m:
        m.set_dist(d)
        d.close()
        check(getattr(m, "_dist", None) is None, "close() did not detach the model")
        with ds.fill_batch([0, 1]) as b:
            m.train_step(b)
    if not failures:
        print("PYTHON DIST OK rank %d" % RANK, flush=True)
    return 1 if failures else 0


RANK = -1
if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        rc = main(tmp)
    sys.exit(rc)
