/*
 * ridge.c — closed-form ridge regression (ridge.h): standardise, centre, normal equations,
 * Cholesky. The systems are small (the embedding size plus one), so the O(d³)
 * factorisation and the O(n·d²) Gram matrix are cheap next to computing the embeddings.
 */
#include "ridge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ridge_solve(const double *a, const double *b, int64_t d, int64_t k, double lambda,
                double *w) {
  double *l = malloc((size_t)(d * d) * sizeof *l);
  if (!l) return RIDGE_NO_MEMORY;
  /* L Lᵀ = A + λI, L lower triangular. */
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = a[i * d + j] + (i == j ? lambda : 0.0);
      for (int64_t p = 0; p < j; ++p) s -= l[i * d + p] * l[j * d + p];
      if (i == j) {
        /* A pivot that vanishes against the diagonal's size: singular to working precision. */
        if (!(s > 1e-300) || !(s > 1e-13 * fabs(a[i * d + i] + lambda))) {
          free(l);
          return RIDGE_NOT_PD;
        }
        l[i * d + i] = sqrt(s);
      } else {
        l[i * d + j] = s / l[j * d + j];
      }
    }
  for (int64_t c = 0; c < k; ++c) {
    /* L z = b (z kept in w's column), then Lᵀ w = z. */
    for (int64_t i = 0; i < d; ++i) {
      double s = b[i * k + c];
      for (int64_t p = 0; p < i; ++p) s -= l[i * d + p] * w[p * k + c];
      w[i * k + c] = s / l[i * d + i];
    }
    for (int64_t i = d - 1; i >= 0; --i) {
      double s = w[i * k + c];
      for (int64_t p = i + 1; p < d; ++p) s -= l[p * d + i] * w[p * k + c];
      w[i * k + c] = s / l[i * d + i];
    }
  }
  free(l);
  return RIDGE_OK;
}

void ridge_free(ridge_model *m) {
  free(m->mean), free(m->scale), free(m->w);
  memset(m, 0, sizeof *m);
}

int ridge_fit(const double *x, const double *y, int64_t n, int64_t d, double lambda,
              ridge_model *m) {
  memset(m, 0, sizeof *m);
  m->d = d;
  m->mean = calloc((size_t)d, sizeof(double));
  m->scale = calloc((size_t)d, sizeof(double));
  m->w = calloc((size_t)d, sizeof(double));
  double *a = calloc((size_t)(d * d), sizeof(double)), *b = calloc((size_t)d, sizeof(double));
  double *row = malloc((size_t)d * sizeof(double));
  int rc = RIDGE_OK;
  if (!m->mean || !m->scale || !m->w || !a || !b || !row) {
    rc = RIDGE_NO_MEMORY;
    goto done;
  }
  int64_t used = 0;
  double ysum = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!isfinite(y[i])) continue;
    for (int64_t j = 0; j < d; ++j)
      if (!isfinite(x[i * d + j])) {
        rc = RIDGE_NOT_FINITE;
        goto done;
      }
    used++, ysum += y[i];
    for (int64_t j = 0; j < d; ++j) m->mean[j] += x[i * d + j];
  }
  if (used == 0) {
    rc = RIDGE_NO_ROWS;
    goto done;
  }
  m->rows = used;
  m->bias = ysum / (double)used;
  for (int64_t j = 0; j < d; ++j) m->mean[j] /= (double)used;
  for (int64_t i = 0; i < n; ++i) {
    if (!isfinite(y[i])) continue;
    for (int64_t j = 0; j < d; ++j) {
      double v = x[i * d + j] - m->mean[j];
      m->scale[j] += v * v;
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    double s = sqrt(m->scale[j] / (double)used);
    m->scale[j] = s < 1e-12 ? 1.0 : s;
  }
  /* A = X̃ᵀX̃ (lower triangle, mirrored), b = X̃ᵀ(y − ȳ). */
  for (int64_t i = 0; i < n; ++i) {
    if (!isfinite(y[i])) continue;
    for (int64_t j = 0; j < d; ++j) row[j] = (x[i * d + j] - m->mean[j]) / m->scale[j];
    double yc = y[i] - m->bias;
    for (int64_t j = 0; j < d; ++j) {
      b[j] += row[j] * yc;
      for (int64_t p = 0; p <= j; ++p) a[j * d + p] += row[j] * row[p];
    }
  }
  double trace = 0;
  for (int64_t j = 0; j < d; ++j) {
    trace += a[j * d + j];
    for (int64_t p = 0; p < j; ++p) a[p * d + j] = a[j * d + p];
  }
  if (lambda < 0) lambda = trace > 0 ? 1e-3 * trace / (double)d : 1e-3;
  m->lambda = lambda;
  rc = ridge_solve(a, b, d, 1, lambda, m->w);
done:
  free(a), free(b), free(row);
  if (rc != RIDGE_OK) {
    ridge_free(m);
    m->d = d;
  }
  return rc;
}

double ridge_predict(const ridge_model *m, const double *x) {
  double s = m->bias;
  for (int64_t j = 0; j < m->d; ++j) s += m->w[j] * (x[j] - m->mean[j]) / m->scale[j];
  return s;
}
