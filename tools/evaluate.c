/*
 * evaluate.c — the evaluation protocols (docs/metrics.md) and how results are shown.
 *
 *   model     the model's own classifier, as trained (no training here);
 *   linear    linear probe: encoders frozen (train.freeze_encoders = 1), only the
 *             classifier trains (preset "supervised": BCE, or softmax cross-entropy for
 *             a single-label model, train.labels = auto), on the training split with
 *             data.fraction (the low-label protocol), for tool.probe_epochs epochs;
 *   finetune  the same with every weight training;
 *   knn       k nearest neighbours on embeddings (tool.which, default the fused
 *             features h_f): cosine similarity against the training split's
 *             embeddings, score of a class = mean of the k neighbours' labels.
 * The probe and fine-tune start from a freshly initialised classifier (seeded by the
 * run's seed; msc_model_reset_classifier), since the head of a supervised pre-training
 * run saw every label and would leak them into a low-label evaluation; with
 * tool.keep_classifier = 1 they start from the classifier as loaded. Their learning
 * rate is constant (tool.probe_lr).
 * Single-label models and datasets (EuroSAT) are also scored as such: accuracy, macro
 * F1 and mean IoU of the arg max (docs/metrics.md, "Single-label metrics").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_eval_free(cli_eval_result *r) {
  free(r->ap), free(r->f1), free(r->hamming), free(r->brier), free(r->support);
  free(r->argmax_f1), free(r->iou), free(r->confusion);
  if (r->class_names)
    for (int64_t k = 0; k < r->c; ++k) free(r->class_names[k]);
  free(r->class_names);
  memset(r, 0, sizeof *r);
}

int cli_model_single_label(const msc_model *model) {
  msc_options *o = NULL;
  char mode[16] = "";
  if (!model || msc_model_options(model, &o) != MSC_OK) return 0;
  msc_status st = msc_options_get_string(o, "labels", mode, sizeof mode, NULL);
  msc_options_free(o);
  return st == MSC_OK && strcmp(mode, "single") == 0;
}

/* Single-label metrics: predicted class = the arg max of each row (the first of equal
 * maxima), true class = the sample's one label; a sample without exactly one label
 * gets the out-of-range class c, which is the ignored index. */
static int single_label_metrics(const float *probs, const uint8_t *labels, int64_t n, int64_t c,
                                cli_eval_result *r) {
  int32_t *pred = malloc((size_t)n * sizeof(int32_t));
  int32_t *truth = malloc((size_t)n * sizeof(int32_t));
  r->argmax_f1 = malloc((size_t)c * sizeof(double));
  r->iou = malloc((size_t)c * sizeof(double));
  r->confusion = malloc((size_t)(c * c) * sizeof(int64_t));
  if (!pred || !truth || !r->argmax_f1 || !r->iou || !r->confusion) {
    free(pred), free(truth);
    return cli_error("out of memory");
  }
  for (int64_t i = 0; i < n; ++i) {
    const float *p = probs + i * c;
    const uint8_t *y = labels + i * c;
    int32_t best = 0, t = -1, count = 0;
    for (int64_t k = 1; k < c; ++k)
      if (p[k] > p[best]) best = (int32_t)k;
    for (int64_t k = 0; k < c; ++k)
      if (y[k]) t = (int32_t)k, count++;
    pred[i] = best;
    truth[i] = count == 1 ? t : (int32_t)c;
    r->unlabelled += count != 1;
  }
  r->cm.struct_size = sizeof r->cm;
  r->top_k = c < 5 ? c : 5;
  msc_status st =
      msc_metrics_top_k(probs, truth, n, c, r->top_k, (int32_t)c, &r->top_k_acc, NULL);
  if (st == MSC_OK) st = msc_metrics_confusion(pred, truth, n, c, (int32_t)c, r->confusion);
  if (st == MSC_OK)
    st = msc_metrics_from_confusion(r->confusion, c, &r->cm, r->argmax_f1, r->iou);
  free(pred), free(truth);
  if (st != MSC_OK) return cli_lib_error(st, "single-label metrics");
  r->single = 1;
  return EXIT_OK;
}

int cli_eval_metrics(const float *probs, const uint8_t *labels, int64_t n, int64_t c,
                     float threshold, int single, const msc_model *model, cli_eval_result *r) {
  memset(r, 0, sizeof *r);
  r->n = n, r->c = c, r->threshold = threshold;
  r->ap = malloc((size_t)c * sizeof(double));
  r->f1 = malloc((size_t)c * sizeof(double));
  r->hamming = malloc((size_t)c * sizeof(double));
  r->brier = malloc((size_t)c * sizeof(double));
  r->support = malloc((size_t)c * sizeof(int64_t));
  r->class_names = calloc((size_t)c, sizeof(char *));
  if (!r->ap || !r->f1 || !r->hamming || !r->brier || !r->support || !r->class_names) {
    cli_eval_free(r);
    return cli_error("out of memory");
  }
  for (int64_t k = 0; k < c; ++k) {
    const char *name = model ? msc_model_class_name(model, k) : NULL;
    char tmp[32];
    if (!name) snprintf(tmp, sizeof tmp, "class%lld", (long long)k), name = tmp;
    r->class_names[k] = strdup(name);
  }
  msc_status st = msc_metrics_compute(probs, labels, n, c, threshold, r->m, MSC_METRIC_COUNT);
  if (st == MSC_OK)
    st = msc_metrics_per_class(probs, labels, n, c, threshold, r->ap, r->f1, r->hamming,
                               r->brier, r->support, (size_t)c);
  if (st != MSC_OK) {
    cli_eval_free(r);
    return cli_lib_error(st, "metrics");
  }
  if (single && c <= INT32_MAX - 1) {
    int rc = single_label_metrics(probs, labels, n, c, r);
    if (rc != EXIT_OK) {
      cli_eval_free(r);
      return rc;
    }
  }
  return EXIT_OK;
}

void cli_eval_print(const cli_eval_result *r, FILE *f, int per_class) {
  const double *m = r->m;
  int64_t skipped = (int64_t)m[MSC_METRIC_SKIPPED_CLASSES];
  fprintf(f, "  samples %lld, classes %lld, threshold %g\n", (long long)r->n, (long long)r->c,
          (double)r->threshold);
  if (r->single) {
    fprintf(f, "  single-label (arg max of each row)%s\n",
            r->unlabelled ? "" : ", every sample counted");
    if (r->unlabelled)
      fprintf(f, "    %lld samples without exactly one label left out\n",
              (long long)r->unlabelled);
    fprintf(f, "  accuracy        %.4f\n", r->cm.accuracy);
    fprintf(f, "  top-%lld accuracy  %.4f\n", (long long)r->top_k, r->top_k_acc);
    fprintf(f, "  macro F1        %.4f   (arg max; over the %d classes present)\n",
            r->cm.macro_f1, (int)r->cm.present);
    fprintf(f, "  mean IoU        %.4f\n", r->cm.miou);
    fprintf(f, "  multi-label view (threshold %g):\n", (double)r->threshold);
  }
  fprintf(f, "  macro AP        %.4f", m[MSC_METRIC_MACRO_AP]);
  if (skipped)
    fprintf(f, "   (over %lld classes; %lld without positives left out)\n",
            (long long)(r->c - skipped), (long long)skipped);
  else
    fputc('\n', f);
  if (skipped)
    fprintf(f, "  macro AP (=0)   %.4f   (those classes counted as AP 0, as scikit-learn)\n",
            m[MSC_METRIC_MACRO_AP_ZERO]);
  fprintf(f, "  micro AP        %.4f\n", m[MSC_METRIC_MICRO_AP]);
  fprintf(f, "  macro F1        %.4f\n", m[MSC_METRIC_MACRO_F1]);
  fprintf(f, "  micro F1        %.4f\n", m[MSC_METRIC_MICRO_F1]);
  fprintf(f, "  Hamming loss    %.4f\n", m[MSC_METRIC_HAMMING]);
  fprintf(f, "  Brier score     %.4f\n", m[MSC_METRIC_BRIER]);
  if (!per_class) return;
  int w = 5;
  for (int64_t k = 0; k < r->c; ++k) {
    int l = (int)strlen(r->class_names[k]);
    if (l > w) w = l;
  }
  if (w > 44) w = 44;
  fprintf(f, "\n  %-*s  %7s  %6s  %6s  %7s  %6s", w, "class", "support", "AP", "F1", "Hamming",
          "Brier");
  if (r->single) fprintf(f, "  %9s  %6s", "F1 argmax", "IoU");
  fputc('\n', f);
  for (int64_t k = 0; k < r->c; ++k) {
    char name[64];
    const char *s = r->class_names[k];
    if ((int)strlen(s) > w)
      snprintf(name, sizeof name, "%.*s...", w - 3, s);
    else
      snprintf(name, sizeof name, "%s", s);
    char ap[16];
    if (isnan(r->ap[k]))
      snprintf(ap, sizeof ap, "%6s", "-");
    else
      snprintf(ap, sizeof ap, "%6.4f", r->ap[k]);
    fprintf(f, "  %-*s  %7lld  %s  %6.4f  %7.4f  %6.4f", w, name, (long long)r->support[k], ap,
            r->f1[k], r->hamming[k], r->brier[k]);
    if (r->single) {
      if (isnan(r->argmax_f1[k]))
        fprintf(f, "  %9s  %6s", "-", "-");
      else
        fprintf(f, "  %9.4f  %6.4f", r->argmax_f1[k], r->iou[k]);
    }
    fputc('\n', f);
  }
}

json_t *cli_eval_json(const cli_eval_result *r) {
  json_t *o = json_object(), *m = json_object(), *pc = json_array();
  json_object_set_new(o, "samples", json_integer(r->n));
  json_object_set_new(o, "classes", json_integer(r->c));
  json_object_set_new(o, "threshold", json_real(r->threshold));
  json_object_set_new(m, "macro_ap", cli_json_num(r->m[MSC_METRIC_MACRO_AP]));
  json_object_set_new(m, "micro_ap", cli_json_num(r->m[MSC_METRIC_MICRO_AP]));
  json_object_set_new(m, "macro_f1", cli_json_num(r->m[MSC_METRIC_MACRO_F1]));
  json_object_set_new(m, "micro_f1", cli_json_num(r->m[MSC_METRIC_MICRO_F1]));
  json_object_set_new(m, "hamming", cli_json_num(r->m[MSC_METRIC_HAMMING]));
  json_object_set_new(m, "brier", cli_json_num(r->m[MSC_METRIC_BRIER]));
  json_object_set_new(m, "macro_ap_zero", cli_json_num(r->m[MSC_METRIC_MACRO_AP_ZERO]));
  json_object_set_new(m, "skipped_classes",
                      json_integer((json_int_t)r->m[MSC_METRIC_SKIPPED_CLASSES]));
  if (r->single) {
    json_t *s = json_object(), *cm = json_array();
    json_object_set_new(s, "accuracy", cli_json_num(r->cm.accuracy));
    json_object_set_new(s, "top_k", json_integer(r->top_k));
    json_object_set_new(s, "top_k_accuracy", cli_json_num(r->top_k_acc));
    json_object_set_new(s, "macro_f1", cli_json_num(r->cm.macro_f1));
    json_object_set_new(s, "miou", cli_json_num(r->cm.miou));
    json_object_set_new(s, "counted", json_integer(r->cm.counted));
    json_object_set_new(s, "present_classes", json_integer(r->cm.present));
    json_object_set_new(s, "left_out", json_integer(r->unlabelled));
    for (int64_t t = 0; t < r->c; ++t) {
      json_t *row = json_array();
      for (int64_t p = 0; p < r->c; ++p)
        json_array_append_new(row, json_integer(r->confusion[t * r->c + p]));
      json_array_append_new(cm, row);
    }
    json_object_set_new(s, "confusion", cm);
    json_object_set_new(o, "single_label", s);
  }
  json_object_set_new(o, "metrics", m);
  for (int64_t k = 0; k < r->c; ++k) {
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(r->class_names[k]));
    json_object_set_new(e, "support", json_integer(r->support[k]));
    json_object_set_new(e, "ap", cli_json_num(r->ap[k]));
    json_object_set_new(e, "f1", cli_json_num(r->f1[k]));
    json_object_set_new(e, "hamming", cli_json_num(r->hamming[k]));
    json_object_set_new(e, "brier", cli_json_num(r->brier[k]));
    if (r->single) {
      json_object_set_new(e, "argmax_f1", cli_json_num(r->argmax_f1[k]));
      json_object_set_new(e, "iou", cli_json_num(r->iou[k]));
    }
    json_array_append_new(pc, e);
  }
  json_object_set_new(o, "per_class", pc);
  return o;
}

/* ---- kNN ---------------------------------------------------------------------------------- */

static float *unit_rows(const float *x, int64_t n, int64_t d) {
  float *u = malloc((size_t)(n * d) * sizeof(float));
  if (!u) return NULL;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += (double)x[i * d + j] * x[i * d + j];
    double inv = 1.0 / fmax(sqrt(s), 1e-12);
    for (int64_t j = 0; j < d; ++j) u[i * d + j] = (float)(x[i * d + j] * inv);
  }
  return u;
}

int cli_knn_scores(const float *ref, const uint8_t *ref_labels, int64_t nr, const float *q,
                   int64_t nq, int64_t d, int64_t c, int64_t k, float *scores) {
  if (k > nr) k = nr;
  float *ur = unit_rows(ref, nr, d), *uq = unit_rows(q, nq, d);
  double *best = malloc((size_t)k * sizeof(double));
  int64_t *who = malloc((size_t)k * sizeof(int64_t));
  if (!ur || !uq || !best || !who) {
    free(ur), free(uq), free(best), free(who);
    return cli_error("out of memory for kNN");
  }
  for (int64_t i = 0; i < nq; ++i) {
    int64_t have = 0;
    for (int64_t j = 0; j < nr; ++j) {
      double s = 0;
      for (int64_t t = 0; t < d; ++t) s += (double)uq[i * d + t] * ur[j * d + t];
      /* Insert into the sorted top k; an equal similarity keeps the earlier index. */
      if (have == k && !(s > best[k - 1])) continue;
      int64_t p = have < k ? have++ : k - 1;
      while (p > 0 && s > best[p - 1]) {
        best[p] = best[p - 1], who[p] = who[p - 1];
        p--;
      }
      best[p] = s, who[p] = j;
    }
    for (int64_t cl = 0; cl < c; ++cl) {
      int64_t sum = 0;
      for (int64_t t = 0; t < have; ++t) sum += ref_labels[who[t] * c + cl];
      scores[i * c + cl] = (float)((double)sum / (double)have);
    }
  }
  free(ur), free(uq), free(best), free(who);
  return EXIT_OK;
}

/* ---- protocols ------------------------------------------------------------------------------- */

static int probe(cli_ctx *ctx, msc_model *model, int frozen, cli_progress *pg) {
  msc_dataset *train = NULL;
  int rc = cli_open_dataset(ctx, ctx->opts, NULL, 0, &train);
  if (rc != EXIT_OK) return rc;
  msc_options *o = cli_opts_copy(ctx->opts);
  if (!o) {
    msc_dataset_free(train);
    return cli_error("out of memory");
  }
  double lr = cli_float(ctx, "probe_lr", frozen ? 0.01 : 0.001);
  uint64_t seed = (uint64_t)cli_opt_int(ctx->opts, "seed", 42);
  msc_status st = MSC_OK;
  if (!cli_int(ctx, "keep_classifier", 0)) st = msc_model_reset_classifier(model, seed);
  if (st == MSC_OK) st = msc_options_set_string(o, "train.preset", "supervised");
  if (st == MSC_OK) st = msc_options_set_int(o, "train.freeze_encoders", frozen);
  if (st == MSC_OK) st = msc_options_set_float(o, "optim.lr", lr);
  if (st == MSC_OK) st = msc_options_set_int(o, "optim.warmup_steps", 0);
  if (st == MSC_OK) st = msc_options_set_int(o, "optim.total_steps", 0);
  if (st == MSC_OK) st = msc_train_configure(model, o);
  msc_options_free(o);
  if (st != MSC_OK) {
    msc_dataset_free(train);
    return cli_lib_error(st, "configuring the %s", frozen ? "linear probe" : "fine-tuning");
  }
  cli_train_job job = {
      .model = model,
      .train = train,
      .epochs = cli_int(ctx, "probe_epochs", 5),
      .batch = cli_int(ctx, "batch", 32),
      .workers = (int32_t)cli_int(ctx, "workers", 1),
      .seed = seed,
      .threshold = (float)cli_float(ctx, "threshold", 0.5),
      .title = frozen ? "linear probe" : "fine-tune",
      .progress = pg,
      .print_epochs = ctx->verbosity > 0,
  };
  if (job.epochs > 0) rc = cli_train_run(&job);
  msc_dataset_free(train);
  return rc;
}

int cli_evaluate(cli_ctx *ctx, msc_model *model, const char *protocol, const char *split,
                 cli_progress *pg, cli_eval_result *r) {
  int rc = EXIT_OK;
  int frozen = strcmp(protocol, "linear") == 0;
  if (frozen || strcmp(protocol, "finetune") == 0) {
    rc = probe(ctx, model, frozen, pg);
    if (rc != EXIT_OK) return rc;
  }
  msc_dataset *test = NULL;
  rc = cli_open_dataset(ctx, ctx->opts, split, 1, &test);
  if (rc != EXIT_OK) return rc;
  int64_t n = msc_dataset_size(test), c = msc_dataset_class_count(test);
  if (n == 0) {
    msc_dataset_free(test);
    return cli_error("the %s split of %s has no samples", split, cli_str(ctx, "data", "?"));
  }
  float *probs = NULL;
  uint8_t *labels = NULL;
  float threshold = (float)cli_float(ctx, "threshold", 0.5);
  if (strcmp(protocol, "knn") == 0) {
    int32_t which = MSC_EMBED_FUSED;
    rc = cli_parse_which(model, cli_str(ctx, "which", "fused"), &which);
    msc_dataset *train = NULL;
    if (rc == EXIT_OK) rc = cli_open_dataset(ctx, ctx->opts, NULL, 0, &train);
    float *er = NULL, *eq = NULL;
    uint8_t *yr = NULL;
    int64_t d = 0, d2 = 0;
    if (rc == EXIT_OK)
      rc = cli_infer(model, train, 64, pg, "embed (references)", NULL, &yr, which, &er, &d);
    if (rc == EXIT_OK)
      rc = cli_infer(model, test, 64, pg, "embed (queries)", NULL, &labels, which, &eq, &d2);
    if (rc == EXIT_OK && !(probs = malloc((size_t)(n * c) * sizeof(float))))
      rc = cli_error("out of memory");
    if (rc == EXIT_OK)
      rc = cli_knn_scores(er, yr, msc_dataset_size(train), eq, n, d, c, cli_int(ctx, "k", 10),
                          probs);
    free(er), free(eq), free(yr);
    msc_dataset_free(train);
  } else {
    rc = cli_infer(model, test, 64, pg, "predict", &probs, &labels, 0, NULL, NULL);
  }
  int single = cli_model_single_label(model) || msc_dataset_single_label(test);
  if (rc == EXIT_OK) rc = cli_eval_metrics(probs, labels, n, c, threshold, single, model, r);
  free(probs);
  free(labels);
  msc_dataset_free(test);
  return rc;
}

/* ---- segmentation ------------------------------------------------------------------------- */

int cli_model_segmentation(const msc_model *model) {
  msc_options *o = NULL;
  char task[32] = "";
  if (msc_model_options(model, &o) == MSC_OK)
    msc_options_get_string(o, "task", task, sizeof task, NULL);
  msc_options_free(o);
  return strcmp(task, "segmentation") == 0;
}

int cli_eval_segmentation(cli_ctx *ctx, msc_model *model, const char *split, cli_progress *pg,
                          cli_seg_result *r) {
  memset(r, 0, sizeof *r);
  msc_dataset *ds = NULL;
  /* The whole split, as the other protocols score it: --fraction and --labeled-fraction
   * say what trains, not what is scored. */
  int rc = cli_open_dataset(ctx, ctx->opts, split, 1, &ds);
  if (rc != EXIT_OK) return rc;
  rc = cli_seg_score(model, ds, cli_int(ctx, "batch", 32), pg, "segmentation", r);
  msc_dataset_free(ds);
  return rc;
}

void cli_seg_print(const cli_seg_result *r, const msc_model *model, FILE *f) {
  fprintf(f, "  pixel accuracy %.4f  mIoU %.4f  macro F1 %.4f\n", r->metrics.accuracy,
          r->metrics.miou, r->metrics.macro_f1);
  for (int64_t k = 0; k < r->c; ++k)
    fprintf(f, "  %-28s IoU %.4f  F1 %.4f\n", msc_model_class_name(model, k), r->iou[k],
            r->f1[k]);
}

json_t *cli_seg_json(const cli_seg_result *r, const msc_model *model) {
  json_t *doc = json_object(), *classes = json_array();
  json_object_set_new(doc, "pixels", json_integer(r->metrics.counted));
  json_object_set_new(doc, "pixel_accuracy", json_real(r->metrics.accuracy));
  json_object_set_new(doc, "miou", json_real(r->metrics.miou));
  json_object_set_new(doc, "macro_f1", json_real(r->metrics.macro_f1));
  for (int64_t k = 0; k < r->c; ++k) {
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(msc_model_class_name(model, k)));
    json_object_set_new(e, "iou", cli_json_num(r->iou[k]));
    json_object_set_new(e, "f1", cli_json_num(r->f1[k]));
    json_array_append_new(classes, e);
  }
  json_object_set_new(doc, "classes", classes);
  return doc;
}
