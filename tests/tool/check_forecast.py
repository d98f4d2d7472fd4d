"""check_forecast.py — NumPy checks of tests/tool/forecast.sh, from the series the library
gives (msc_dataset_series through the Python bindings), computed here independently of
the library's indices, plots and forecasting code:

  persistence DATA JSON K [--set KEY=VALUE]...   persistence MAE and RMSE of the JSON of
      `mosaic eval --protocol forecast` equal NDVI's last finite history value held;
  png DATA SPLIT DIR UP [--set ...] --index I...  the rplot files of samples I: PNG
      signature, IHDR size S·UP, and pixels = round(255 (R − min) / (max − min)) of the
      continuous NDVI/EVI/SAVI plots R_ij = |x_i − x_j| of the history dates;
  panel FILE WIDTH HEIGHT                        an 8-bit RGB PNG of that size.
"""
import json
import math
import struct
import sys
import zlib

import numpy as np

import mosaic


def options(args):
    opts, rest = {}, []
    it = iter(args)
    for a in it:
        if a == "--set":
            k, v = next(it).split("=", 1)
            opts[k] = int(v) if v.lstrip("-").isdigit() else v
        else:
            rest.append(a)
    return opts, rest


def reflectance(series, c):
    return series[:, c].astype(np.float64) / 10000.0  # scale 10000, offset 0


def index_series(series, kind):
    b2, b4, b8 = (reflectance(series, c) for c in (0, 2, 6))
    with np.errstate(all="ignore"):
        if kind == "ndvi":
            num, den = b8 - b4, b8 + b4
        elif kind == "evi":
            num, den = 2.5 * (b8 - b4), b8 + 6 * b4 - 7.5 * b2 + 1
        else:  # savi, L = 0.5
            num, den = 1.5 * (b8 - b4), b8 + b4 + 0.5
        v = num / den
    v[~np.isfinite(v) | (np.abs(den) < 1e-12)] = np.nan
    return v


def persistence(data, path, k, opts):
    k = int(k)
    r = json.load(open(path))
    opts = dict(opts, **{"data.split": "test"})
    errs = []
    with mosaic.Dataset(data, "pastis", opts) as ds:
        for i in range(len(ds)):
            series, _ = ds.series(i)
            v = index_series(series, "ndvi")
            hist = v[:-k]
            fin = np.flatnonzero(np.isfinite(hist))
            if not fin.size:
                continue
            last = hist[fin[-1]]
            for y in v[-k:]:
                if np.isfinite(y):
                    errs.append(last - y)
    errs = np.array(errs)
    mae, rmse = np.abs(errs).mean(), math.sqrt((errs ** 2).mean())
    got = r["methods"]["persistence"]
    print("persistence: NumPy MAE %.6f RMSE %.6f, tool %.6f %.6f (targets %d / %d); "
          "model MAE %.6f RMSE %.6f" % (mae, rmse, got["mae"], got["rmse"], errs.size,
                                         r["targets"], r["methods"]["model"]["mae"], r["methods"]["model"]["rmse"]))
    ok = errs.size == r["targets"] and abs(mae - got["mae"]) < 1e-5 and \
        abs(rmse - got["rmse"]) < 1e-5
    ok = ok and all(math.isfinite(x) for x in (r["methods"]["model"]["mae"], r["methods"]["model"]["rmse"]))
    return ok


def read_png(path):
    """(width, height, colour type, rows as a uint8 array)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "%s: no PNG signature" % path
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) == crc, "%s: bad CRC in %s" % (path, kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    assert depth == 8
    bpp = 1 if ctype == 0 else 3
    raw = zlib.decompress(idat)
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)],
                             dtype=np.uint8).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    return w, h, ctype, out


def png(data, split, out_dir, up, args):
    opts, rest = options(args)
    picks = [int(rest[i + 1]) for i, a in enumerate(rest) if a == "--index"]
    up = int(up)
    hist = int(opts.get("data.sits.history", 0))
    ok = True
    with mosaic.Dataset(data, "pastis", dict(opts, **{"data.split": split})) as ds:
        for i in picks:
            series, _ = ds.series(i)
            series = series[:series.shape[0] - hist]
            s = series.shape[0]
            sid = ds.sample_id(i).replace(":", "_")
            for kind in ("ndvi", "evi", "savi"):
                x = index_series(series, kind)
                t = np.arange(s)
                fin = np.isfinite(x)
                x = np.interp(t, t[fin], x[fin])
                r = np.abs(x[:, None] - x[None, :])
                lo, hi = r.min(), r.max()
                want = np.floor(255 * (r - lo) / (hi - lo) + 0.5) if hi > lo else 0 * r
                w, h, ctype, img = read_png("%s/%s_%s.png" % (out_dir, sid, kind))
                if (w, h, ctype) != (s * up, s * up, 0):
                    print("%s %s: %dx%d type %d, expected %dx%d grey" % (sid, kind, w, h, ctype,
                                                                      s * up, s * up))
                    ok = False
                    continue
                # Each plot pixel is an up × up block.
                blocks = img.reshape(s, up, s, up)
                same = (blocks == blocks[:, :1, :, :1]).all()
                diff = np.abs(blocks[:, 0, :, 0] - want)
                print("%s %s: %dx%d, max |png - NumPy| %d, pixels off by one %d" %
                      (sid, kind, w, h, diff.max(), (diff == 1).sum()))
                # float32 plots in the library against float64 here: a value on a rounding
                # boundary may land one grey level away.
                ok = ok and same and diff.max() <= 1 and (diff == 1).sum() <= s * s // 50 + 2
    return ok


def panel(path, width, height):
    w, h, ctype, _ = read_png(path.strip())
    print("panel: %dx%d colour type %d" % (w, h, ctype))
    return (w, h, ctype) == (int(width), int(height), 2)


def main(argv):
    mode = argv[1]
    if mode == "persistence":
        opts, _ = options(argv[5:])
        ok = persistence(argv[2], argv[3], argv[4], opts)
    elif mode == "png":
        ok = png(argv[2], argv[3], argv[4], argv[5], argv[6:])
    else:
        ok = panel(argv[2], argv[3], argv[4])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
