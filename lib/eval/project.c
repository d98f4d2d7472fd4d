/*
 * project.c — 2-D (or k-D) projections of embeddings for pictures (docs/metrics.md,
 * "Projections"): PCA, and exact t-SNE as scikit-learn's TSNE(method="exact",
 * init="pca") computes it.
 *
 * PCA: the k leading eigenvectors of the covariance of the centred rows, by block
 * subspace iteration with a Rayleigh–Ritz step (Jacobi on the small block). It works on
 * the D × D covariance, or on the N × N Gram matrix when N < D (the components are then
 * Xᵀu/‖Xᵀu‖), so the dense matrix is min(N, D)². All arithmetic is double.
 *
 * t-SNE (van der Maaten & Hinton 2008): conditional Gaussian affinities calibrated by
 * binary search to the perplexity, symmetrised; Student-t similarities in 2-D; gradient
 * descent with momentum (0.5, then 0.8), early exaggeration 12 for the first 250
 * iterations, per-coordinate gains (+0.2 / ×0.8, at least 0.01) and the learning rate
 * max(N / 12 / 4, 50) — scikit-learn's "auto". Exact: O(N²) memory (P in float) and
 * O(N²) time per iteration, so N is capped (MSC_TSNE_MAX_SAMPLES).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

static msc_status check_rows(const char *fn, const float *x, int64_t n, int64_t d) {
  if (!x) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: x is NULL", fn);
  if (n < 2 || d < 1 || n > INT32_MAX || d > INT64_MAX / n)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n = %lld, d = %lld: need n >= 2, d >= 1", fn,
                     (long long)n, (long long)d);
  for (int64_t i = 0; i < n * d; ++i)
    if (!isfinite(x[i]))
      return msci_fail(MSC_E_NUMERICAL, "%s: x[%lld][%lld] is %s", fn, (long long)(i / d),
                       (long long)(i % d), isnan(x[i]) ? "NaN" : "infinite");
  return MSC_OK;
}

/* Eigen-decomposition of the symmetric m × m matrix a (destroyed) by cyclic Jacobi:
 * eigenvalues into w, eigenvectors into the columns of v (row-major), sorted by
 * decreasing eigenvalue. */
static void jacobi_eigen(double *a, int64_t m, double *w, double *v) {
  for (int64_t i = 0; i < m * m; ++i) v[i] = 0.0;
  for (int64_t i = 0; i < m; ++i) v[i * m + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int64_t p = 0; p < m; ++p)
      for (int64_t q = p + 1; q < m; ++q) off += a[p * m + q] * a[p * m + q];
    if (off < 1e-300) break;
    for (int64_t p = 0; p < m; ++p)
      for (int64_t q = p + 1; q < m; ++q) {
        double apq = a[p * m + q];
        if (fabs(apq) < 1e-300) continue;
        double theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
        double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
        for (int64_t k = 0; k < m; ++k) { /* columns p, q */
          double akp = a[k * m + p], akq = a[k * m + q];
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < m; ++k) { /* rows p, q */
          double apk = a[p * m + k], aqk = a[q * m + k];
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < m; ++k) {
          double vkp = v[k * m + p], vkq = v[k * m + q];
          v[k * m + p] = c * vkp - s * vkq;
          v[k * m + q] = s * vkp + c * vkq;
        }
      }
  }
  for (int64_t i = 0; i < m; ++i) w[i] = a[i * m + i];
  for (int64_t i = 0; i < m; ++i) { /* selection sort, decreasing */
    int64_t best = i;
    for (int64_t j = i + 1; j < m; ++j)
      if (w[j] > w[best]) best = j;
    if (best == i) continue;
    double t = w[i];
    w[i] = w[best], w[best] = t;
    for (int64_t k = 0; k < m; ++k) {
      t = v[k * m + i];
      v[k * m + i] = v[k * m + best], v[k * m + best] = t;
    }
  }
}

/* Orthonormalises the b columns of q (s × b, row-major) by modified Gram–Schmidt; a
 * column that vanishes is replaced by a unit vector orthogonal to the others. */
static void orthonormalise(double *q, int64_t s, int64_t b) {
  for (int64_t j = 0; j < b; ++j) {
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t i = 0; i < j; ++i) {
        double dot = 0.0;
        for (int64_t r = 0; r < s; ++r) dot += q[r * b + i] * q[r * b + j];
        for (int64_t r = 0; r < s; ++r) q[r * b + j] -= dot * q[r * b + i];
      }
    double nrm = 0.0;
    for (int64_t r = 0; r < s; ++r) nrm += q[r * b + j] * q[r * b + j];
    nrm = sqrt(nrm);
    if (nrm < 1e-150) { /* rank-deficient: any direction orthogonal to the others */
      for (int64_t r = 0; r < s; ++r) q[r * b + j] = (r == (j % s)) ? 1.0 : 0.0;
      j--; /* (orthogonalise the replacement) */
      continue;
    }
    for (int64_t r = 0; r < s; ++r) q[r * b + j] /= nrm;
  }
}

/* The k leading eigenpairs of the symmetric s × s matrix c: eigenvalues into w[0..k),
 * eigenvectors into the columns of u (s × k). Block subspace iteration on b = k + 8
 * (at most s) columns with Rayleigh–Ritz each round, until the Ritz values settle. */
static int top_eigen(const double *c, int64_t s, int64_t k, double *w, double *u) {
  int64_t b = k + 8 < s ? k + 8 : s;
  double *q = malloc((size_t)(s * b) * sizeof *q), *y = malloc((size_t)(s * b) * sizeof *y);
  double *h = malloc((size_t)(b * b) * sizeof *h), *hv = malloc((size_t)(b * b) * sizeof *hv);
  double *hw = malloc((size_t)b * sizeof *hw), *prev = malloc((size_t)b * sizeof *prev);
  if (!q || !y || !h || !hv || !hw || !prev) {
    free(q), free(y), free(h), free(hv), free(hw), free(prev);
    return -1;
  }
  /* a fixed, well-spread start: the same input gives the same bits */
  for (int64_t r = 0; r < s; ++r)
    for (int64_t j = 0; j < b; ++j) q[r * b + j] = sin((double)(r + 1) * (double)(j + 1) * 0.7);
  orthonormalise(q, s, b);
  for (int64_t j = 0; j < b; ++j) prev[j] = NAN;
  for (int it = 0; it < 5000; ++it) {
    for (int64_t r = 0; r < s; ++r) /* y = c q */
      for (int64_t j = 0; j < b; ++j) {
        double t = 0.0;
        for (int64_t t2 = 0; t2 < s; ++t2) t += c[r * s + t2] * q[t2 * b + j];
        y[r * b + j] = t;
      }
    for (int64_t i = 0; i < b; ++i) /* h = qᵀ c q */
      for (int64_t j = 0; j < b; ++j) {
        double t = 0.0;
        for (int64_t r = 0; r < s; ++r) t += q[r * b + i] * y[r * b + j];
        h[i * b + j] = t;
      }
    jacobi_eigen(h, b, hw, hv);
    for (int64_t r = 0; r < s; ++r) { /* q = (c q) hv, the Ritz directions, one step on */
      double tmp[64];                 /* b <= 64: k <= 56 */
      for (int64_t j = 0; j < b; ++j) {
        double t = 0.0;
        for (int64_t i = 0; i < b; ++i) t += y[r * b + i] * hv[i * b + j];
        tmp[j] = t;
      }
      memcpy(q + r * b, tmp, (size_t)b * sizeof *tmp);
    }
    orthonormalise(q, s, b);
    int settled = 1;
    for (int64_t j = 0; j < k; ++j)
      if (!(fabs(hw[j] - prev[j]) <= 1e-13 * (fabs(hw[0]) + 1e-300))) settled = 0;
    for (int64_t j = 0; j < b; ++j) prev[j] = hw[j];
    if (settled && it > 2) break;
  }
  /* final Rayleigh–Ritz on the converged block */
  for (int64_t r = 0; r < s; ++r)
    for (int64_t j = 0; j < b; ++j) {
      double t = 0.0;
      for (int64_t t2 = 0; t2 < s; ++t2) t += c[r * s + t2] * q[t2 * b + j];
      y[r * b + j] = t;
    }
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < b; ++j) {
      double t = 0.0;
      for (int64_t r = 0; r < s; ++r) t += q[r * b + i] * y[r * b + j];
      h[i * b + j] = t;
    }
  jacobi_eigen(h, b, hw, hv);
  for (int64_t j = 0; j < k; ++j) {
    w[j] = hw[j];
    for (int64_t r = 0; r < s; ++r) {
      double t = 0.0;
      for (int64_t i = 0; i < b; ++i) t += q[r * b + i] * hv[i * b + j];
      u[r * k + j] = t;
    }
  }
  free(q), free(y), free(h), free(hv), free(hw), free(prev);
  return 0;
}

MSC_API msc_status msc_project_pca(const float *x, int64_t n, int64_t d, int64_t k, float *out,
                                   double *variance) {
  static const char fn[] = "msc_project_pca";
  msc_status st = check_rows(fn, x, n, d);
  if (st != MSC_OK) return st;
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  const int64_t s = n < d ? n : d; /* the side of the dense matrix */
  if (k < 1 || k > s || k > 56)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: k = %lld, must be in 1 .. min(n, d, 56) = %lld", fn, (long long)k,
                     (long long)(s < 56 ? s : 56));
  if (s > 8192)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: min(n, d) = %lld is above 8192 (the dense matrix would not fit)", fn,
                     (long long)s);
  double *xc = malloc((size_t)(n * d) * sizeof *xc), *mean = calloc((size_t)d, sizeof *mean);
  double *c = malloc((size_t)(s * s) * sizeof *c), *w = malloc((size_t)k * sizeof *w);
  double *u = malloc((size_t)(s * k) * sizeof *u),
         *comp = malloc((size_t)(d * k) * sizeof *comp);
  if (!xc || !mean || !c || !w || !u || !comp) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory (n = %lld, d = %lld)", fn,
                   (long long)n, (long long)d);
    goto out;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += x[i * d + j];
  for (int64_t j = 0; j < d; ++j) mean[j] /= (double)n;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) xc[i * d + j] = x[i * d + j] - mean[j];
  if (s == d) { /* covariance-like XᵀX */
#pragma omp parallel for schedule(dynamic, 8) if (n * d * d >= (1 << 20))
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = a; b < d; ++b) {
        double t = 0.0;
        for (int64_t i = 0; i < n; ++i) t += xc[i * d + a] * xc[i * d + b];
        c[a * d + b] = c[b * d + a] = t;
      }
  } else { /* Gram X Xᵀ */
#pragma omp parallel for schedule(dynamic, 8) if (n * n * d >= (1 << 20))
    for (int64_t a = 0; a < n; ++a)
      for (int64_t b = a; b < n; ++b) {
        double t = 0.0;
        for (int64_t j = 0; j < d; ++j) t += xc[a * d + j] * xc[b * d + j];
        c[a * n + b] = c[b * n + a] = t;
      }
  }
  if (top_eigen(c, s, k, w, u) != 0) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", fn);
    goto out;
  }
  for (int64_t j = 0; j < k; ++j) {
    if (s == d) {
      for (int64_t a = 0; a < d; ++a) comp[a * k + j] = u[a * k + j];
    } else { /* v = Xᵀu / ‖Xᵀu‖ */
      double nrm = 0.0;
      for (int64_t a = 0; a < d; ++a) {
        double t = 0.0;
        for (int64_t i = 0; i < n; ++i) t += xc[i * d + a] * u[i * k + j];
        comp[a * k + j] = t;
        nrm += t * t;
      }
      nrm = sqrt(nrm);
      for (int64_t a = 0; a < d; ++a) comp[a * k + j] = nrm > 0 ? comp[a * k + j] / nrm : 0.0;
    }
    /* sign: the coordinate of largest magnitude is positive (deterministic pictures) */
    int64_t big = 0;
    for (int64_t a = 1; a < d; ++a)
      if (fabs(comp[a * k + j]) > fabs(comp[big * k + j])) big = a;
    if (comp[big * k + j] < 0)
      for (int64_t a = 0; a < d; ++a) comp[a * k + j] = -comp[a * k + j];
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double t = 0.0;
      for (int64_t a = 0; a < d; ++a) t += xc[i * d + a] * comp[a * k + j];
      out[i * k + j] = (float)t;
    }
  if (variance)
    for (int64_t j = 0; j < k; ++j) variance[j] = (w[j] > 0 ? w[j] : 0.0) / (double)(n - 1);
out:
  free(xc), free(mean), free(c), free(w), free(u), free(comp);
  return st;
}

/* Row i of the conditional affinities P(j|i) for squared distances d2 (row i, n entries)
 * with the precision found by binary search so that the entropy is log(perplexity), as
 * scikit-learn's _binary_search_perplexity (100 steps, tolerance 1e-5). */
static void row_affinities(const double *d2, int64_t n, int64_t i, double perplexity,
                           double *p) {
  const double target = log(perplexity);
  double beta = 1.0, lo = -INFINITY, hi = INFINITY;
  for (int step = 0; step < 100; ++step) {
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      p[j] = j == i ? 0.0 : exp(-d2[j] * beta);
      sum += p[j];
    }
    if (sum == 0.0) sum = 1e-8; /* scikit-learn's EPSILON_DBL */
    double dsum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      p[j] /= sum;
      dsum += d2[j] * p[j];
    }
    double entropy = log(sum) + beta * dsum;
    double diff = entropy - target;
    if (fabs(diff) <= 1e-5) break;
    if (diff > 0) {
      lo = beta;
      beta = hi == INFINITY ? beta * 2.0 : (beta + hi) / 2.0;
    } else {
      hi = beta;
      beta = lo == -INFINITY ? beta / 2.0 : (beta + lo) / 2.0;
    }
  }
}

MSC_API msc_status msc_project_tsne(const float *x, int64_t n, int64_t d, double perplexity,
                                    int64_t iterations, float *out) {
  static const char fn[] = "msc_project_tsne";
  if (n > MSC_TSNE_MAX_SAMPLES) /* (before x is read) */
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: n = %lld is above MSC_TSNE_MAX_SAMPLES (%d): exact t-SNE needs n² "
                     "memory; project a sample of the rows",
                     fn, (long long)n, MSC_TSNE_MAX_SAMPLES);
  msc_status st = check_rows(fn, x, n, d);
  if (st != MSC_OK) return st;
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  if (!(perplexity > 0.0) || !(perplexity < (double)n))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: perplexity = %g, must be in (0, n = %lld)",
                     fn, perplexity, (long long)n);
  if (iterations < 250)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: iterations = %lld, must be >= 250 (the early exaggeration phase)", fn,
                     (long long)iterations);
  const double eps = 2.220446049250313e-16; /* MACHINE_EPSILON of float64 */
  float *p = malloc((size_t)(n * n) * sizeof *p);
  double *d2 = malloc((size_t)(n * n) * sizeof *d2);
  double *y = malloc((size_t)(n * 2) * sizeof *y), *upd = calloc((size_t)(n * 2), sizeof *upd);
  double *gain = malloc((size_t)(n * 2) * sizeof *gain),
         *grad = malloc((size_t)(n * 2) * sizeof *grad);
  float *init = malloc((size_t)(n * 2) * sizeof *init);
  if (!p || !d2 || !y || !upd || !gain || !grad || !init) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory (n = %lld)", fn, (long long)n);
    goto out;
  }
  /* squared Euclidean distances, then the conditional affinities row by row (d2 rows are
   * overwritten by P(j|i) in double, then symmetrised into p) */
#pragma omp parallel for schedule(dynamic, 16) if (n * n * d >= (1 << 20))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double t = 0.0;
      for (int64_t a = 0; a < d; ++a) {
        double e = (double)x[i * d + a] - (double)x[j * d + a];
        t += e * e;
      }
      d2[i * n + j] = t;
    }
  {
    int failed = 0;
#pragma omp parallel if (n * n >= (1 << 16))
    {
      double *row = malloc((size_t)n * sizeof *row);
      if (!row) {
#pragma omp atomic write
        failed = 1;
      }
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < n; ++i) {
        if (!row) continue;
        row_affinities(d2 + i * n, n, i, perplexity, row);
        memcpy(d2 + i * n, row, (size_t)n * sizeof *row);
      }
      free(row);
    }
    if (failed) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", fn);
      goto out;
    }
  }
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) total += d2[i * n + j] + d2[j * n + i];
  if (total < eps) total = eps;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double v = (d2[i * n + j] + d2[j * n + i]) / total;
      p[i * n + j] = (float)(i == j ? 0.0 : (v > eps ? v : eps));
    }
  free(d2); /* (the largest buffer: not kept through the optimisation) */
  d2 = NULL;
  /* start: the PCA projection scaled to a standard deviation of 1e-4 on its first axis */
  if ((st = msc_project_pca(x, n, d, d >= 2 && n >= 2 ? 2 : 1, init, NULL)) != MSC_OK) goto out;
  if (d < 2)
    for (int64_t i = n - 1; i >= 0; --i) init[i * 2] = init[i], init[i * 2 + 1] = 0.0f;
  {
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; ++i) mean += init[i * 2];
    mean /= (double)n;
    for (int64_t i = 0; i < n; ++i) var += (init[i * 2] - mean) * (init[i * 2] - mean);
    double sd = sqrt(var / (double)n);
    for (int64_t i = 0; i < n * 2; ++i) y[i] = sd > 0 ? init[i] / sd * 1e-4 : 0.0;
  }
  for (int64_t i = 0; i < n * 2; ++i) gain[i] = 1.0;
  const double lr = (double)n / 12.0 / 4.0 > 50.0 ? (double)n / 12.0 / 4.0 : 50.0;
  for (int64_t it = 0; it < iterations; ++it) {
    const double exag = it < 250 ? 12.0 : 1.0, momentum = it < 250 ? 0.5 : 0.8;
    double qsum = 0.0;
#pragma omp parallel for reduction(+ : qsum) if (n * n >= (1 << 16))
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (i == j) continue;
        double a = y[i * 2] - y[j * 2], b = y[i * 2 + 1] - y[j * 2 + 1];
        qsum += 1.0 / (1.0 + a * a + b * b);
      }
    if (qsum < eps) qsum = eps;
#pragma omp parallel for schedule(static) if (n * n >= (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      double g0 = 0.0, g1 = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        if (i == j) continue;
        double a = y[i * 2] - y[j * 2], b = y[i * 2 + 1] - y[j * 2 + 1];
        double num = 1.0 / (1.0 + a * a + b * b);
        double q = num / qsum;
        if (q < eps) q = eps;
        double f = (exag * (double)p[i * n + j] - q) * num;
        g0 += f * a, g1 += f * b;
      }
      grad[i * 2] = 4.0 * g0, grad[i * 2 + 1] = 4.0 * g1;
    }
    for (int64_t i = 0; i < n * 2; ++i) {
      gain[i] = upd[i] * grad[i] < 0.0 ? gain[i] + 0.2 : gain[i] * 0.8;
      if (gain[i] < 0.01) gain[i] = 0.01;
      upd[i] = momentum * upd[i] - lr * gain[i] * grad[i];
      y[i] += upd[i];
    }
  }
  for (int64_t i = 0; i < n * 2; ++i) {
    if (!isfinite(y[i])) {
      st = msci_fail(MSC_E_NUMERICAL, "%s: the optimisation diverged (row %lld)", fn,
                     (long long)(i / 2));
      goto out;
    }
    out[i] = (float)y[i];
  }
out:
  free(p), free(d2), free(y), free(upd), free(gain), free(grad), free(init);
  return st;
}
