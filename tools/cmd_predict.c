/*
 * cmd_predict.c — `mosaic predict`: per-class probabilities of every sample as TSV.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic predict --model MODEL --data DIR [--out FILE.tsv] [options]\n"
    "\n"
    "Writes the model's per-class probabilities for every sample of a split as TSV: a\n"
    "header 'id', the class names, 'labels'; then one row per sample with its id, C\n"
    "probabilities (%.9g: they read back as the exact float32 values) and its true\n"
    "labels (class names joined with ';', empty when it has none).\n"
    "\n"
    "Options:\n"
    "  --model PATH        the model file (required)\n"
    "  --data DIR          dataset root (required)\n"
    "  --out FILE          output file (default: standard output)\n"
    "  --format NAME       dataset format (default bigearthnet-v2)\n"
    "  --split NAME        all (default), train, validation, test\n"
    "  --threshold T       with --out: also print the predicted classes (score >= T; the\n"
    "                      arg max for a single-label model) of\n"
    "                      the first samples (default 0.5)\n"
    "  --modalities LIST   the dataset modalities to use, comma-separated (default: all);\n"
    "                      a fused output without the others (model.md)\n"
    "  --batch N           samples per call (default 64)\n"
    "  --precision f32|bf16|int8  compute precision (bf16: AVX-512/AMX CPUs; int8: AVX2\n"
    "                      CPUs, calibrated first; precision.md)\n"
    "  --calibrate N       int8: calibrate on N batches of the data (default 4)\n"
    "  --threads N, --backend NAME, --progress MODE, --config FILE, --set KEY=VALUE\n";

static const char *const allowed[] = {
    "model",   "data",    "out",      "format",     "split",     "threshold", "batch",
    "threads", "backend", "progress", "modalities", "precision", "calibrate", NULL};

typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(sbuf *b, const char *s) {
  put(b, s, strlen(s));
}

int cmd_predict(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "predict", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *model_path = cli_str(&ctx, "model", NULL), *out = cli_str(&ctx, "out", NULL);
  if (!model_path)
    rc = cli_usage("predict", "--model PATH is required");
  else if (!cli_has(&ctx, "data"))
    rc = cli_usage("predict", "--data DIR is required");
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  cli_progress pg;
  cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals();
  msc_model *model = NULL;
  msc_dataset *ds = NULL;
  float *probs = NULL;
  uint8_t *labels = NULL;
  rc = cli_load_model(&ctx, model_path, &model);
  if (rc == EXIT_OK)
    rc = cli_open_dataset(&ctx, ctx.opts, cli_str(&ctx, "split", "all"), 1, &ds);
  if (rc == EXIT_OK) rc = cli_calibrate(&ctx, model, cli_str(&ctx, "split", "all"));
  if (rc == EXIT_OK) rc = cli_infer_modalities(cli_str(&ctx, "modalities", NULL), ds);
  if (rc == EXIT_OK)
    rc = cli_infer(model, ds, cli_int(&ctx, "batch", 64), &pg, "predict", &probs, &labels, 0,
                   NULL, NULL);
  sbuf b = {0};
  int64_t n = ds ? msc_dataset_size(ds) : 0, c = msc_model_class_count(model);
  if (rc == EXIT_OK) {
    puts_(&b, "id");
    for (int64_t k = 0; k < c; ++k) {
      puts_(&b, "\t");
      puts_(&b, msc_model_class_name(model, k));
    }
    puts_(&b, "\tlabels\n");
    for (int64_t i = 0; i < n && rc == EXIT_OK; ++i) {
      char id[512], num[32];
      msc_status st = msc_dataset_sample_id(ds, i, id, sizeof id, NULL);
      if (st != MSC_OK && st != MSC_E_BUFFER_TOO_SMALL) rc = cli_lib_error(st, "sample id");
      puts_(&b, id);
      for (int64_t k = 0; k < c; ++k) {
        snprintf(num, sizeof num, "\t%.9g", (double)probs[i * c + k]);
        puts_(&b, num);
      }
      puts_(&b, "\t");
      int first = 1;
      for (int64_t k = 0; k < c; ++k)
        if (labels[i * c + k]) {
          if (!first) puts_(&b, ";");
          puts_(&b, msc_model_class_name(model, k));
          first = 0;
        }
      puts_(&b, "\n");
    }
    if (b.failed) rc = cli_error("out of memory");
  }
  if (rc == EXIT_OK) {
    if (out) {
      rc = cli_write_file(out, b.p, b.len);
      if (rc == EXIT_OK) {
        printf("probabilities of %lld samples × %lld classes written to %s\n", (long long)n,
               (long long)c, out);
        float t = (float)cli_float(&ctx, "threshold", 0.5);
        int single = cli_model_single_label(model);
        for (int64_t i = 0; i < n && i < 5; ++i) {
          char id[512];
          msc_dataset_sample_id(ds, i, id, sizeof id, NULL);
          printf("  %s:", id);
          if (single) { /* softmax rows: the predicted class is the arg max */
            int64_t best = 0;
            for (int64_t k = 1; k < c; ++k)
              if (probs[i * c + k] > probs[i * c + best]) best = k;
            printf(" %s (%.2f)\n", msc_model_class_name(model, best),
                   (double)probs[i * c + best]);
            continue;
          }
          int any = 0;
          for (int64_t k = 0; k < c; ++k)
            if (probs[i * c + k] >= t) {
              printf("%s %s (%.2f)", any ? ";" : "", msc_model_class_name(model, k),
                     (double)probs[i * c + k]);
              any = 1;
            }
          printf("%s\n", any ? "" : " (no class above the threshold)");
        }
      }
    } else if (fwrite(b.p, 1, b.len, stdout) != b.len) {
      rc = cli_error("writing to standard output failed");
    }
  }
  free(b.p);
  free(probs);
  free(labels);
  msc_dataset_free(ds);
  msc_model_free(model);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
