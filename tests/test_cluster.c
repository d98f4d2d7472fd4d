/*
 * test_cluster.c — cluster coherence and projections (lib/eval/cluster.c,
 * lib/eval/project.c) on cases worked out by hand (docs/metrics.md); the comparisons
 * with scikit-learn on random data are in tests/python/test_cluster.py.
 *  (a) silhouette of four 1-D points, Euclidean and cosine;
 *  (b) kNN purity with k = 1, 2 and a tie broken towards the lower index;
 *  (c) grouping multi-label rows by their rarest label;
 *  (d) PCA of points whose axes and variances are known;
 *  (e) t-SNE keeps two far clusters apart, deterministically;
 *  (f) error paths: the documented status, a message, outputs untouched;
 *  (g) the same bits for 1 and 2 OpenMP threads.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mosaic/mosaic.h"

#define ck_assert_near(got, want, tol)                                                         \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    ck_assert_msg(fabs(g_ - w_) <= (tol), "%s = %.17g, expected %.17g", #got, g_, w_);         \
  } while (0)

START_TEST(silhouette_by_hand) {
  /* 1-D points 0, 1 (group 7) and 4, 6 (group 2): a = mean distance inside, b = to the
   * other group: s = 4/5, 3/4, (3.5 - 2)/3.5, (5.5 - 2)/5.5 */
  const float x[] = {0, 1, 4, 6};
  const int32_t g[] = {7, 7, 2, 2};
  double s = -9;
  ck_assert_int_eq(msc_metrics_silhouette(x, 4, 1, g, MSC_DISTANCE_EUCLIDEAN, &s), MSC_OK);
  ck_assert_near(s, (0.8 + 0.75 + 1.5 / 3.5 + 3.5 / 5.5) / 4, 1e-15);
  /* cosine: the groups lie on orthogonal axes, each at distance 0 inside: s = 1 */
  const float y[] = {1, 0, 2, 0, 0, 1, 0, 3};
  const int32_t h[] = {0, 0, 1, 1};
  ck_assert_int_eq(msc_metrics_silhouette(y, 4, 2, h, MSC_DISTANCE_COSINE, &s), MSC_OK);
  ck_assert_near(s, 1.0, 1e-15);
  /* a sample left out (group -1) is not a member of anything: as if absent */
  const float z[] = {0, 1, 4, 6, 100};
  const int32_t gz[] = {7, 7, 2, 2, -1};
  ck_assert_int_eq(msc_metrics_silhouette(z, 5, 1, gz, MSC_DISTANCE_EUCLIDEAN, &s), MSC_OK);
  ck_assert_near(s, (0.8 + 0.75 + 1.5 / 3.5 + 3.5 / 5.5) / 4, 1e-15);
}
END_TEST

START_TEST(knn_purity_by_hand) {
  const float x[] = {0, 1, 4, 6};
  const int32_t g[] = {0, 0, 1, 1};
  double p = -1;
  ck_assert_int_eq(msc_metrics_knn_purity(x, 4, 1, g, 1, MSC_DISTANCE_EUCLIDEAN, &p), MSC_OK);
  ck_assert_near(p, 1.0, 0);
  /* k = 2: every point's second neighbour is in the other group */
  ck_assert_int_eq(msc_metrics_knn_purity(x, 4, 1, g, 2, MSC_DISTANCE_EUCLIDEAN, &p), MSC_OK);
  ck_assert_near(p, 0.5, 0);
  /* the point at 1 is as far from 0 (index 1, other group) as from 2 (index 2, same
   * group): the lower index wins, so it scores 0; 0's neighbour is 1 (other): 0; 2's
   * neighbour is 1 (same): 1 */
  const float t[] = {1, 0, 2};
  const int32_t gt[] = {0, 1, 0};
  ck_assert_int_eq(msc_metrics_knn_purity(t, 3, 1, gt, 1, MSC_DISTANCE_EUCLIDEAN, &p), MSC_OK);
  ck_assert_near(p, 1.0 / 3.0, 1e-15);
}
END_TEST

START_TEST(group_by_rarest_label) {
  const uint8_t y[] = {1, 1, 0, /**/ 1, 0, 0, /**/ 1, 0, 1, /**/ 0, 0, 0, /**/ 0, 1, 1};
  int32_t g[5];
  ck_assert_int_eq(msc_metrics_group_by_label(y, 5, 3, g), MSC_OK);
  const int32_t want[] = {1, 0, 2, -1, 1}; /* counts 3, 2, 2: ties to the lower index */
  ck_assert_mem_eq(g, want, sizeof want);
  const uint8_t bad[] = {0, 2};
  ck_assert_int_eq(msc_metrics_group_by_label(bad, 1, 2, g), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "labels[0][1] = 2"));
}
END_TEST

START_TEST(pca_by_hand) {
  /* centred points on the axes: variance 2/3 along x, 1/6 along y (divisor n - 1) */
  const float x[] = {-1, 0, 1, 0, 0, 0.5f, 0, -0.5f};
  float out[8];
  double var[2];
  ck_assert_int_eq(msc_project_pca(x, 4, 2, 2, out, var), MSC_OK);
  ck_assert_near(var[0], 2.0 / 3.0, 1e-12);
  ck_assert_near(var[1], 0.5 / 3.0, 1e-12);
  for (int i = 0; i < 8; ++i) ck_assert_near(out[i], x[i], 1e-6);
  /* shifted and with the y axis flipped: the same projection (centred; each axis's
   * largest coordinate positive) */
  float y[8];
  for (int i = 0; i < 4; ++i) y[2 * i] = x[2 * i] + 10, y[2 * i + 1] = -x[2 * i + 1] - 3;
  float out2[8];
  ck_assert_int_eq(msc_project_pca(y, 4, 2, 2, out2, NULL), MSC_OK);
  for (int i = 0; i < 4; ++i) {
    ck_assert_near(out2[2 * i], x[2 * i], 1e-5);
    ck_assert_near(out2[2 * i + 1], -x[2 * i + 1], 1e-5);
  }
}
END_TEST

START_TEST(tsne_separates_far_clusters) {
  enum { N = 40, D = 5 };
  float x[N * D], y[N * 2], y2[N * 2];
  unsigned s = 1;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < D; ++j) {
      s = s * 1103515245u + 12345u;
      x[i * D + j] = (float)((s >> 16) % 1000) / 1000.0f + (i < N / 2 ? 0.0f : 50.0f);
    }
  ck_assert_int_eq(msc_project_tsne(x, N, D, 10.0, 300, y), MSC_OK);
  /* every point's nearest neighbour in the picture is from its own cluster */
  for (int i = 0; i < N; ++i) {
    int best = -1;
    double bd = INFINITY;
    for (int j = 0; j < N; ++j) {
      double e = j == i ? INFINITY : hypot(y[i * 2] - y[j * 2], y[i * 2 + 1] - y[j * 2 + 1]);
      if (e < bd) bd = e, best = j;
    }
    ck_assert_msg((best < N / 2) == (i < N / 2), "point %d lands next to the other cluster", i);
  }
  ck_assert_int_eq(msc_project_tsne(x, N, D, 10.0, 300, y2), MSC_OK);
  ck_assert_mem_eq(y, y2, sizeof y);
}
END_TEST

START_TEST(errors) {
  const float x[] = {0, 1, 4, 6};
  const int32_t g[] = {0, 0, 1, 1}, one[] = {3, 3, 3, 3};
  double v = 42;
  ck_assert_int_eq(msc_metrics_silhouette(NULL, 4, 1, g, 0, &v), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_silhouette(x, 4, 1, NULL, 0, &v), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_silhouette(x, 4, 1, g, 0, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_silhouette(x, 4, 1, g, 5, &v), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "metric"));
  ck_assert_int_eq(msc_metrics_silhouette(x, 4, 1, one, 0, &v), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "1 groups"));
  ck_assert_int_eq(msc_metrics_knn_purity(x, 4, 1, g, 4, 0, &v), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_knn_purity(x, 4, 1, g, 0, 0, &v), MSC_E_INVALID_ARGUMENT);
  const float nan_x[] = {0, NAN, 4, 6};
  ck_assert_int_eq(msc_metrics_knn_purity(nan_x, 4, 1, g, 1, 0, &v), MSC_E_NUMERICAL);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "x[1][0] is NaN"));
  ck_assert_near(v, 42, 0); /* untouched */
  float out[8] = {0};
  ck_assert_int_eq(msc_project_pca(x, 4, 1, 2, out, NULL), MSC_E_INVALID_ARGUMENT); /* k > d */
  ck_assert_int_eq(msc_project_pca(x, 1, 4, 1, out, NULL), MSC_E_INVALID_ARGUMENT); /* n < 2 */
  ck_assert_int_eq(msc_project_pca(x, 4, 1, 1, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_project_tsne(x, 4, 1, 4.0, 300, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "perplexity"));
  ck_assert_int_eq(msc_project_tsne(x, 4, 1, 2.0, 100, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_project_tsne(x, MSC_TSNE_MAX_SAMPLES + 1, 1, 2.0, 300, out),
                   MSC_E_INVALID_ARGUMENT); /* refused before x is read */
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "MSC_TSNE_MAX_SAMPLES"));
  for (int i = 0; i < 8; ++i) ck_assert_near(out[i], 0, 0);
}
END_TEST

START_TEST(threads_do_not_change_bits) {
#ifdef _OPENMP
  enum { N = 300, D = 8 };
  static float x[N * D];
  static int32_t g[N];
  unsigned s = 7;
  for (int i = 0; i < N * D; ++i) {
    s = s * 1103515245u + 12345u;
    x[i] = (float)((s >> 16) % 2000) / 100.0f;
  }
  for (int i = 0; i < N; ++i) g[i] = i % 5;
  double a[2], b[2];
  const int saved = omp_get_max_threads();
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t + 1);
    ck_assert_int_eq(msc_metrics_silhouette(x, N, D, g, MSC_DISTANCE_COSINE, &a[t]), MSC_OK);
    ck_assert_int_eq(msc_metrics_knn_purity(x, N, D, g, 5, MSC_DISTANCE_EUCLIDEAN, &b[t]),
                     MSC_OK);
  }
  omp_set_num_threads(saved);
  ck_assert_mem_eq(&a[0], &a[1], sizeof a[0]);
  ck_assert_mem_eq(&b[0], &b[1], sizeof b[0]);
#endif
}
END_TEST

int main(void) {
  Suite *s = suite_create("cluster");
  TCase *tc = tcase_create("cluster");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, silhouette_by_hand);
  tcase_add_test(tc, knn_purity_by_hand);
  tcase_add_test(tc, group_by_rarest_label);
  tcase_add_test(tc, pca_by_hand);
  tcase_add_test(tc, tsne_separates_far_clusters);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, threads_do_not_change_bits);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
