"""No leak over 10,000 create/free cycles: the resident set size (/proc/self/statm)
after the cycles is within a small slack of the size before them."""

import os

import pytest

from conftest import SIZE, TINY

import mosaic

CYCLES = 10_000
SLACK = 8 * 1024 * 1024  # bytes: allocator noise, not 10,000 leaked objects


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="needs /proc/self/statm")


def cycles(body, n):
    for i in range(n):
        body(i)


def measure(body):
    cycles(body, 300)  # warm up: pools, caches, lazily loaded code
    before = rss()
    cycles(body, CYCLES)
    return rss() - before


def test_models_and_batches_do_not_leak():
    np = pytest.importorskip("numpy")
    s1 = np.ones((1, 2, SIZE, SIZE), np.float32)
    s2 = np.ones((1, 4, SIZE, SIZE), np.float32)
    opts = mosaic.Options(TINY)

    def body(i):
        m = mosaic.Model.create(opts)
        b = mosaic.Batch(s1=s1, s2=s2, labels=[[1, 0, 0, 1]])
        if i % 2:           # half freed by close(), half by the garbage collector
            b.close()
            m.close()

    grew = measure(body)
    opts.close()
    # A tiny model alone holds ~50 KB of weights: a leak would be hundreds of MB.
    assert grew < SLACK, "RSS grew by %d bytes over %d cycles" % (grew, CYCLES)


def test_options_and_errors_do_not_leak(tmp_path):
    missing = str(tmp_path / "missing.safetensors")

    def body(i):
        with mosaic.Options({"modality.0.encoder": "tiny", "class_names": "a;b"},
                            classes=2) as o:
            o.to_json()
            c = o.copy()  # msc_options_copy: half closed, half freed by the collector
            if i % 2:
                c.close()
        try:
            mosaic.Model.load(missing)
        except mosaic.IOError:
            pass

    grew = measure(body)
    assert grew < SLACK, "RSS grew by %d bytes over %d cycles" % (grew, CYCLES)


def test_dataset_open_close_does_not_leak(synth_dir):
    def body(i):
        with mosaic.Dataset(synth_dir, split="all") as ds:
            if i % 100 == 0:
                ds.fill_batch([0]).close()

    cycles(body, 100)
    before = rss()
    cycles(body, 2000)  # an open reads the metadata and stats every file: fewer cycles
    grew = rss() - before
    assert grew < SLACK, "RSS grew by %d bytes" % grew
