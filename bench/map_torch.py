"""PyTorch sliding window over bench_scene's synthetic scene (bench/bench_scene.c), for
side-by-side rounds with msc_scene_write (bench/README.md, "Scenes").

The model is bench/seg_torch.py's U-Net (docs/segmentation.md), for S1 + S2 or S2 alone,
its encoders at patch size --tile; --load M.safetensors gives it the weights `bench_scene
--save M.safetensors` wrote. The inputs are the NumPy arrays `bench_scene --npy 1` writes
(DIR/s2_WxH.npy: uint16 12 x H x W; DIR/s1_WxH.npy: float32 2 x H x W; Debian's python3
has no GDAL or tifffile), normalised as bench_scene's model is ((x - 1500) / 1000 for S2,
(x + 12) / 5 for S1). Tiles of --tile pixels start every --stride pixels (0: the tile
size), the last of a row or column shifted inward to end at the scene's edge, as
docs/scenes.md, "Tiles, stride and blending", says; each output pixel comes from the one
tile whose centre is nearest (the centre rule of lib/model/scene.c, msci_scene_owned),
its class the arg max of the logits in eval mode under torch.no_grad(). One row of tiles
is read at a time with plain reads and mapped in batches of --batch tiles; the class map
goes to --out (uint8 H x W .npy, default DIR/map_torch_WxH.npy), which
`bench_scene --compare` compares with its own map. No missing-pixel handling (the
synthetic scene has none), segmentation only.

  /usr/bin/python3 bench/map_torch.py --dir DIR --size 4096 [--width W --height H]
      [--modalities s1s2|s2] [--encoder tiny|resnet18] [--tile 256] [--stride 0]
      [--batch 8] [--classes 2] [--threads 2] [--load M.safetensors] [--out MAP.npy]

Prints one JSON line like bench_scene's: map_s (reading, normalising, the model, the
output), km2_per_s (pixels x 100 m2 / 1e6 / map_s), tiles_per_s and peak_rss_mib.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seg_torch  # noqa: E402

NORM = {"s1": (-12.0, 5.0), "s2": (1500.0, 1000.0)}


class NpyRows:
    """Rows of a C x H x W .npy file by plain reads (a memory map's touched pages would
    count in the peak RSS, which libmosaic's reads do not keep)."""

    def __init__(self, path, bands, height, width):
        self.f = open(path, "rb")
        version = np.lib.format.read_magic(self.f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read(self.f)
        if shape != (bands, height, width) or fortran:
            sys.exit("map_torch: %s holds %s, not %d x %d x %d" % (path, shape, bands, height,
                                                                   width))
        self.base, self.dtype, self.shape = self.f.tell(), dtype, shape

    def rows(self, y0, n):
        c, h, w = self.shape
        out = np.empty((c, n, w), dtype=self.dtype)
        for b in range(c):
            self.f.seek(self.base + (b * h + y0) * w * self.dtype.itemsize)
            self.f.readinto(memoryview(out[b]).cast("B"))
        return out


def origins(size, tile, stride):
    """Tile origins along an axis: every stride, the last ending at the edge."""
    pos = list(range(0, size - tile + 1, stride))
    if pos[-1] != size - tile:
        pos.append(size - tile)
    return pos


def owned(pos, k, tile, size):
    """[lo, hi) of the pixels tile k provides along an axis (msci_scene_owned)."""
    lo = 0 if k == 0 else (pos[k - 1] + pos[k] + tile - 1) // 2 + 1
    hi = size if k == len(pos) - 1 else (pos[k] + pos[k + 1] + tile - 1) // 2 + 1
    return lo, hi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                  "bench_scene"))
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--height", type=int, default=0)
    ap.add_argument("--modalities", default="s1s2", choices=["s1s2", "s2"])
    ap.add_argument("--encoder", default="tiny", choices=["tiny", "resnet18"])
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--stride", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--load", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--torch-dir", default=seg_torch.DEFAULT_TORCH_DIR)
    a = ap.parse_args()
    seg_torch.load_ref(a.torch_dir)
    torch.set_num_threads(a.threads)
    W, H = a.width or a.size, a.height or a.size
    P, S = a.tile, a.stride or a.tile
    if W < P or H < P or S < 1:
        sys.exit("map_torch: the scene must be at least one tile; --stride >= 0")
    # S2 is the first modality of bench_scene's model when alone, S1 first otherwise
    bands = {"s1": 2, "s2": 12} if a.modalities == "s1s2" else {"s2": 12}
    model = seg_torch.UNet(a.encoder, a.classes, P, bands)
    if a.load:
        seg_torch.load_weights(model, a.load)
    model.eval()
    src = {m: NpyRows(os.path.join(a.dir, "%s_%dx%d.npy" % (m, W, H)), bands[m], H, W)
           for m in bands}
    out_path = a.out or os.path.join(a.dir, "map_torch_%dx%d.npy" % (W, H))
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.uint8, shape=(H, W))
    xs, ys = origins(W, P, S), origins(H, P, S)
    t0 = time.perf_counter()
    for ky, y0 in enumerate(ys):
        rows = {}
        for m, arr in src.items():  # one row of tiles, read and normalised
            mean, std = NORM[m]
            rows[m] = (arr.rows(y0, P).astype(np.float32) - mean) / std
        ylo, yhi = owned(ys, ky, P, H)
        for b0 in range(0, len(xs), a.batch):
            ks = range(b0, min(b0 + a.batch, len(xs)))
            x = {m: torch.from_numpy(np.stack([r[:, :, xs[k]:xs[k] + P] for k in ks]))
                 for m, r in rows.items()}
            with torch.no_grad():
                cls = model(x).argmax(1).to(torch.uint8).numpy()
            for i, k in enumerate(ks):
                xlo, xhi = owned(xs, k, P, W)
                out[ylo:yhi, xlo:xhi] = cls[i, ylo - y0:yhi - y0, xlo - xs[k]:xhi - xs[k]]
    out.flush()
    del out
    map_s = time.perf_counter() - t0
    km2 = W * H * 100.0 / 1e6
    print(json.dumps(dict(
        workload="scene-map", impl="pytorch", torch=torch.__version__, width=W, height=H,
        modalities=a.modalities, encoder=a.encoder, tile=P, stride=S, batch=a.batch,
        classes=a.classes, threads=a.threads, tiles=len(xs) * len(ys), map_s=round(map_s, 2),
        km2=round(km2, 1), km2_per_s=round(km2 / map_s, 3),
        tiles_per_s=round(len(xs) * len(ys) / map_s, 2), out=out_path,
        peak_rss_mib=round(seg_torch.peak_rss_mib(), 1))))


if __name__ == "__main__":
    main()
