"""PyTorch transcription of bench_seg (bench/bench_seg.c): the same U-Net segmentation
model, training step and inference, for side-by-side rounds (bench/README.md,
"Segmentation").

The encoders and AdamW are the baseline's (mosaic_ref.py in --torch-dir, default
../shared/bench seen from the repository root, as for bench/torch_rounds.py); the decoder
is docs/segmentation.md, "The decoder": the deepest levels of the S1 and S2 encoders
concatenated, then per shallower level bilinear upsampling to its exact size
(align_corners=False), the skips concatenated, conv 3x3 -> BN -> ReLU twice (no bias), a
1x1 head with bias and, where level 0 is smaller than the patch (ResNet-18's stem stride),
bilinear upsampling to the patch size. Tensor names are libmosaic's (enc.<m>.<torchvision
name>, dec.<level>.conv<k>/bn<k>, seg_head.conv), so --check can load its weights.

  /usr/bin/python3 bench/seg_torch.py [--encoder tiny|resnet18] [--mode train|infer]
      [--batch 16] [--size 128] [--classes 2] [--iters 3] [--threads 2]
  /usr/bin/python3 bench/seg_torch.py --encoder tiny --check DIR
      (DIR from `bench_seg --encoder tiny --batch N --dump DIR`)

train times --iters steps (softmax cross-entropy per pixel, backward, AdamW) at --batch
after one untimed step; infer times --iters eval-mode class maps at --batch. Prints one
JSON line like bench_seg's (samples_per_s is the median; peak_rss_mib the process's).
--check loads DIR/init.safetensors, runs DIR/s1.f32 and DIR/s2.f32 in eval mode and
prints the largest difference from DIR/probs.f32 and the first training step's loss on
the batch bench_seg trains on (mask (i + 3y + 7x) mod C), to compare with its loss0.
"""
import argparse
import json
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_DIR = os.path.join(HERE, "..", "..", "shared", "bench")
BANDS = {"s1": 2, "s2": 12}
ref = None  # mosaic_ref, imported from the baseline's folder by load_ref


def load_ref(torch_dir=DEFAULT_TORCH_DIR):
    """Imports the baseline's mosaic_ref.py from torch_dir (its blocks and AdamW)."""
    global ref
    if ref is None:
        sys.path.insert(0, torch_dir)
        import mosaic_ref
        ref = mosaic_ref
    return ref


class Encoder(nn.Module):
    """The baseline's ResNet with torchvision's names, returning its levels (docs/
    segmentation.md): the stem's output before a max-pool, then every stage's output."""

    def __init__(self, name, in_ch, **overrides):
        super().__init__()
        cfg = dict(widths=(64, 128, 256, 512), stem_width=64, stem_kernel=7, stem_stride=2,
                   maxpool=True)
        cfg.update(ref.ENCODERS[name])
        cfg.update(overrides)  # (e.g. a CIFAR-style stem: bench/pimc_torch.py)
        block = {"basic": ref.BasicBlock, "bottleneck": ref.Bottleneck}[cfg["block"]]
        k, sw = cfg["stem_kernel"], cfg["stem_width"]
        self.conv1 = nn.Conv2d(in_ch, sw, k, cfg["stem_stride"], k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(sw)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if cfg["maxpool"] else None
        self.widths = ([sw] if cfg["maxpool"] else []) + list(cfg["widths"])
        self.names = (["stem"] if cfg["maxpool"] else []) + [
            "layer%d" % (s + 1) for s in range(len(cfg["widths"]))]
        self.stem_stride = cfg["stem_stride"]
        cin, self.stages = sw, []
        for s, (w, n) in enumerate(zip(cfg["widths"], cfg["layers"])):
            blocks = []
            for b in range(n):
                blocks.append(block(cin, w, 2 if (s > 0 and b == 0) else 1))
                cin = w * block.expansion
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
            self.stages.append("layer%d" % (s + 1))
        self.out_channels = ([sw] if cfg["maxpool"] else []) + [
            w * block.expansion for w in cfg["widths"]]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        levels = []
        if self.maxpool is not None:
            levels.append(x)
            x = self.maxpool(x)
        for s in self.stages:
            x = getattr(self, s)(x)
            levels.append(x)
        return levels


def conv_bn_relu(cin, cout):
    c = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(c.weight, mode="fan_out", nonlinearity="relu")
    return c, nn.BatchNorm2d(cout)


class UNet(nn.Module):
    """bands: {modality: bands} in model order (the first is modality d0)."""

    def __init__(self, encoder, classes, size, bands=None):
        super().__init__()
        self.size = size
        self.bands = dict(bands or BANDS)
        self.enc = nn.ModuleDict({m: Encoder(encoder, c) for m, c in self.bands.items()})
        e = self.enc[next(iter(self.bands))]
        nl = len(e.names)
        self.dec = nn.ModuleDict()
        ch = sum(self.enc[m].out_channels[-1] for m in self.bands)  # the deepest levels
        for l in range(nl - 2, -1, -1):
            cin = ch + sum(self.enc[m].out_channels[l] for m in self.bands)
            w = e.widths[l]
            level = nn.Module()
            level.conv1, level.bn1 = conv_bn_relu(cin, w)
            level.conv2, level.bn2 = conv_bn_relu(w, w)
            self.dec[e.names[l]] = level
            ch = w
        self.seg_head = nn.Module()
        self.seg_head.conv = nn.Conv2d(ch, classes, 1, bias=True)
        bound = 1 / ch ** 0.5  # a linear layer's bias (docs/model.md, "Initialisation")
        nn.init.uniform_(self.seg_head.conv.bias, -bound, bound)

    def forward(self, x):
        lv = {m: self.enc[m](x[m]) for m in self.bands}
        e = self.enc[next(iter(self.bands))]
        h = torch.cat([lv[m][-1] for m in self.bands], 1)
        for l in range(len(e.names) - 2, -1, -1):
            skip = [lv[m][l] for m in self.bands]
            h = F.interpolate(h, size=skip[0].shape[-2:], mode="bilinear", align_corners=False)
            h = torch.cat([h] + skip, 1)
            d = self.dec[e.names[l]]
            h = F.relu(d.bn1(d.conv1(h)))
            h = F.relu(d.bn2(d.conv2(h)))
        y = self.seg_head.conv(h)
        if y.shape[-1] != self.size:
            y = F.interpolate(y, size=(self.size, self.size), mode="bilinear",
                              align_corners=False)
        return y


def load_safetensors(path):
    """The float32 tensors of a safetensors file, by name."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(v["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


def load_weights(model, path):
    """Loads libmosaic's tensors of path into model (torchvision's "downsample" is the
    baseline's "down"; tensors of the file the model lacks are left out)."""
    w = load_safetensors(path)
    names = {k: k.replace(".down.", ".downsample.") for k in model.state_dict()
             if not k.endswith("num_batches_tracked")}
    missing = [f for f in names.values() if f not in w]
    if missing:
        sys.exit("%s lacks %s" % (path, ", ".join(missing[:5])))
    model.load_state_dict({k: w[f] for k, f in names.items()}, strict=False)


def mask_of(n, size, classes):
    i, y, x = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), indexing="ij")
    return torch.from_numpy(((i + 3 * y + 7 * x) % classes).astype(np.int64))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="resnet18", choices=["tiny", "resnet18"])
    ap.add_argument("--mode", default="train", choices=["train", "infer"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", default="")
    ap.add_argument("--torch-dir", default=DEFAULT_TORCH_DIR)
    a = ap.parse_args()
    load_ref(a.torch_dir)
    torch.set_num_threads(a.threads)
    model = UNet(a.encoder, a.classes, a.size)
    params = sum(p.numel() for p in model.parameters())

    if a.check:
        load_weights(model, os.path.join(a.check, "init.safetensors"))
        x = {}
        for m, c in BANDS.items():
            v = np.fromfile(os.path.join(a.check, m + ".f32"), dtype="<f4")
            x[m] = torch.from_numpy(v.reshape(-1, c, a.size, a.size).copy())
        n = x["s1"].shape[0]
        probs = np.fromfile(os.path.join(a.check, "probs.f32"), dtype="<f4")
        model.eval()
        with torch.no_grad():
            p = F.softmax(model(x), 1).numpy().reshape(-1)
        model.train()
        loss0 = F.cross_entropy(model(x), mask_of(n, a.size, a.classes)).item()
        print(json.dumps(dict(check=a.check, encoder=a.encoder, batch=n, unet_parameters=params,
                              max_abs_diff=float(np.abs(p - probs).max()) if p.size == probs.size
                              else None, loss0=round(loss0, 6))))
        return

    gen = torch.Generator().manual_seed(31)
    n = a.batch
    x = {m: torch.rand(n, c, a.size, a.size, generator=gen) * 2 - 1 for m, c in BANDS.items()}
    rates = []
    if a.mode == "train":
        target = mask_of(n, a.size, a.classes)
        opt = ref.make_optimizer(model, lr=1e-3, weight_decay=1e-4)
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), target)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                return model(x).argmax(1)

    t0 = time.perf_counter()
    first = step()
    warmup = time.perf_counter() - t0
    for _ in range(a.iters):
        t0 = time.perf_counter()
        last = step()
        rates.append(n / (time.perf_counter() - t0))
    row = dict(workload="seg-train-step" if a.mode == "train" else "seg-infer", impl="pytorch",
               torch=torch.__version__, encoder=a.encoder, batch=n, size=a.size, classes=a.classes,
               threads=a.threads, unet_parameters=params, iters=a.iters, warmup_s=round(warmup, 3),
               samples_per_s=round(statistics.median(rates), 2), peak_rss_mib=round(peak_rss_mib(), 1))
    if a.mode == "train":
        row.update(loss0=round(first, 6), loss=round(last, 4))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
