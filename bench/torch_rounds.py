"""Interleaved rounds of libmosaic's bench_embed / bench_train and the PyTorch baseline.

Runs, per workload and round, libmosaic then PyTorch (each in its own process, so peak RSS
is that measurement's own) and prints one JSON line per round with both rates, both peak
RSS figures and their ratios, then the median ratios (docs/performance.md, "How to
compare"). The PyTorch side is the workspace's baseline script bench_torch.py
(--torch-dir, default ../shared/bench seen from the repository root), run with 2 threads
and OpenBLAS's libblas first when --openblas names its folder.

  /usr/bin/python3 bench/torch_rounds.py BUILD_DIR [--rounds 3]
      [--work embed:resnet18,train:resnet18,embed:tiny,train:tiny]
      [--extra "--precision bf16"] [--openblas DIR] [--no-torch]

embed runs at batch 64 (5 timed calls), train at batch 32 (3 timed steps), 2 threads,
OMP_WAIT_POLICY=PASSIVE; --extra is appended to libmosaic's command line only (PyTorch
always runs float32). The segmentation workloads seg-train:ENCODER (batch 16) and
seg-infer:ENCODER (batch 32), 3 timed calls each, compare bench_seg with its PyTorch
transcription bench/seg_torch.py (the U-Net of docs/segmentation.md); pimc:ENCODER
compares bench_pimc (batch 64, 2 warm-up and 5 timed steps) with bench/pimc_torch.py.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--work", default="embed:resnet18,train:resnet18,embed:tiny,train:tiny")
ap.add_argument("--extra", default="")
ap.add_argument("--torch-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
ap.add_argument("--openblas", default="")
ap.add_argument("--no-torch", action="store_true")
a = ap.parse_args()
env = dict(os.environ, OMP_NUM_THREADS="2", OMP_WAIT_POLICY="PASSIVE")
if a.openblas:
    env["LD_LIBRARY_PATH"] = a.openblas


def run(cmd):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


for w in a.work.split(","):
    mode, enc = w.split(":")
    ratios = []
    for r in range(a.rounds):
        load = os.getloadavg()[0]
        if mode == "embed":
            cmd = ["bench_embed", "--batch", "64", "--iters", "5"]
        elif mode == "train":
            cmd = ["bench_train", "--batch", "32", "--iters", "3"]
        elif mode in ("seg-train", "seg-infer"):
            seg = mode[4:]
            cmd = ["bench_seg", "--mode", seg, "--batch", "16", "--infer-batch", "32",
                   "--iters", "3"]
        elif mode == "pimc":
            cmd = ["bench_pimc", "--batch", "64", "--warmup", "2", "--steps", "5"]
        else:
            sys.exit("torch_rounds: unknown workload %s" % w)
        cmd[0] = os.path.join(a.build, "bench", cmd[0])
        lib = run(cmd + ["--encoder", enc, "--threads", "2"] + a.extra.split())
        row = dict(work=w, round=r + 1, load1=round(load, 2), lib_sps=lib["samples_per_s"],
                   lib_rss=lib["peak_rss_mib"])
        if not a.no_torch:
            if mode == "pimc":
                tor = run([sys.executable, os.path.join(HERE, "pimc_torch.py"), "--torch-dir",
                           a.torch_dir, "--encoder", enc, "--batch", "64", "--warmup", "2",
                           "--steps", "5", "--threads", "2"])
            elif mode.startswith("seg-"):
                tor = run([sys.executable, os.path.join(HERE, "seg_torch.py"), "--torch-dir",
                           a.torch_dir, "--encoder", enc, "--mode", seg, "--batch",
                           "16" if seg == "train" else "32", "--iters", "3", "--threads", "2"])
            else:
                tor = run([sys.executable, os.path.join(a.torch_dir, "bench_torch.py"),
                           "--child", "model", enc, "infer" if mode == "embed" else "train"])
            q = (lib["samples_per_s"] / tor["samples_per_s"],
                 lib["peak_rss_mib"] / tor["peak_rss_mib"])
            ratios.append(q)
            row.update(torch_sps=round(tor["samples_per_s"], 2),
                       torch_rss=round(tor["peak_rss_mib"], 1), speed_ratio=round(q[0], 3),
                       rss_ratio=round(q[1], 3))
        print(json.dumps(row), flush=True)
    if ratios:
        print(json.dumps(dict(work=w, extra=a.extra,
                              median_speed_ratio=round(statistics.median(x for x, _ in ratios), 3),
                              median_rss_ratio=round(statistics.median(y for _, y in ratios), 3))),
              flush=True)
