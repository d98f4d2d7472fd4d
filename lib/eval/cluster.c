/*
 * cluster.c — how well embeddings cluster by class (docs/metrics.md, "Cluster
 * coherence"): the silhouette score (scikit-learn's silhouette_score), the kNN label
 * purity, and the grouping of multi-label samples by their most specific label.
 *
 * Distances are computed in double, row against row, on the fly: memory stays O(N + G)
 * per thread whatever N is (time is O(N² D)). Rows run on OpenMP threads, each into its
 * own slot, and the final sums go in row order, so the result does not depend on the
 * number of threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* Rows below this many N·N·D multiply-adds stay on one thread. */
#define PAR_MIN_WORK (1 << 18)

typedef struct {
  const float *x;
  int64_t d;
  int32_t metric;
  double *norm; /* cosine: 1/‖x_i‖ (0 for a zero row); NULL for Euclidean */
} dist_ctx;

/* The distance of rows i and j, as scikit-learn's pairwise_distances: Euclidean, or the
 * cosine distance 1 − cos clipped to [0, 2] (a zero row has similarity 0 to everything),
 * and exactly 0 from a row to itself. */
static double dist(const dist_ctx *c, int64_t i, int64_t j) {
  if (i == j) return 0.0;
  const float *a = c->x + i * c->d, *b = c->x + j * c->d;
  double s = 0.0;
  if (c->metric == MSC_DISTANCE_COSINE) {
    for (int64_t t = 0; t < c->d; ++t) s += (double)a[t] * (double)b[t];
    double v = 1.0 - s * c->norm[i] * c->norm[j];
    return v < 0.0 ? 0.0 : v > 2.0 ? 2.0 : v;
  }
  for (int64_t t = 0; t < c->d; ++t) {
    double e = (double)a[t] - (double)b[t];
    s += e * e;
  }
  return sqrt(s);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Checks the common arguments and maps every sample's group to 0..G−1 (−1: left out).
 * *ids receives the map (n entries; free it), *groups G, *kept the samples counted. */
static msc_status prepare(const char *fn, const float *x, int64_t n, int64_t d,
                          const int32_t *group, int32_t metric, int32_t **ids, int64_t *groups,
                          int64_t *kept, double **norm) {
  if (!x) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: x is NULL", fn);
  if (!group) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: group is NULL", fn);
  if (n < 1 || d < 1 || n > INT32_MAX || d > INT64_MAX / n)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n = %lld, d = %lld: both must be >= 1", fn,
                     (long long)n, (long long)d);
  if (metric != MSC_DISTANCE_EUCLIDEAN && metric != MSC_DISTANCE_COSINE)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: metric = %d, must be MSC_DISTANCE_EUCLIDEAN or MSC_DISTANCE_COSINE",
                     fn, (int)metric);
  for (int64_t i = 0; i < n * d; ++i)
    if (!isfinite(x[i]))
      return msci_fail(MSC_E_NUMERICAL, "%s: x[%lld][%lld] is %s", fn, (long long)(i / d),
                       (long long)(i % d), isnan(x[i]) ? "NaN" : "infinite");
  int32_t *sorted = malloc((size_t)n * sizeof *sorted);
  int32_t *map = malloc((size_t)n * sizeof *map);
  double *nr = metric == MSC_DISTANCE_COSINE ? malloc((size_t)n * sizeof *nr) : NULL;
  if (!sorted || !map || (metric == MSC_DISTANCE_COSINE && !nr)) {
    free(sorted), free(map), free(nr);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory (n = %lld)", fn, (long long)n);
  }
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i)
    if (group[i] >= 0) sorted[m++] = group[i];
  qsort(sorted, (size_t)m, sizeof *sorted, cmp_i32);
  int64_t g = 0;
  for (int64_t i = 0; i < m; ++i)
    if (i == 0 || sorted[i] != sorted[i - 1]) sorted[g++] = sorted[i];
  for (int64_t i = 0; i < n; ++i) {
    map[i] = -1;
    if (group[i] < 0) continue;
    int32_t *p = bsearch(&group[i], sorted, (size_t)g, sizeof *sorted, cmp_i32);
    map[i] = (int32_t)(p - sorted);
  }
  free(sorted);
  if (nr)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int64_t t = 0; t < d; ++t) s += (double)x[i * d + t] * (double)x[i * d + t];
      nr[i] = s > 0.0 ? 1.0 / sqrt(s) : 0.0;
    }
  *ids = map, *groups = g, *kept = m, *norm = nr;
  return MSC_OK;
}

MSC_API msc_status msc_metrics_silhouette(const float *x, int64_t n, int64_t d,
                                          const int32_t *group, int32_t metric, double *score) {
  static const char fn[] = "msc_metrics_silhouette";
  if (!score) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: score is NULL", fn);
  int32_t *id = NULL;
  double *norm = NULL;
  int64_t g = 0, m = 0;
  msc_status st = prepare(fn, x, n, d, group, metric, &id, &g, &m, &norm);
  if (st != MSC_OK) return st;
  if (g < 2 || g > m - 1) {
    free(id), free(norm);
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: %lld groups among %lld samples: the silhouette needs between 2 and "
                     "samples - 1 groups",
                     fn, (long long)g, (long long)m);
  }
  int64_t *size = calloc((size_t)g, sizeof *size);
  double *s = malloc((size_t)n * sizeof *s);
  int failed = !size || !s;
  if (!failed) {
    for (int64_t i = 0; i < n; ++i)
      if (id[i] >= 0) size[id[i]]++;
    dist_ctx c = {x, d, metric, norm};
#pragma omp parallel if (n * n * d >= PAR_MIN_WORK)
    {
      double *sum = calloc((size_t)g, sizeof *sum);
      if (!sum) {
#pragma omp atomic write
        failed = 1;
      }
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < n; ++i) {
        s[i] = 0.0;
        if (!sum || id[i] < 0) continue;
        memset(sum, 0, (size_t)g * sizeof *sum);
        for (int64_t j = 0; j < n; ++j)
          if (id[j] >= 0) sum[id[j]] += dist(&c, i, j);
        const int32_t own = id[i];
        if (size[own] < 2) continue; /* a sample alone in its group scores 0 */
        double a = sum[own] / (double)(size[own] - 1), b = INFINITY;
        for (int64_t k = 0; k < g; ++k)
          if (k != own && sum[k] / (double)size[k] < b) b = sum[k] / (double)size[k];
        double den = a > b ? a : b;
        s[i] = den > 0.0 ? (b - a) / den : 0.0;
      }
      free(sum);
    }
  }
  if (!failed) {
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (id[i] >= 0) total += s[i];
    *score = total / (double)m;
  }
  free(size), free(s), free(id), free(norm);
  if (failed) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", fn);
  return MSC_OK;
}

/* Inserts (dv, j) into the k nearest so far, kept sorted by (distance, index). */
static void knn_insert(double *kd, int64_t *kj, int64_t *have, int64_t k, double dv,
                       int64_t j) {
  int64_t p = *have < k ? (*have)++ : k;
  if (p == k) {
    if (dv > kd[k - 1] || (dv == kd[k - 1] && j > kj[k - 1])) return;
    p = k - 1;
  }
  while (p > 0 && (kd[p - 1] > dv || (kd[p - 1] == dv && kj[p - 1] > j))) {
    kd[p] = kd[p - 1], kj[p] = kj[p - 1];
    p--;
  }
  kd[p] = dv, kj[p] = j;
}

MSC_API msc_status msc_metrics_knn_purity(const float *x, int64_t n, int64_t d,
                                          const int32_t *group, int64_t k, int32_t metric,
                                          double *purity) {
  static const char fn[] = "msc_metrics_knn_purity";
  if (!purity) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: purity is NULL", fn);
  int32_t *id = NULL;
  double *norm = NULL;
  int64_t g = 0, m = 0;
  msc_status st = prepare(fn, x, n, d, group, metric, &id, &g, &m, &norm);
  if (st != MSC_OK) return st;
  if (k < 1 || k > m - 1) {
    free(id), free(norm);
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: k = %lld with %lld samples in groups: k must be in 1 .. samples - 1",
                     fn, (long long)k, (long long)m);
  }
  double *share = malloc((size_t)n * sizeof *share);
  int failed = !share;
  if (!failed) {
    dist_ctx c = {x, d, metric, norm};
#pragma omp parallel if (n * n * d >= PAR_MIN_WORK)
    {
      double *kd = malloc((size_t)k * sizeof *kd);
      int64_t *kj = malloc((size_t)k * sizeof *kj);
      if (!kd || !kj) {
#pragma omp atomic write
        failed = 1;
      }
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < n; ++i) {
        share[i] = 0.0;
        if (!kd || !kj || id[i] < 0) continue;
        int64_t have = 0;
        for (int64_t j = 0; j < n; ++j)
          if (j != i && id[j] >= 0) knn_insert(kd, kj, &have, k, dist(&c, i, j), j);
        int64_t same = 0;
        for (int64_t t = 0; t < k; ++t) same += id[kj[t]] == id[i];
        share[i] = (double)same / (double)k;
      }
      free(kd), free(kj);
    }
  }
  if (!failed) {
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (id[i] >= 0) total += share[i];
    *purity = total / (double)m;
  }
  free(share), free(id), free(norm);
  if (failed) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", fn);
  return MSC_OK;
}

MSC_API msc_status msc_metrics_group_by_label(const uint8_t *labels, int64_t n, int64_t c,
                                              int32_t *group) {
  static const char fn[] = "msc_metrics_group_by_label";
  if (!labels || !group)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", fn, labels ? "group" : "labels");
  if (n < 0 || c < 1 || c > INT32_MAX || (n > 0 && c > INT64_MAX / n))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n = %lld, c = %lld: need n >= 0, c >= 1", fn,
                     (long long)n, (long long)c);
  int64_t *count = calloc((size_t)c, sizeof *count);
  if (!count) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", fn);
  for (int64_t i = 0; i < n * c; ++i) {
    if (labels[i] > 1) {
      free(count);
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: labels[%lld][%lld] = %u, must be 0 or 1",
                       fn, (long long)(i / c), (long long)(i % c), (unsigned)labels[i]);
    }
    count[i % c] += labels[i];
  }
  for (int64_t i = 0; i < n; ++i) {
    int32_t best = -1;
    for (int64_t k = 0; k < c; ++k)
      if (labels[i * c + k] && (best < 0 || count[k] < count[best])) best = (int32_t)k;
    group[i] = best;
  }
  free(count);
  return MSC_OK;
}
