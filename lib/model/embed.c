/*
 * embed.c — inference: msc_embed (features, fused features, unit projections) and
 * msc_predict (class probabilities), msc_predict_mask (per-pixel classes). Each call takes an executor from the model's pool,
 * so calls on one model may run concurrently from several threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/batch.h"
#include "backend/backend_call.h"
#include "common/internal.h"
#include "model/model.h"

typedef struct target {
  int32_t node;
  int64_t dim;
  int normalise; /* unit-normalise each row (projections) */
  int fused;     /* reads h_f: a batch may lack modalities (docs/model.md) */
} target;

static msc_status resolve(const msc_model *m, int32_t which, target *t) {
  const msci_graph *g = &m->graph;
  int32_t i = which & 0xff;
  memset(t, 0, sizeof *t);
  if (which == MSC_EMBED_FUSED) {
    t->node = g->fused, t->dim = g->fused_dim, t->fused = 1;
  } else if (which == MSC_EMBED_FUSED_PROJECTION) {
    t->node = g->fused_proj, t->dim = g->proj_dim, t->normalise = 1, t->fused = 1;
  } else if ((which & ~0xff) == MSC_EMBED_MODALITY(0) && i < m->cfg.n_mod) {
    t->node = g->feat[i], t->dim = g->feat_dim[i];
  } else if ((which & ~0xff) == MSC_EMBED_MODALITY_PROJECTION(0) && i < m->cfg.n_mod) {
    t->node = g->proj[i], t->dim = g->proj_dim, t->normalise = 1;
  } else {
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "embedding selector 0x%x is not valid for a model "
                     "with %d modalities",
                     (unsigned)which, (int)m->cfg.n_mod);
  }
  return MSC_OK;
}

MSC_API msc_status msc_model_embedding_size(const msc_model *m, int32_t which, int64_t *size) {
  if (!m || !size)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_embedding_size: NULL argument");
  target t;
  MSCI_TRY(resolve(m, which, &t));
  *size = t.dim;
  return MSC_OK;
}

/* Normalises one modality's patches with the model's statistics into the input tensor
 * where the backend keeps it in host memory (API 14), else into the executor's staging
 * buffer and uploads them; a non-finite pixel is refused in the same pass. The samples
 * are split between the threads (tiny embed spent 6 % of a call here on one thread). */
static msc_status stage_input(msc_model *m, msci_exec *e, int32_t k, const msc_batch *b) {
  const msci_batch_modality *bm = NULL;
  MSCI_TRY(msci_model_input(m, k, b, &bm));
  int64_t plane = bm->h * bm->w, chw = bm->c * plane;
  int64_t dims[4] = {b->n, bm->c, bm->h, bm->w};
  float *dst = NULL;
  MSCI_TRY(msci_exec_input_at(m, e, k, dims, &dst));
  /* Samples on the calling thread's OpenMP team (the backend set its size); the lowest
   * failing sample is the one reported, whatever the threads did (as train.c's views). */
  int64_t err_n = b->n, err_at = -1;
#pragma omp parallel for schedule(static) if (b->n > 1)
  for (int64_t n = 0; n < b->n; ++n) {
    int64_t at = msci_model_normalise(m, k, bm, n, dst + n * chw);
    if (at >= 0) {
#pragma omp critical(msci_stage_input)
      if (n < err_n) err_n = n, err_at = at;
    }
  }
  if (err_at >= 0) return msci_model_nonfinite(m, k, bm, err_n, err_at);
  return msci_exec_input_done(m, e, k, dims, dst);
}

/* Which modalities a call on h_f runs without (docs/model.md, "Missing modalities"):
 * those the batch has no array for, with at least one present; the executor then reads
 * zeros for their features (uploaded here), scales the present blocks by
 * n_mod / n_present, and never runs their encoders. */
static msc_status prepare_absent(msc_model *m, msci_exec *e, const msc_batch *b) {
  const int32_t nm = m->cfg.n_mod;
  int32_t present = 0;
  for (int32_t k = 0; k < nm; ++k) {
    e->absent[k] = msci_batch_find(b, m->cfg.mod[k].name) == NULL;
    present += !e->absent[k];
  }
  if (present == 0) {
    memset(e->absent, 0, sizeof e->absent);
    return msci_fail(MSC_E_NOT_FOUND,
                     "the batch has none of the model's modalities (%s%s%s): the fused "
                     "features need at least one",
                     m->cfg.mod[0].name, nm > 1 ? ", " : "", nm > 1 ? m->cfg.mod[1].name : "");
  }
  if (present == nm) return MSC_OK;
  if (m->cfg.fusion_xattn) {
    int32_t k = 0;
    while (!e->absent[k]) ++k;
    memset(e->absent, 0, sizeof e->absent);
    return msci_fail(MSC_E_NOT_FOUND,
                     "the batch has no '%s' array, and a model with fusion xattn needs every "
                     "modality for the fused features (each attends to the others; "
                     "docs/model.md, \"Fusion\"); the per-modality outputs work without it",
                     m->cfg.mod[k].name);
  }
  /* One mask row per sample: every sample lacks the same modalities. */
  uint8_t *keep = msci_exec_host(e, MSCI_EXEC_HOST_AUG, (size_t)(b->n * nm));
  if (!keep) return MSC_E_OUT_OF_MEMORY;
  for (int64_t r = 0; r < b->n; ++r)
    for (int32_t k = 0; k < nm; ++k) keep[r * nm + k] = !e->absent[k];
  MSCI_TRY(msci_exec_set_fuse_mask(m, e, b->n, keep));
  for (int32_t k = 0; k < nm; ++k) {
    if (!e->absent[k]) continue;
    size_t count = (size_t)b->n * (size_t)m->graph.feat_dim[k];
    if (!e->zero_feat[k]) MSCI_TRY(msci_be_tensor_create(m->be, e->ctx, &e->zero_feat[k]));
    MSCI_TRY(msci_exec_stage(e, count));
    memset(e->stage, 0, count * sizeof(float));
    int64_t dims[2] = {b->n, m->graph.feat_dim[k]};
    MSCI_TRY(msci_be_tensor_upload(m->be, e->zero_feat[k], 2, dims, e->stage));
  }
  return MSC_OK;
}

/* Finite inputs can still overflow float32 inside the network (pixels of ±3e38, or of
 * 1e20 whose squares the batch norm would need): the output is then NaN or infinite,
 * and every output API refuses it rather than hand it out. One pass over the values
 * just copied out, while they are in cache; the probabilities, classes and unit rows
 * computed from finite values are finite. */
static msc_status check_output(const float *out, size_t len, int64_t dim, const char *fn) {
  for (size_t i = 0; i < len; ++i)
    if (!isfinite(out[i]))
      return msci_fail(MSC_E_NUMERICAL,
                       "%s: the model's output is not finite (sample %lld, value %lld): the "
                       "input values are finite but so large that the activations overflow "
                       "float32",
                       fn, (long long)(i / (size_t)dim), (long long)(i % (size_t)dim));
  return MSC_OK;
}

/* Runs the graph up to t->node for the batch and copies the n × dim result out, refusing
 * a non-finite one (MSC_E_NUMERICAL; fn names the API function in the message). */
static msc_status run(msc_model *m, const msc_batch *b, const target *t, float *out,
                      size_t out_len, const char *fn) {
  if (b->n == 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "the batch is empty");
  size_t need_len = (size_t)b->n * (size_t)t->dim;
  if (out_len < need_len)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "output holds %zu floats, %zu needed (%lld × %lld)", out_len, need_len,
                     (long long)b->n, (long long)t->dim);
  uint8_t need_input[MSCI_MAX_MODALITIES];
  msci_exec *e = NULL;
  MSCI_TRY(msci_exec_acquire(m, b->n, 0, &e));
  msc_status st = t->fused ? prepare_absent(m, e, b) : MSC_OK;
  /* The executor's own marks: a steady call allocates nothing here. */
  msci_graph_mark_present(&m->graph, t->node, e->absent, e->need, need_input);
  for (int32_t k = 0; st == MSC_OK && k < m->cfg.n_mod; ++k)
    if (need_input[k]) st = stage_input(m, e, k, b);
  if (st == MSC_OK) st = msci_exec_forward(m, e, e->need);
  if (st == MSC_OK) st = msci_be_tensor_download(m->be, e->act[t->node], out, need_len);
  if (st == MSC_OK) st = check_output(out, need_len, t->dim, fn);
  /* The executor goes back to the pool as it came: every modality present. */
  e->fuse_scale = NULL;
  memset(e->absent, 0, sizeof e->absent);
  msci_exec_release(m, e);
  return st;
}

static msc_status check_args(const msc_model *m, const msc_batch *b, const float *out,
                             const char *fn) {
  if (!m || !b || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: NULL argument", fn);
  return MSC_OK;
}

MSC_API msc_status msc_embed(msc_model *m, const msc_batch *b, int32_t which, float *out,
                             size_t out_len) {
  MSCI_TRY(check_args(m, b, out, "msc_embed"));
  target t;
  MSCI_TRY(resolve(m, which, &t));
  MSCI_TRY(run(m, b, &t, out, out_len, "msc_embed"));
  if (t.normalise)
    for (int64_t n = 0; n < b->n; ++n) {
      float *row = out + n * t.dim;
      double ss = 0;
      for (int64_t k = 0; k < t.dim; ++k) ss += (double)row[k] * row[k];
      double norm = sqrt(ss);
      float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
      for (int64_t k = 0; k < t.dim; ++k) row[k] *= inv;
    }
  return MSC_OK;
}

MSC_API msc_status msc_predict(msc_model *m, const msc_batch *b, float *probs, size_t len) {
  MSCI_TRY(check_args(m, b, probs, "msc_predict"));
  target t = {m->graph.logits, m->graph.classes, 0, 1};
  MSCI_TRY(run(m, b, &t, probs, len, "msc_predict"));
  if (m->cfg.single_label) { /* one class per sample: softmax over each row */
    for (int64_t n = 0; n < b->n; ++n) {
      float *row = probs + n * t.dim;
      float mx = row[0];
      for (int64_t k = 1; k < t.dim; ++k)
        if (row[k] > mx) mx = row[k];
      double sum = 0.0; /* every term <= 1, the maximum's exactly 1: no overflow */
      for (int64_t k = 0; k < t.dim; ++k) sum += exp((double)row[k] - (double)mx);
      for (int64_t k = 0; k < t.dim; ++k) row[k] = (float)(exp((double)row[k] - mx) / sum);
    }
    return MSC_OK;
  }
  size_t count = (size_t)b->n * (size_t)t.dim;
  for (size_t i = 0; i < count; ++i) {
    float x = probs[i];
    /* Stable logistic for either sign of x. */
    probs[i] = x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
  }
  return MSC_OK;
}

MSC_API msc_status msc_predict_mask(msc_model *m, const msc_batch *b, int32_t *classes,
                                    size_t classes_len, float *probs, size_t probs_len) {
  if (!m || !b || !classes)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_predict_mask: NULL argument");
  const msci_graph *g = &m->graph;
  if (g->seg_logits < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_predict_mask: the model has no decoder (option task = contrastive); "
                     "create it with task = segmentation");
  const int64_t *od = g->nodes[g->seg_logits].out;
  const int64_t c = od[1], plane = od[2] * od[3];
  if (b->n == 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "the batch is empty");
  const size_t pixels = (size_t)b->n * (size_t)plane, values = pixels * (size_t)c;
  if (classes_len < pixels)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "classes holds %zu values, %zu needed (%lld × %lld × %lld)", classes_len,
                     pixels, (long long)b->n, (long long)od[2], (long long)od[3]);
  if (probs && probs_len < values)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "probs holds %zu floats, %zu needed (%lld × %lld × %lld × %lld)",
                     probs_len, values, (long long)b->n, (long long)c, (long long)od[2],
                     (long long)od[3]);
  /* The logits go where the probabilities will be, or into scratch of this call. */
  float *logits = probs ? probs : malloc(values * sizeof(float));
  if (!logits) return msci_fail(MSC_E_OUT_OF_MEMORY, "msc_predict_mask: %zu logits", values);
  target t = {g->seg_logits, c * plane, 0, 0};
  msc_status st = run(m, b, &t, logits, values, "msc_predict_mask");
  for (int64_t n = 0; st == MSC_OK && n < b->n; ++n)
    for (int64_t p = 0; p < plane; ++p) {
      float *x = logits + (size_t)n * (size_t)(c * plane) + (size_t)p;
      /* The first of equal maxima wins, as numpy's and torch's argmax. */
      int32_t best = 0;
      for (int64_t k = 1; k < c; ++k)
        if (x[k * plane] > x[best * plane]) best = (int32_t)k;
      classes[(size_t)n * (size_t)plane + (size_t)p] = best;
      if (!probs) continue;
      const double mx = x[best * plane];
      double sum = 0.0; /* every term <= 1, the maximum's exactly 1 */
      for (int64_t k = 0; k < c; ++k) sum += exp((double)x[k * plane] - mx);
      for (int64_t k = 0; k < c; ++k)
        x[k * plane] = (float)(exp((double)x[k * plane] - mx) / sum);
    }
  if (!probs) free(logits);
  return st;
}

/* One float32 forward of every node on b, observing the inputs of the conv2d and linear
 * nodes (model_int8.c). Every modality must be present. */
static msc_status calibrate_run(msc_model *m, const msc_batch *b) {
  if (b->n == 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "the batch is empty");
  const int32_t nn = m->graph.n_nodes;
  if (!m->calib.max) {
    m->calib.max = calloc((size_t)nn, sizeof *m->calib.max);
    m->calib.neg = calloc((size_t)nn, 1);
    if (!m->calib.max || !m->calib.neg) {
      msci_int8_free(m);
      return msci_fail(MSC_E_OUT_OF_MEMORY, "calibration ranges");
    }
  }
  msci_exec *e = NULL;
  MSCI_TRY(msci_exec_acquire(m, b->n, 0, &e));
  memset(e->need, 1, (size_t)nn);
  msc_status st = MSC_OK;
  for (int32_t k = 0; st == MSC_OK && k < m->cfg.n_mod; ++k) st = stage_input(m, e, k, b);
  if (st == MSC_OK) st = msci_exec_forward(m, e, e->need);
  msci_exec_release(m, e);
  return st;
}

MSC_API msc_status msc_model_calibrate(msc_model *m, const msc_batch *b) {
  if (!m) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_calibrate: model is NULL");
  if (m->precision != MBK_PRECISION_INT8)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_model_calibrate: the model runs in precision %s; calibration is for "
                     "precision int8 (create or load the model with precision = int8)",
                     m->precision == MBK_PRECISION_BF16 ? "bf16" : "f32");
  if (!b) { /* forget every range: the model is uncalibrated again */
    msci_int8_free(m);
    return MSC_OK;
  }
  /* Copies of the ranges: a failed batch leaves them as they were. */
  const int32_t nn = m->graph.n_nodes;
  float *old_max = NULL;
  uint8_t *old_neg = NULL;
  if (m->calib.max) {
    old_max = malloc((size_t)nn * sizeof *old_max);
    old_neg = malloc((size_t)nn);
    if (!old_max || !old_neg) {
      free(old_max);
      free(old_neg);
      return msci_fail(MSC_E_OUT_OF_MEMORY, "msc_model_calibrate");
    }
    memcpy(old_max, m->calib.max, (size_t)nn * sizeof *old_max);
    memcpy(old_neg, m->calib.neg, (size_t)nn);
  }
  m->calib.active = 1;
  m->calib.gen++;
  msc_status st = calibrate_run(m, b);
  m->calib.active = 0;
  m->calib.gen++;
  if (st == MSC_OK) {
    m->calib.batches++;
  } else if (old_max) {
    memcpy(m->calib.max, old_max, (size_t)nn * sizeof *old_max);
    memcpy(m->calib.neg, old_neg, (size_t)nn);
  } else if (m->calib.batches == 0) {
    msci_int8_free(m); /* the first batch failed: nothing recorded */
  }
  free(old_max);
  free(old_neg);
  return st;
}
