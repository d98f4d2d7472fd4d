"""PyTorch transcription of bench_pimc (bench/bench_pimc.c): one PIMC training step, for
side-by-side rounds (bench/README.md, "PIMC").

Two encoders of the baseline's blocks (mosaic_ref.py in --torch-dir, default
../shared/bench seen from the repository root) with torchvision's names (bench/seg_torch.py's
Encoder): "rp" (3 bands, 32 px) with a CIFAR-style stem (3x3 stride 1, no max-pool) and
"s2" (10 bands, 32 px), global average pooling, a projection head per modality
(proj.<m>.fc1: Linear(d, d) -> ReLU -> proj.<m>.fc2: Linear(d, 128)), the symmetric
InfoNCE between the two projections (tau 0.1: preset pimc, docs/pimc.md), backward and the
baseline's AdamW (lr 1e-3, weight decay 1e-4 but on biases and BatchNorm). No
augmentation, as bench_pimc runs it.

  /usr/bin/python3 bench/pimc_torch.py [--encoder resnet18|tiny] [--batch 64]
      [--warmup 2] [--steps 5] [--threads 2] [--seed 1] [--load M.safetensors]

The inputs are bench_fill's (bench/bench_util.c: xorshift32, uniform [0, 1)) with seeds
--seed (rp) and --seed + 1 (s2), so with --load (the weights `bench_pimc --save` wrote)
the first step's loss, loss0, is bench_pimc's. Prints one JSON line like bench_pimc's:
the median rate of --steps timed steps after --warmup untimed ones, the fastest step's
rate, peak RSS.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seg_torch  # noqa: E402

MODS = {"rp": 3, "s2": 10}
SIZE = 32


def bench_fill(n, seed):
    """bench/bench_util.c's bench_fill(x, n, 0, 1, seed): one xorshift32 step a value."""
    s = seed or 1
    v = [0] * n
    for i in range(n):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        v[i] = s >> 8
    return np.asarray(v, dtype=np.float32) * np.float32(1.0 / 16777216.0)


class Head(nn.Module):
    def __init__(self, d, out=128):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, out)

    def forward(self, h):
        return self.fc2(torch.relu(self.fc1(h)))


class Pimc(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.enc = nn.ModuleDict()
        for m, c in MODS.items():
            cifar = dict(stem_kernel=3, stem_stride=1, maxpool=False) if m == "rp" else {}
            self.enc[m] = seg_torch.Encoder(encoder, c, **cifar)
        self.proj = nn.ModuleDict({m: Head(self.enc[m].out_channels[-1]) for m in MODS})

    def forward(self, x):
        return {m: self.proj[m](self.enc[m](x[m])[-1].mean((2, 3))) for m in MODS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="resnet18", choices=["tiny", "resnet18"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--load", default="")
    ap.add_argument("--torch-dir", default=seg_torch.DEFAULT_TORCH_DIR)
    a = ap.parse_args()
    ref = seg_torch.load_ref(a.torch_dir)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Pimc(a.encoder)
    if a.load:
        seg_torch.load_weights(model, a.load)
    x = {}
    for k, (m, c) in enumerate(MODS.items()):
        v = bench_fill(a.batch * c * SIZE * SIZE, a.seed + k)
        x[m] = torch.from_numpy(v.reshape(a.batch, c, SIZE, SIZE))
    opt = ref.make_optimizer(model, lr=1e-3, weight_decay=1e-4)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        z = model(x)
        loss = ref.infonce(z["rp"], z["s2"], 0.1)
        loss.backward()
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    loss0 = step()
    for _ in range(a.warmup - 1):
        step()
    warmup_s = time.perf_counter() - t0
    rates = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        rates.append(a.batch / (time.perf_counter() - t0))
    print(json.dumps(dict(
        workload="pimc-train-step", impl="pytorch", torch=torch.__version__,
        encoder=a.encoder, batch=a.batch, size=SIZE, threads=a.threads, warmup=a.warmup,
        steps=a.steps, warmup_s=round(warmup_s, 3),
        samples_per_s=round(statistics.median(rates), 2),
        best_samples_per_s=round(max(rates), 2), loss0=round(loss0, 6), loss=round(loss, 4),
        peak_rss_mib=round(seg_torch.peak_rss_mib(), 1))))


if __name__ == "__main__":
    main()
