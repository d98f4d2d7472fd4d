/*
 * cmd_synth.c — `mosaic synth DIR`: a synthetic dataset in a real on-disk format
 * (bigearthnet-v2, pastis or sen1floods11).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic synth DIR [--n N] [--seed S] [--format NAME]\n"
    "\n"
    "Writes a synthetic dataset of N patches to DIR in the layout of a real format\n"
    "(bigearthnet-v2: 12 Sentinel-2 bands at their native sizes, Sentinel-1 VV/VH,\n"
    "metadata.tsv with train/validation/test splits of about 70/15/15 %), whose labels\n"
    "can be learnt from the pixels: for tests, demos and benchmarks. DIR must be empty,\n"
    "missing or hold a dataset already. The same seed and N give identical files.\n"
    "\n"
    "pastis: satellite image time series in the PASTIS layout (DATA_S2/S2_<id>.npy int16\n"
    "T x 10 x 32 x 32 with T = 20..28 dates, ANNOTATIONS/TARGET_<id>.npy,\n"
    "INSTANCE_ANNOTATIONS/INSTANCES_<id>.npy, metadata.geojson with dates-S2): crop\n"
    "parcels whose NDVI follows a per-class seasonal curve, with noise and cloudy dates.\n"
    "\n"
    "sen1floods11: hand-labelled flood chips (S1Hand VV/VH float32 dB, S2Hand 13 bands\n"
    "uint16, LabelHand int16 -1/0/1, flood_{train,valid,test}_data.csv): rivers and\n"
    "flooded areas dark in S1 and with a high NDWI in S2, clouds, NaN S1 pixels; chips\n"
    "of 512 x 512 pixels (--set synth.size=64 for smaller ones).\n"
    "\n"
    "Options:\n"
    "  --n N               number of patches (default 100)\n"
    "  --seed S            seed (default 42)\n"
    "  --format NAME       bigearthnet-v2 (default), pastis or sen1floods11\n"
    "  --config FILE, --set KEY=VALUE\n";

static const char *const allowed[] = {"n", "seed", "format", "data", NULL};

int cmd_synth(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "synth", help, allowed, 1, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *dir = json_array_size(ctx.positional)
                        ? json_string_value(json_array_get(ctx.positional, 0))
                        : cli_str(&ctx, "data", NULL);
  if (!dir) {
    rc = cli_usage("synth", "which directory? (mosaic synth DIR)");
    cli_ctx_free(&ctx);
    return rc;
  }
  int64_t n = cli_int(&ctx, "n", 100);
  int64_t seed = cli_opt_int(ctx.opts, "seed", 42);
  const char *format = cli_str(&ctx, "format", "bigearthnet-v2");
  double t0 = cli_now();
  msc_status st = msc_synth_write(dir, format, n, (uint64_t)seed, ctx.opts);
  if (st == MSC_E_UNSUPPORTED && strstr(msc_last_error(), "is not supported (")) {
    /* A format synth cannot write is bad usage; the message quotes the ones it can. */
    cli_suggest sg;
    cli_suggest_init(&sg, format);
    const char *p = strstr(msc_last_error(), "is not supported (");
    while (p && (p = strchr(p, '"')) != NULL) {
      const char *end = strchr(p + 1, '"');
      if (!end) break;
      cli_suggest_addn(&sg, p + 1, (size_t)(end - p - 1));
      p = end + 1;
    }
    rc = cli_usage("synth", "%s%s", msc_last_error(), cli_suggest_text(&sg, NULL));
  } else if (st != MSC_OK) {
    rc = cli_lib_error(st, "cannot write the synthetic dataset %s", dir);
  } else {
    char dur[32];
    cli_format_duration(cli_now() - t0, dur, sizeof dur);
    printf("%lld synthetic %s patches (seed %lld) written to %s in %s\n", (long long)n, format,
           (long long)seed, dir, dur);
    rc = cli_finish_output();
  }
  cli_ctx_free(&ctx);
  return rc;
}
