/*
 * forecast.c — `mosaic eval --protocol forecast`: pixel-level forecasting of a vegetation
 * index from a PIMC model's recurrence-plot embedding (docs/pimc.md, "Forecasting").
 *
 * Both splits are opened with data.sits.history = k (the plots show only the first L − k
 * dates of each series) and data.sits.plot_size = the model's "rp" size. A sample's
 * features are its rp-encoder embedding h_rp (MSC_EMBED_MODALITY) and the last
 * FC_RECENT (8) history values of the index, newest first; its targets are the index at the last k dates of its series
 * (msc_dataset_series + msc_vegetation_index). One ridge regression per horizon step
 * (ridge.c) of the change from the last history value (target − last) is fitted on the training split over the samples whose target is finite;
 * MAE and RMSE are taken over the finite targets of the scored split, per step and over
 * all steps, for the model and for persistence (the last finite history value held).
 * A sample without any finite history value has no persistence forecast: it is left out
 * of both (and counted), so both are scored on the same targets.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ridge.h"

static const char *const k_index_names[] = {"ndvi", "evi", "savi", "ndwi", "nbr"};

int cli_vi_kind(const char *name, int32_t *kind) {
  for (int32_t i = 0; i < (int32_t)(sizeof k_index_names / sizeof k_index_names[0]); ++i)
    if (strcmp(name, k_index_names[i]) == 0) {
      *kind = i; /* the names are in the order of the MSC_VI_* values */
      return EXIT_OK;
    }
  cli_suggest sg;
  cli_suggest_init(&sg, name);
  for (size_t i = 0; i < sizeof k_index_names / sizeof k_index_names[0]; ++i)
    cli_suggest_add(&sg, k_index_names[i]);
  cli_usage(NULL, "unknown index '%s'%s (use ndvi, evi, savi, ndwi or nbr)", name,
            cli_suggest_text(&sg, NULL));
  return EXIT_USAGE;
}

int cli_vi_bands(const msc_options *opts, msc_vi_bands *b) {
  /* The PASTIS DATA_S2 channels (the only time-series format) with data.sits.scale and
   * data.sits.offset, as the dataset computes its plots. */
  memset(b, 0, sizeof *b);
  b->struct_size = sizeof *b;
  b->b2 = 0, b->b3 = 1, b->b4 = 2, b->b8 = 6, b->b12 = 9;
  b->scale = cli_opt_float(opts, "data.sits.scale", 10000);
  b->offset = cli_opt_float(opts, "data.sits.offset", 0);
  return EXIT_OK;
}

int cli_model_rp(const msc_model *model, int32_t *modality, int64_t *size) {
  for (int32_t i = 0; i < msc_model_modality_count(model); ++i)
    if (strcmp(msc_model_modality_name(model, i), "rp") == 0) {
      int64_t bands = 0;
      msc_status st = msc_model_modality_shape(model, i, &bands, size);
      if (st != MSC_OK) return cli_lib_error(st, "modality rp");
      *modality = i;
      return EXIT_OK;
    }
  return cli_error("the model has no 'rp' modality (forecasting needs a model trained on "
                   "--format pastis)");
}

void cli_forecast_free(cli_forecast_result *r) {
  free(r->count), free(r->mae), free(r->rmse), free(r->lambda);
  memset(r, 0, sizeof *r);
}

/* History values among the features: the trend of the last dates, which persistence
 * ignores, and the level, which recurrence plots do not hold (|x_i − x_j| forgets it). */
#define FC_RECENT 8

/* One split: features x (n × dx), targets y (n × k, NaN where absent) and the
 * persistence forecast last (n). */
typedef struct fc_split {
  int64_t n, dx, skipped;
  double *x, *y, *last;
} fc_split;

static void fc_split_free(fc_split *s) {
  free(s->x), free(s->y), free(s->last);
  memset(s, 0, sizeof *s);
}

static int fc_read(const cli_ctx *ctx, msc_model *model, const msc_options *o,
                   const char *split, int full, int32_t which, int32_t kind, int64_t k,
                   cli_progress *pg, const char *label, fc_split *s) {
  memset(s, 0, sizeof *s);
  msc_dataset *ds = NULL;
  int rc = cli_open_dataset(ctx, o, split, full, &ds);
  if (rc != EXIT_OK) return rc;
  msc_vi_bands bands;
  cli_vi_bands(o, &bands);
  float *emb = NULL, *series = NULL, *vi = NULL;
  int64_t d = 0, t = 0, c = 0, n = msc_dataset_size(ds);
  rc = cli_infer(model, ds, 64, pg, label, NULL, NULL, which, &emb, &d);
  if (rc == EXIT_OK) {
    msc_status st = msc_dataset_series(ds, 0, NULL, 0, NULL, &t, &c);
    if (st != MSC_OK) rc = cli_lib_error(st, "the series of sample 0");
  }
  if (rc == EXIT_OK && t - k < 1)
    rc =
        cli_error("--horizon %lld leaves no history of %lld dates", (long long)k, (long long)t);
  if (rc == EXIT_OK) {
    s->n = n, s->dx = d + (t - k < FC_RECENT ? t - k : FC_RECENT);
    s->x = malloc((size_t)(n * s->dx) * sizeof(double));
    s->y = malloc((size_t)(n * k) * sizeof(double));
    s->last = malloc((size_t)n * sizeof(double));
    series = malloc((size_t)(t * c) * sizeof(float));
    vi = malloc((size_t)t * sizeof(float));
    if (!s->x || !s->y || !s->last || !series || !vi) rc = cli_error("out of memory");
  }
  for (int64_t i = 0; rc == EXIT_OK && i < n; ++i) {
    int64_t ti = 0, ci = 0;
    msc_status st = msc_dataset_series(ds, i, series, (size_t)(t * c), NULL, &ti, &ci);
    if (st == MSC_OK && (ti != t || ci != c)) st = MSC_E_SHAPE;
    if (st == MSC_OK) st = msc_vegetation_index(kind, series, t, c, 1, &bands, vi, NULL);
    if (st != MSC_OK) {
      rc = cli_lib_error(st, "the series of sample %lld", (long long)i);
      break;
    }
    double last = NAN;
    for (int64_t l = t - k - 1; l >= 0 && isnan(last); --l)
      if (isfinite(vi[l])) last = vi[l];
    s->last[i] = last;
    if (isnan(last)) s->skipped++;
    for (int64_t j = 0; j < k; ++j) s->y[i * k + j] = isnan(last) ? NAN : (double)vi[t - k + j];
    for (int64_t j = 0; j < d; ++j) s->x[i * s->dx + j] = emb[i * d + j];
    /* The most recent history values, newest first; a missing one repeats the newer. */
    double prev = isnan(last) ? 0.0 : last;
    for (int64_t j = 0; j < s->dx - d; ++j) {
      float v = vi[t - k - 1 - j];
      if (isfinite(v) && !isnan(last)) prev = v;
      s->x[i * s->dx + d + j] = prev;
    }
  }
  free(emb), free(series), free(vi);
  msc_dataset_free(ds);
  if (rc != EXIT_OK) fc_split_free(s);
  return rc;
}

int cli_forecast(cli_ctx *ctx, msc_model *model, const char *split, cli_progress *pg,
                 cli_forecast_result *r) {
  memset(r, 0, sizeof *r);
  int64_t k = cli_int(ctx, "horizon", 1);
  const char *index = cli_str(ctx, "index", "ndvi");
  double lambda = cli_has(ctx, "lambda") ? cli_float(ctx, "lambda", 0) : -1;
  int32_t kind = 0, rp = 0;
  int64_t size = 0;
  int rc = cli_vi_kind(index, &kind);
  if (rc == EXIT_OK) rc = cli_model_rp(model, &rp, &size);
  if (rc != EXIT_OK) return rc;
  msc_options *o = cli_opts_copy(ctx->opts);
  if (!o) return cli_error("out of memory");
  msc_status st = msc_options_set_int(o, "data.sits.history", k);
  if (st == MSC_OK) st = msc_options_set_int(o, "data.sits.plot_size", size);
  if (st != MSC_OK) {
    msc_options_free(o);
    return cli_lib_error(st, "--horizon %lld", (long long)k);
  }
  fc_split tr, te;
  memset(&te, 0, sizeof te);
  rc = fc_read(ctx, model, o, NULL, 0, MSC_EMBED_MODALITY(rp), kind, k, pg, "embed (train)",
               &tr);
  if (rc == EXIT_OK)
    rc = fc_read(ctx, model, o, split, 1, MSC_EMBED_MODALITY(rp), kind, k, pg, "embed (scored)",
                 &te);
  msc_options_free(o);
  r->horizon = k;
  snprintf(r->index, sizeof r->index, "%s", index);
  r->count = calloc((size_t)(k + 1), sizeof(int64_t));
  r->mae = calloc((size_t)(2 * (k + 1)), sizeof(double));
  r->rmse = calloc((size_t)(2 * (k + 1)), sizeof(double));
  r->lambda = calloc((size_t)k, sizeof(double));
  double *ycol = malloc((size_t)(tr.n > 0 ? tr.n : 1) * sizeof(double));
  if (rc == EXIT_OK && (!r->count || !r->mae || !r->rmse || !r->lambda || !ycol))
    rc = cli_error("out of memory");
  if (rc == EXIT_OK) {
    r->train_samples = tr.n, r->test_samples = te.n;
    r->skipped_train = tr.skipped, r->skipped_test = te.skipped;
    r->features = tr.dx;
  }
  /* mae[m·(k+1) + j], m = 0 model, 1 persistence; j = k is over all steps. */
  for (int64_t j = 0; rc == EXIT_OK && j < k; ++j) {
    /* The ridge predicts the change from the last history value: its shrinkage then pulls
     * towards persistence, not towards the mean level. */
    for (int64_t i = 0; i < tr.n; ++i) ycol[i] = tr.y[i * k + j] - tr.last[i];
    ridge_model m;
    int fr = ridge_fit(tr.x, ycol, tr.n, tr.dx, lambda, &m);
    if (fr != RIDGE_OK) {
      rc = cli_error("forecast step %lld: %s", (long long)(j + 1),
                     fr == RIDGE_NO_ROWS ? "no training sample has a finite target"
                     : fr == RIDGE_NOT_PD
                         ? "the normal equations are singular (use --lambda > 0)"
                     : fr == RIDGE_NOT_FINITE ? "a feature is not finite"
                                              : "out of memory");
      break;
    }
    r->lambda[j] = m.lambda;
    for (int64_t i = 0; i < te.n; ++i) {
      double y = te.y[i * k + j];
      if (!isfinite(y)) continue;
      double e[2] = {te.last[i] + ridge_predict(&m, te.x + i * te.dx) - y, te.last[i] - y};
      for (int w = 0; w < 2; ++w) {
        r->mae[w * (k + 1) + j] += fabs(e[w]), r->rmse[w * (k + 1) + j] += e[w] * e[w];
        r->mae[w * (k + 1) + k] += fabs(e[w]), r->rmse[w * (k + 1) + k] += e[w] * e[w];
      }
      r->count[j]++, r->count[k]++;
    }
    ridge_free(&m);
  }
  for (int64_t j = 0; rc == EXIT_OK && j <= k; ++j)
    for (int w = 0; w < 2; ++w) {
      double nn = (double)r->count[j];
      double *a = &r->mae[w * (k + 1) + j], *b = &r->rmse[w * (k + 1) + j];
      *a = nn > 0 ? *a / nn : NAN, *b = nn > 0 ? sqrt(*b / nn) : NAN;
    }
  free(ycol);
  fc_split_free(&tr), fc_split_free(&te);
  if (rc != EXIT_OK) cli_forecast_free(r);
  return rc;
}

void cli_forecast_print(const cli_forecast_result *r, FILE *f) {
  const int64_t k = r->horizon;
  fprintf(f,
          "  index %s, horizon %lld; train samples %lld, scored samples %lld (left out without "
          "a finite history value: %lld and %lld)\n",
          r->index, (long long)k, (long long)r->train_samples, (long long)r->test_samples,
          (long long)r->skipped_train, (long long)r->skipped_test);
  fprintf(f, "  features %lld (rp embedding + the last history values), ridge lambda %.4g",
          (long long)r->features, r->lambda[0]);
  for (int64_t j = 1; j < k; ++j) fprintf(f, ", %.4g", r->lambda[j]);
  fprintf(f, "\n\n  %-12s  %7s  %8s  %8s", "method", "targets", "MAE", "RMSE");
  for (int64_t j = 0; j < k; ++j) {
    char a[40], b[40];
    snprintf(a, sizeof a, "MAE t+%lld", (long long)(j + 1));
    snprintf(b, sizeof b, "RMSE t+%lld", (long long)(j + 1));
    fprintf(f, "  %9s  %10s", a, b);
  }
  fputc('\n', f);
  static const char *const names[2] = {"model", "persistence"};
  for (int w = 0; w < 2; ++w) {
    fprintf(f, "  %-12s  %7lld  %8.4f  %8.4f", names[w], (long long)r->count[k],
            r->mae[w * (k + 1) + k], r->rmse[w * (k + 1) + k]);
    for (int64_t j = 0; j < k; ++j)
      fprintf(f, "  %9.4f  %10.4f", r->mae[w * (k + 1) + j], r->rmse[w * (k + 1) + j]);
    fputc('\n', f);
  }
}

json_t *cli_forecast_json(const cli_forecast_result *r) {
  const int64_t k = r->horizon;
  json_t *o = json_object();
  json_object_set_new(o, "index", json_string(r->index));
  json_object_set_new(o, "horizon", json_integer(k));
  json_object_set_new(o, "train_samples", json_integer(r->train_samples));
  json_object_set_new(o, "samples", json_integer(r->test_samples));
  json_object_set_new(o, "skipped_train", json_integer(r->skipped_train));
  json_object_set_new(o, "skipped", json_integer(r->skipped_test));
  json_object_set_new(o, "features", json_integer(r->features));
  json_t *lam = json_array(), *counts = json_array();
  for (int64_t j = 0; j < k; ++j) json_array_append_new(lam, cli_json_num(r->lambda[j]));
  for (int64_t j = 0; j < k; ++j) json_array_append_new(counts, json_integer(r->count[j]));
  json_object_set_new(o, "lambda", lam);
  json_object_set_new(o, "targets_per_step", counts);
  json_object_set_new(o, "targets", json_integer(r->count[k]));
  static const char *const names[2] = {"model", "persistence"};
  json_t *methods = json_object();
  for (int w = 0; w < 2; ++w) {
    json_t *m = json_object(), *mae = json_array(), *rmse = json_array();
    json_object_set_new(m, "mae", cli_json_num(r->mae[w * (k + 1) + k]));
    json_object_set_new(m, "rmse", cli_json_num(r->rmse[w * (k + 1) + k]));
    for (int64_t j = 0; j < k; ++j) {
      json_array_append_new(mae, cli_json_num(r->mae[w * (k + 1) + j]));
      json_array_append_new(rmse, cli_json_num(r->rmse[w * (k + 1) + j]));
    }
    json_object_set_new(m, "mae_per_step", mae);
    json_object_set_new(m, "rmse_per_step", rmse);
    json_object_set_new(methods, names[w], m);
  }
  json_object_set_new(o, "methods", methods);
  return o;
}
