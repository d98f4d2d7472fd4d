/*
 * data.c — datasets and models for the commands: opening a split, deriving a model's
 * configuration from a dataset (modalities, classes, normalisation), loading a model,
 * reading a model file's metadata, and running inference over a dataset in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* After msc_dataset_open refused format as unknown: a usage error with the closest
 * formats (the library's message lists them: "... (formats: a, b, c)"). */
static int unknown_format(const char *command, const char *format) {
  cli_suggest sg;
  cli_suggest_init(&sg, format);
  const char *list = strstr(msc_last_error(), "(formats: ");
  char names[512] = "";
  if (list) snprintf(names, sizeof names, "%.*s", (int)strcspn(list + 10, ")"), list + 10);
  cli_suggest_add_list(&sg, names, ",");
  return cli_usage(command, "--format: unknown format '%s'%s (formats: %s)", format,
                   cli_suggest_text(&sg, NULL), names);
}

/* BigEarthNet v2 without the table the library reads: the official download has
 * metadata.parquet, which no Debian package reads, so the message says how to convert
 * it (README.md, "Training on the real BigEarthNet v2"; docs/data.md). */
static int ben2_no_table(const char *root, msc_status st) {
  char parquet[4096];
  snprintf(parquet, sizeof parquet, "%s/metadata.parquet", root);
  FILE *f = fopen(parquet, "rb");
  if (!f)
    return cli_lib_error(st,
                         "cannot open bigearthnet-v2 dataset %s (the official metadata.parquet "
                         "converted to TSV: see %s/data.md, \"BigEarthNet v2\")",
                         root, MOSAIC_DOCDIR);
  fclose(f);
  return cli_error("cannot open bigearthnet-v2 dataset %s: it has metadata.parquet, which "
                   "mosaic cannot read; convert it once to metadata.tsv with pandas and "
                   "pyarrow: python3 -c \"import pandas as pd; d = "
                   "pd.read_parquet('%s/metadata.parquet'); d['labels'] = "
                   "d['labels'].map(';'.join); d.to_csv('%s/metadata.tsv', sep='\\t', "
                   "index=False)\" (or copy the converted table of the whole dataset, "
                   "tests/data/bigearthnet-v2-metadata.tsv.zst in the source tree, to "
                   "%s/metadata.tsv.zst; %s/data.md)",
                   root, root, root, root, MOSAIC_DOCDIR);
}

int cli_check_format(const char *command, const char *format) {
  /* msc_dataset_open checks the format before it looks at the root: with an empty root a
   * known format fails with MSC_E_IO, an unknown one with MSC_E_NOT_FOUND. Should the
   * order ever change, the format is still checked where the dataset is opened. */
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open("", format, NULL, &ds);
  msc_dataset_free(ds);
  if (st == MSC_E_NOT_FOUND && strstr(msc_last_error(), "unknown format '"))
    return unknown_format(command, format);
  return -1;
}

int cli_open_dataset(const cli_ctx *ctx, const msc_options *opts, const char *split, int full,
                     msc_dataset **out) {
  const char *root = cli_str(ctx, "data", NULL);
  const char *format = cli_str(ctx, "format", "bigearthnet-v2");
  if (!root) return cli_usage(ctx->command, "--data DIR is required");
  msc_options *o = cli_opts_copy(opts);
  if (!o) return cli_error("out of memory");
  msc_status st = MSC_OK;
  if (split) st = msc_options_set_string(o, "data.split", split);
  /* A scored split is scored whole, with every label. */
  if (st == MSC_OK && full) st = msc_options_set_float(o, "data.fraction", 1.0);
  if (st == MSC_OK && full) st = msc_options_set_float(o, "data.labeled_fraction", 1.0);
  if (st == MSC_OK) st = msc_dataset_open(root, format, o, out);
  msc_options_free(o);
  if (st == MSC_E_NOT_FOUND && strstr(msc_last_error(), "unknown format '"))
    return unknown_format(ctx->command, format);
  if (st == MSC_E_IO && strcmp(format, "bigearthnet-v2") == 0 &&
      (strstr(msc_last_error(), "metadata.tsv or metadata.tsv.zst") ||
       strstr(msc_last_error(), "holds metadata.parquet but no metadata.tsv")))
    return ben2_no_table(root, st);
  if (st != MSC_OK)
    return cli_lib_error(st, "cannot open %s dataset %s%s%s", format, root,
                         split ? ", split " : "", split ? split : "");
  return EXIT_OK;
}

/* What `mosaic -v` says before the library computes statistics, and the message of
 * --stats published, as they were when the tool derived the keys itself: probes
 * msc_dataset_stats for each modality whose normalisation is not given. */
static int stats_notes(const cli_ctx *ctx, const msc_options *opts, const msc_dataset *ds,
                       int32_t mode, int64_t stats_samples) {
  for (int32_t i = 0; i < msc_dataset_modality_count(ds); ++i) {
    char key[64];
    int32_t mean_set = 0, std_set = 0;
    snprintf(key, sizeof key, "modality.%d.mean", (int)i);
    msc_options_is_set(opts, key, &mean_set);
    snprintf(key, sizeof key, "modality.%d.std", (int)i);
    msc_options_is_set(opts, key, &std_set);
    if (mean_set && std_set) continue;
    int64_t bands = 0, size = 0;
    msc_status st = msc_dataset_modality_shape(ds, i, &bands, &size);
    if (st != MSC_OK) return cli_lib_error(st, "dataset modality %d", (int)i);
    st = MSC_E_NOT_FOUND;
    if (mode != MSC_STATS_COMPUTED) {
      float *buf = malloc(2 * (size_t)bands * sizeof(float));
      if (!buf) return cli_error("out of memory");
      st = msc_dataset_stats(ds, i, buf, buf + bands, (size_t)bands);
      free(buf);
    }
    if (st != MSC_OK && mode == MSC_STATS_PUBLISHED)
      return cli_lib_error(st, "--stats published");
    if (st != MSC_OK && ctx->verbosity > 0)
      cli_note("computing the normalisation of %s from %lld samples",
               msc_dataset_modality_name(ds, i), (long long)stats_samples);
  }
  return EXIT_OK;
}

int cli_model_keys_from_dataset(const cli_ctx *ctx, msc_options *opts, const msc_dataset *ds) {
  const char *encoder = cli_str(ctx, "encoder", NULL);
  const char *stats = cli_str(ctx, "stats", "auto");
  int64_t stats_samples = cli_int(ctx, "stats_samples", 256);
  int32_t mode = strcmp(stats, "published") == 0  ? MSC_STATS_PUBLISHED
                 : strcmp(stats, "computed") == 0 ? MSC_STATS_COMPUTED
                                                  : MSC_STATS_AUTO;
  for (int32_t i = 0; encoder && i < msc_dataset_modality_count(ds); ++i) {
    char key[64];
    snprintf(key, sizeof key, "modality.%d.encoder", (int)i);
    msc_status st = msc_options_set_string(opts, key, encoder);
    if (st != MSC_OK) return cli_usage(ctx->command, "--encoder: %s", msc_last_error());
  }
  int rc = stats_notes(ctx, opts, ds, mode, stats_samples);
  if (rc != EXIT_OK) return rc;
  msc_status st = msc_options_from_dataset(opts, ds, mode, stats_samples);
  if (st != MSC_OK) {
    const char *msg = msc_last_error();
    return cli_error("%s", msg[0] ? msg : msc_status_string(st));
  }
  return EXIT_OK;
}

int cli_load_model(const cli_ctx *ctx, const char *path, msc_model **out) {
  msc_status st = msc_model_load(path, ctx->opts, out);
  if (st != MSC_OK) return cli_lib_error(st, "cannot load the model %s", path);
  return EXIT_OK;
}

json_t *cli_model_metadata(const char *path) {
  json_t *meta = cli_model_metadata_quiet(path);
  if (!meta) {
    FILE *f = fopen(path, "rb");
    if (!f) {
      cli_error("cannot open %s: %s", path, strerror(errno));
      return NULL;
    }
    fclose(f);
    cli_error("%s: not a safetensors file with metadata", path);
  }
  return meta;
}

json_t *cli_model_metadata_quiet(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char h8[8];
  json_t *meta = NULL;
  if (fread(h8, 1, 8, f) == 8) {
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = len << 8 | h8[i];
    if (len > 0 && len < (100u << 20)) {
      char *buf = malloc((size_t)len);
      if (buf && fread(buf, 1, (size_t)len, f) == len) {
        json_t *doc = json_loadb(buf, (size_t)len, 0, NULL);
        json_t *m = json_object_get(doc, "__metadata__");
        if (json_is_object(m)) meta = json_deep_copy(m);
        json_decref(doc);
      }
      free(buf);
    }
  }
  fclose(f);
  return meta;
}

/* The modality of the model named name[0..len), or -1. */
static int32_t model_modality(const msc_model *model, const char *name, size_t len) {
  for (int32_t i = 0; i < msc_model_modality_count(model); ++i) {
    const char *m = msc_model_modality_name(model, i);
    if (strlen(m) == len && strncmp(m, name, len) == 0) return i;
  }
  return -1;
}

int cli_parse_which(const msc_model *model, const char *text, int32_t *which) {
  /* The names of Python's Model.embed(kind=...) (bindings/python/mosaic/_core.py), plus
   * the tool's older spellings: fused, fused_projection (fused-projection), NAME,
   * NAME_projection, features:NAME (modality:NAME), projection:NAME
   * (modality-projection:NAME), and features / projection alone for a model of one
   * modality. */
  if (strcmp(text, "fused") == 0) {
    *which = MSC_EMBED_FUSED;
    return EXIT_OK;
  }
  if (strcmp(text, "fused_projection") == 0 || strcmp(text, "fused-projection") == 0) {
    *which = MSC_EMBED_FUSED_PROJECTION;
    return EXIT_OK;
  }
  int32_t nm = msc_model_modality_count(model);
  static const struct {
    const char *prefix;
    int proj;
  } k_prefixes[] = {
      {"features:", 0}, {"modality:", 0}, {"projection:", 1}, {"modality-projection:", 1}};
  for (size_t k = 0; k < sizeof k_prefixes / sizeof k_prefixes[0]; ++k) {
    size_t lp = strlen(k_prefixes[k].prefix);
    if (strncmp(text, k_prefixes[k].prefix, lp) != 0) continue;
    int32_t i = model_modality(model, text + lp, strlen(text + lp));
    if (i < 0) {
      cli_suggest sg;
      cli_suggest_init(&sg, text + lp);
      for (int32_t j = 0; j < nm; ++j) cli_suggest_add(&sg, msc_model_modality_name(model, j));
      return cli_usage(NULL, "--which %s: the model has no modality '%s'%s", text, text + lp,
                       cli_suggest_text(&sg, k_prefixes[k].prefix));
    }
    *which = k_prefixes[k].proj ? MSC_EMBED_MODALITY_PROJECTION(i) : MSC_EMBED_MODALITY(i);
    return EXIT_OK;
  }
  int32_t i = model_modality(model, text, strlen(text));
  if (i >= 0) {
    *which = MSC_EMBED_MODALITY(i);
    return EXIT_OK;
  }
  size_t len = strlen(text), ls = strlen("_projection");
  if (len > ls && strcmp(text + len - ls, "_projection") == 0 &&
      (i = model_modality(model, text, len - ls)) >= 0) {
    *which = MSC_EMBED_MODALITY_PROJECTION(i);
    return EXIT_OK;
  }
  if ((strcmp(text, "features") == 0 || strcmp(text, "projection") == 0) && nm == 1) {
    *which = text[0] == 'f' ? MSC_EMBED_MODALITY(0) : MSC_EMBED_MODALITY_PROJECTION(0);
    return EXIT_OK;
  }
  /* Every name this model takes, for the suggestion and the message. */
  cli_suggest sg;
  cli_suggest_init(&sg, text);
  cli_suggest_add(&sg, "fused");
  cli_suggest_add(&sg, "fused_projection");
  char names[512];
  size_t o = (size_t)snprintf(names, sizeof names, "fused, fused_projection");
  for (int32_t j = 0; j < nm; ++j) {
    const char *m = msc_model_modality_name(model, j);
    char proj[96];
    snprintf(proj, sizeof proj, "%s_projection", m);
    cli_suggest_add(&sg, m);
    cli_suggest_add(&sg, proj);
    if (o < sizeof names)
      o += (size_t)snprintf(names + o, sizeof names - o, ", %s, %s", m, proj);
  }
  if (strcmp(text, "features") == 0 || strcmp(text, "projection") == 0)
    return cli_usage(NULL, "--which %s: the model has %d modalities, name one (%s:NAME)", text,
                     (int)nm, text);
  return cli_usage(NULL, "--which '%s': not an embedding of this model%s (it has: %s)", text,
                   cli_suggest_text(&sg, NULL), names);
}

#define MSC_MAX_MODALITIES_CLI 8

/* The modalities every batch of cli_infer drops (cli_infer_modalities). */
static char infer_drop[MSC_MAX_MODALITIES_CLI][64];
static int infer_n_drop;

int cli_infer_modalities(const char *list, const msc_dataset *ds) {
  infer_n_drop = 0;
  if (!list) return EXIT_OK;
  int32_t nm = msc_dataset_modality_count(ds);
  int kept = 0;
  /* Every name of the list must be a dataset modality. */
  char buf[512];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int found = 0;
    for (int32_t k = 0; k < nm; ++k) found |= strcmp(t, msc_dataset_modality_name(ds, k)) == 0;
    if (!found) {
      cli_suggest sg;
      cli_suggest_init(&sg, t);
      for (int32_t k = 0; k < nm; ++k) cli_suggest_add(&sg, msc_dataset_modality_name(ds, k));
      return cli_usage(NULL, "--modalities: the dataset has no modality '%s'%s", t,
                       cli_suggest_text(&sg, NULL));
    }
  }
  for (int32_t k = 0; k < nm && k < MSC_MAX_MODALITIES_CLI; ++k) {
    const char *name = msc_dataset_modality_name(ds, k);
    int listed = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
      listed |= strcmp(t, name) == 0;
    if (listed)
      kept++;
    else
      snprintf(infer_drop[infer_n_drop++], sizeof infer_drop[0], "%s", name);
  }
  if (kept == 0) return cli_usage(NULL, "--modalities: no modality given");
  return EXIT_OK;
}

int cli_infer(msc_model *model, const msc_dataset *ds, int64_t batch, cli_progress *pg,
              const char *label, float **probs, uint8_t **labels, int32_t which, float **emb,
              int64_t *dim) {
  int64_t n = msc_dataset_size(ds), c = msc_dataset_class_count(ds);
  int64_t cm = msc_model_class_count(model);
  if (n <= 0) return cli_error("%s: the dataset split has no samples", label);
  if (probs && cm != c)
    return cli_error("the model has %lld classes, the dataset %lld", (long long)cm,
                     (long long)c);
  int64_t d = 0;
  if (emb) {
    msc_status st = msc_model_embedding_size(model, which, &d);
    if (st != MSC_OK) return cli_lib_error(st, "embedding size");
  }
  float *p = probs ? malloc((size_t)(n * c) * sizeof(float)) : NULL;
  uint8_t *y = labels ? malloc((size_t)(n * c)) : NULL;
  float *e = emb ? malloc((size_t)(n * d) * sizeof(float)) : NULL;
  int64_t *idx = malloc((size_t)batch * sizeof(int64_t));
  msc_batch *b = NULL;
  int rc = EXIT_OK;
  if ((probs && !p) || (labels && !y) || (emb && !e) || !idx || msc_batch_create(&b) != MSC_OK)
    rc = cli_error("out of memory for %lld samples", (long long)n);
  if (pg) cli_progress_begin(pg, label, n);
  for (int64_t i = 0; rc == EXIT_OK && i < n; i += batch) {
    if (cli_interrupted) {
      if (pg) cli_progress_clear(pg);
      cli_note("interrupted");
      rc = EXIT_INTERRUPTED;
      break;
    }
    int64_t m = n - i < batch ? n - i : batch;
    for (int64_t j = 0; j < m; ++j) idx[j] = i + j;
    msc_status st = msc_dataset_fill_batch(ds, idx, m, b);
    if (st != MSC_OK) {
      rc =
          cli_lib_error(st, "reading samples %lld..%lld", (long long)i, (long long)(i + m - 1));
      break;
    }
    for (int k = 0; k < infer_n_drop && st == MSC_OK; ++k)
      st = msc_batch_remove_modality(b, infer_drop[k]);
    if (st != MSC_OK) {
      rc = cli_lib_error(st, "--modalities");
      break;
    }
    if (p && (st = msc_predict(model, b, p + i * c, (size_t)(m * c))) != MSC_OK) {
      rc = cli_lib_error(st, "predicting samples %lld..%lld", (long long)i,
                         (long long)(i + m - 1));
      break;
    }
    if (e && (st = msc_embed(model, b, which, e + i * d, (size_t)(m * d))) != MSC_OK) {
      rc = cli_lib_error(st, "embedding samples %lld..%lld", (long long)i,
                         (long long)(i + m - 1));
      break;
    }
    if (y) {
      int64_t bc = 0;
      st = msc_batch_labels(b, NULL, 0, &bc);
      if (st == MSC_OK && bc != c) {
        rc = cli_error("samples %lld..%lld have %lld classes, the model %lld", (long long)i,
                       (long long)(i + m - 1), (long long)bc, (long long)c);
        break;
      }
      if (st == MSC_OK) st = msc_batch_labels(b, y + i * c, (size_t)(m * c), NULL);
      if (st != MSC_OK) {
        rc = cli_lib_error(st, "labels of samples %lld..%lld", (long long)i,
                           (long long)(i + m - 1));
        break;
      }
    }
    if (pg) cli_progress_update(pg, i + m, NULL);
  }
  if (pg) {
    if (rc == EXIT_OK)
      cli_progress_end(pg, NULL);
    else
      cli_progress_clear(pg);
  }
  msc_batch_free(b);
  free(idx);
  if (rc != EXIT_OK) {
    free(p), free(y), free(e);
    return rc;
  }
  if (probs) *probs = p;
  if (labels) *labels = y;
  if (emb) *emb = e, *dim = d;
  return EXIT_OK;
}

int cli_check_labels(const msc_options *o, const msc_dataset *ds) {
  if (msc_dataset_class_count(ds) > 0) return EXIT_OK;
  static const char *const terms[3] = {"fused", "views", "bce"};
  for (int t = 0; t < 3; ++t) {
    char key[32];
    snprintf(key, sizeof key, "lambda.%s", terms[t]);
    if (cli_opt_float(o, key, 0) > 0)
      return cli_error(
          "lambda.%s > 0 (a supervised term of preset %s) needs labels, and this "
          "dataset has none: choose a self-supervised preset (simclr, iai, dual, pimc) "
          "or set lambda.%s = 0",
          terms[t], cli_opt_str(o, "train.preset"), terms[t]);
  }
  return EXIT_OK;
}

int cli_wants_int8(const cli_ctx *ctx) {
  char precision[16] = "f32";
  msc_options_get_string(ctx->opts, "precision", precision, sizeof precision, NULL);
  return strcmp(precision, "int8") == 0;
}

int cli_calibrate(const cli_ctx *ctx, msc_model *model, const char *split) {
  if (!cli_wants_int8(ctx)) return EXIT_OK;
  const int64_t rounds = cli_int(ctx, "calibrate", 4), batch = cli_int(ctx, "batch", 64);
  if (rounds < 1 || batch < 1)
    return cli_error("--calibrate and --batch must be at least 1 for --precision int8");
  msc_dataset *ds = NULL;
  int rc = cli_open_dataset(ctx, ctx->opts, split, 1, &ds);
  if (rc != EXIT_OK) return rc;
  const int64_t n = msc_dataset_size(ds);
  /* Samples spread evenly over the split, so that the ranges see all of it. */
  const int64_t total = n < rounds * batch ? n : rounds * batch;
  int64_t *idx = malloc((size_t)batch * sizeof *idx);
  msc_batch *b = NULL;
  if (n == 0)
    rc = cli_error("--precision int8: no samples to calibrate on");
  else if (!idx || msc_batch_create(&b) != MSC_OK)
    rc = cli_error("out of memory");
  for (int64_t at = 0; rc == EXIT_OK && at < total; at += batch) {
    const int64_t m = total - at < batch ? total - at : batch;
    for (int64_t j = 0; j < m; ++j) idx[j] = (at + j) * n / total;
    msc_status st = msc_dataset_fill_batch(ds, idx, m, b);
    if (st == MSC_OK) st = msc_model_calibrate(model, b);
    if (st != MSC_OK) rc = cli_lib_error(st, "int8 calibration");
  }
  if (rc == EXIT_OK && ctx->verbosity > 0)
    cli_note("int8: calibrated on %lld samples", (long long)total);
  msc_batch_free(b);
  free(idx);
  msc_dataset_free(ds);
  return rc;
}
