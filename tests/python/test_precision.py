"""The run-time option "precision" through the Python layer (docs/precision.md): a bf16
model embeds like the float32 one within bfloat16's error, an unknown value is refused,
and a CPU without AVX-512 (oneDNN's ONEDNN_MAX_CPU_ISA=AVX2, in a child process) refuses
bf16 with mosaic.UnsupportedError."""

import os
import subprocess
import sys

import pytest

from conftest import TINY, random_inputs

import mosaic

np = pytest.importorskip("numpy")


def _bf16_model(**extra):
    try:
        return mosaic.Model.create(dict(TINY, **extra), precision="bf16")
    except mosaic.UnsupportedError as e:  # a CPU without AVX-512: the refusal is the point
        pytest.skip("bf16 not available on this CPU: %s" % e)


def test_bf16_embedding_tracks_f32():
    s1, s2, _ = random_inputs(4)
    with mosaic.Model.create(TINY) as f32, _bf16_model() as bf16:
        a = f32.embed(s1=s1, s2=s2)
        b = bf16.embed(s1=s1, s2=s2)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    err = np.linalg.norm(b - a) / np.linalg.norm(a)
    # bfloat16: 2^-9 per rounding, ~1e-2 after a network's worth (tests/test_precision.c).
    assert 1e-5 < err < 3e-2, err


def test_bf16_load_and_train(tmp_path):
    path = str(tmp_path / "tiny.safetensors")
    with mosaic.Model.create(TINY) as m:
        m.save(path)
    s1, s2, y = random_inputs(8, seed=1)
    try:
        m = mosaic.Model.load(path, precision="bf16", threads=1)
    except mosaic.UnsupportedError as e:
        pytest.skip("bf16 not available on this CPU: %s" % e)
    with m:
        r = m.train_step(s1=s1, s2=s2, labels=y)
        assert np.isfinite(r.loss)


def test_unknown_precision_refused():
    with pytest.raises(mosaic.InvalidArgumentError, match="precision"):
        mosaic.Model.create(TINY, precision="fp16")


def test_refused_without_avx512():
    code = ("import mosaic, sys\n"
            "from conftest import TINY\n"
            "try:\n"
            "    mosaic.Model.create(TINY, precision='bf16')\n"
            "except mosaic.UnsupportedError as e:\n"
            "    print('UNSUPPORTED', e)\n"
            "    sys.exit(0)\n"
            "sys.exit(1)\n")
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "AVX-512" in p.stdout


def _int8_model(**extra):
    try:
        return mosaic.Model.create(dict(TINY, **extra), precision="int8")
    except mosaic.UnsupportedError as e:  # a CPU below AVX2
        pytest.skip("int8 not available on this CPU: %s" % e)


def test_int8_calibrate_and_embed():
    s1, s2, y = random_inputs(4)
    with mosaic.Model.create(TINY) as f32, _int8_model() as q:
        with pytest.raises(mosaic.InvalidArgumentError, match="calibrate first"):
            q.embed(s1=s1, s2=s2)
        q.calibrate(s1=s1, s2=s2)
        a = f32.embed(s1=s1, s2=s2)
        b = q.embed(s1=s1, s2=s2)
        assert b.dtype == np.float32 and a.shape == b.shape
        err = np.linalg.norm(b - a) / np.linalg.norm(a)
        # 8-bit inputs and weights, a few % after a network (tests/test_int8.c).
        assert 1e-5 < err < 0.1, err
        with pytest.raises(mosaic.UnsupportedError, match="int8"):
            q.train_step(s1=s1, s2=s2, labels=y)
        q.calibrate()  # forgets: uncalibrated again
        with pytest.raises(mosaic.InvalidArgumentError, match="calibrate first"):
            q.predict(s1=s1, s2=s2)
        with pytest.raises(mosaic.InvalidArgumentError, match="int8"):
            f32.calibrate(s1=s1, s2=s2)
