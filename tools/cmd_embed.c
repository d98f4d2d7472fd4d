/*
 * cmd_embed.c — `mosaic embed`: embeddings of a dataset's samples as a NumPy .npy file
 * (format 1.0, '<f4', shape (n, d), C order) plus their ids, one per line, in a side
 * file, so that row i of the array belongs to line i of the ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic embed --model MODEL --data DIR --out FILE.npy [options]\n"
    "\n"
    "Computes an embedding per sample (inference mode) and writes them as a float32\n"
    "NumPy array of shape (samples, size) to FILE.npy, with the sample ids in\n"
    "FILE.ids.txt (line i = row i) and the configuration in FILE.config.json.\n"
    "\n"
    "Options:\n"
    "  --model PATH        the model file (required)\n"
    "  --data DIR          dataset root (required)\n"
    "  --out FILE          the .npy file to write (required)\n"
    "  --format NAME       dataset format (default bigearthnet-v2)\n"
    "  --split NAME        all (default), train, validation, test\n"
    "  --which NAME        fused (default: the concatenated encoder features h_f),\n"
    "                      fused_projection (unit-norm fused projection),\n"
    "                      NAME (one encoder's features, e.g. s2), NAME_projection\n"
    "                      (its projection); the kinds of Python's Model.embed\n"
    "  --modalities LIST   the dataset modalities to use, comma-separated (default: all);\n"
    "                      a fused output without the others (model.md)\n"
    "  --batch N           samples per call (default 64)\n"
    "  --precision f32|bf16|int8  compute precision (bf16: AVX-512/AMX CPUs; int8: AVX2\n"
    "                      CPUs, calibrated first; precision.md)\n"
    "  --calibrate N       int8: calibrate on N batches of the data (default 4)\n"
    "  --threads N, --backend NAME, --progress MODE, --config FILE, --set KEY=VALUE\n";

static const char *const allowed[] = {
    "model",   "data",    "out",      "format",     "split",     "which",     "batch",
    "threads", "backend", "progress", "modalities", "precision", "calibrate", NULL};

/* The .npy 1.0 file: magic, version, header length (LE u16), a Python dict literal padded
 * with spaces to a multiple of 64 bytes and ended by '\n', then the data. */
static int write_npy(const char *path, const float *x, int64_t n, int64_t d) {
  char dict[160];
  int len = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)n, (long long)d);
  size_t head = 10 + (size_t)len + 1;
  size_t padded = (head + 63) / 64 * 64;
  size_t hlen = padded - 10;
  size_t bytes = (size_t)(n * d) * 4;
  unsigned char *buf = malloc(padded + bytes);
  if (!buf) return cli_error("out of memory");
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hlen & 0xff);
  buf[9] = (unsigned char)(hlen >> 8);
  memcpy(buf + 10, dict, (size_t)len);
  memset(buf + 10 + len, ' ', hlen - (size_t)len - 1);
  buf[padded - 1] = '\n';
  /* Little-endian float32, whatever the host's byte order. */
  for (int64_t i = 0; i < n * d; ++i) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    unsigned char *p = buf + padded + (size_t)i * 4;
    p[0] = (unsigned char)u, p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16), p[3] = (unsigned char)(u >> 24);
  }
  int rc = cli_write_file(path, buf, padded + bytes);
  free(buf);
  return rc;
}

static int write_ids(const char *path, const msc_dataset *ds) {
  int64_t n = msc_dataset_size(ds);
  size_t cap = 4096, len = 0;
  char *text = malloc(cap);
  if (!text) return cli_error("out of memory");
  for (int64_t i = 0; i < n; ++i) {
    size_t idlen = 0;
    msc_dataset_sample_id(ds, i, NULL, 0, &idlen);
    if (len + idlen + 2 > cap) {
      while (len + idlen + 2 > cap) cap *= 2;
      char *t = realloc(text, cap);
      if (!t) {
        free(text);
        return cli_error("out of memory");
      }
      text = t;
    }
    msc_status st = msc_dataset_sample_id(ds, i, text + len, idlen + 1, NULL);
    if (st != MSC_OK) {
      free(text);
      return cli_lib_error(st, "sample id %lld", (long long)i);
    }
    len += idlen;
    text[len++] = '\n';
  }
  int rc = cli_write_file(path, text, len);
  free(text);
  return rc;
}

/* The first rows, so that a run shows what it computed: id, then the first values. */
static void print_preview(const msc_dataset *ds, const float *emb, int64_t n, int64_t d) {
  enum { ROWS = 5, COLS = 6 };
  for (int64_t i = 0; i < n && i < ROWS; ++i) {
    char id[128];
    if (msc_dataset_sample_id(ds, i, id, sizeof id, NULL) != MSC_OK)
      snprintf(id, sizeof id, "#%lld", (long long)i);
    printf("  %-52s", id);
    for (int64_t k = 0; k < d && k < COLS; ++k) printf(" %8.4f", emb[i * d + k]);
    printf("%s\n", d > COLS ? "  ..." : "");
  }
  if (n > ROWS) printf("  ... (%lld more)\n", (long long)(n - ROWS));
}

int cmd_embed(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "embed", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *model_path = cli_str(&ctx, "model", NULL), *out = cli_str(&ctx, "out", NULL);
  if (!model_path)
    rc = cli_usage("embed", "--model PATH is required");
  else if (!cli_has(&ctx, "data"))
    rc = cli_usage("embed", "--data DIR is required");
  else if (!out)
    rc = cli_usage("embed", "--out FILE.npy is required");
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *split = cli_str(&ctx, "split", "all");
  char *ids_path = NULL, *cfg_path = NULL;
  size_t ol = strlen(out);
  if (ol > 4 && strcmp(out + ol - 4, ".npy") == 0) {
    ids_path = cli_sibling(out, ".ids.txt");
    cfg_path = cli_sibling(out, ".config.json");
  } else { /* no .npy extension: append the suffixes */
    ids_path = malloc(ol + 16), cfg_path = malloc(ol + 16);
    if (ids_path) snprintf(ids_path, ol + 16, "%s.ids.txt", out);
    if (cfg_path) snprintf(cfg_path, ol + 16, "%s.config.json", out);
  }
  cli_progress pg;
  cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals();
  msc_model *model = NULL;
  msc_dataset *ds = NULL;
  float *emb = NULL;
  int64_t d = 0;
  int32_t which = MSC_EMBED_FUSED;
  if (!ids_path || !cfg_path)
    rc = cli_error("out of memory");
  else
    rc = cli_load_model(&ctx, model_path, &model);
  if (rc == EXIT_OK) rc = cli_parse_which(model, cli_str(&ctx, "which", "fused"), &which);
  if (rc == EXIT_OK) rc = cli_open_dataset(&ctx, ctx.opts, split, 1, &ds);
  if (rc == EXIT_OK) rc = cli_calibrate(&ctx, model, split);
  if (rc == EXIT_OK) rc = cli_infer_modalities(cli_str(&ctx, "modalities", NULL), ds);
  if (rc == EXIT_OK)
    rc = cli_infer(model, ds, cli_int(&ctx, "batch", 64), &pg, "embed", NULL, NULL, which, &emb,
                   &d);
  int64_t n = ds ? msc_dataset_size(ds) : 0;
  if (rc == EXIT_OK) rc = write_npy(out, emb, n, d);
  if (rc == EXIT_OK) rc = write_ids(ids_path, ds);
  if (rc == EXIT_OK) rc = cli_write_config(&ctx, ctx.opts, cfg_path);
  if (rc == EXIT_OK) {
    printf("%lld embeddings of size %lld (%s) written to %s; ids in %s\n", (long long)n,
           (long long)d, cli_str(&ctx, "which", "fused"), out, ids_path);
    print_preview(ds, emb, n, d);
  }
  free(emb);
  free(ids_path);
  free(cfg_path);
  msc_dataset_free(ds);
  msc_model_free(model);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
