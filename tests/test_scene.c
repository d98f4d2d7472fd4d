/*
 * test_scene.c — whole-scene mapping (msc_scene_*, docs/scenes.md) on a synthetic
 * Sen1Floods11 chip of 100 × 100 pixels (georeferenced, with NaN S1 pixels) and tiny
 * untrained models with 32-pixel patches.
 *
 * The reference is an independent path: the tile's window read straight from the files
 * (msci_raster_read_window; a coarse raster read whole and resampled with msci_resample),
 * its NaN pixels given the model's band means as documented, and msc_predict_mask (or
 * msc_predict) on that one tile. Expected ownership (centre crop) and the tile origins
 * are worked out by hand in the comments; missing pixels are found by scanning the input
 * files for NaN.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "mosaic/mosaic.h"
#include "data/geotiff_write.h"
#include "data/raster.h"

#define N   100 /* scene size */
#define P   32  /* tile */
#define NB1 2
#define NB2 13

static char g_dir[256], g_s1[400], g_s2[400];
static const float k_mean1[NB1] = {-12.f, -19.f}, k_sd1[NB1] = {4.f, 4.f};
static float k_mean2[NB2], k_sd2[NB2];

static void setup(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/msc_scene_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "synth.size", N), MSC_OK);
  ck_assert_int_eq(msc_synth_write(g_dir, "sen1floods11", 1, 5, o), MSC_OK);
  msc_options_free(o);
  snprintf(g_s1, sizeof g_s1, "%s/S1Hand/Bolivia_100000_S1Hand.tif", g_dir);
  snprintf(g_s2, sizeof g_s2, "%s/S2Hand/Bolivia_100000_S2Hand.tif", g_dir);
  for (int b = 0; b < NB2; ++b) k_mean2[b] = 1500.f, k_sd2[b] = 1000.f;
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  ck_assert_int_eq(system(cmd), 0);
}

static msc_model *make_model(const char *task) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.count\":2,\"modality.0.name\":\"s1\",\"modality.0.bands\":2,"
                     "\"modality.1.name\":\"s2\",\"modality.1.bands\":13,"
                     "\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                     "\"modality.0.size\":32,\"modality.1.size\":32,\"classes\":2,"
                     "\"class_names\":\"no water;water\",\"proj.dim\":16,\"seed\":9,"
                     "\"labels\":\"single\"}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "task", task), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", k_mean1, NB1), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.std", k_sd1, NB1), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.mean", k_mean2, NB2), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.std", k_sd2, NB2), MSC_OK);
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  msc_options_free(o);
  return m;
}

/* Maps the scene; returns the mask and probabilities read back (caller frees). */
static void map(msc_model *m, const char *s2, const char *opts_json, msci_raster *mask,
                msci_raster *probs) {
  const char *paths[2] = {g_s1, s2 ? s2 : g_s2};
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  if (opts_json) ck_assert_int_eq(msc_options_from_json(o, opts_json), MSC_OK);
  msc_scene *sc = NULL;
  msc_status st = msc_scene_open(paths, 2, m, o, &sc);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  msc_options_free(o);
  char mp[400], pp[400];
  snprintf(mp, sizeof mp, "%s/mask.tif", g_dir);
  snprintf(pp, sizeof pp, "%s/probs.tif", g_dir);
  st = msc_scene_write(sc, mp, pp, NULL, NULL);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  msc_scene_free(sc);
  ck_assert_int_eq(msci_raster_read(mp, mask), MSC_OK);
  ck_assert_int_eq(msci_raster_read(pp, probs), MSC_OK);
}

/* The independent reference: the tile at (x0, y0) read from the files (s2_full: the S2
 * bands already on the scene's grid, N × N, or NULL to read the S2 file's window), NaN
 * pixels filled with the means, through msc_predict_mask. valid[P·P] marks pixels
 * without NaN. */
static const uint8_t *g_force; /* P × P pixels also missing (masked), or NULL */

/* The batch of the tile at (x0, y0) as the reference reads it (below). */
static msc_batch *ref_batch(int64_t x0, int64_t y0, const float *s2_full, uint8_t *valid) {
  msci_raster r1, r2;
  ck_assert_int_eq(msci_raster_read_window(g_s1, x0, y0, P, P, &r1), MSC_OK);
  float s2[NB2 * P * P];
  if (s2_full) {
    for (int b = 0; b < NB2; ++b)
      for (int y = 0; y < P; ++y)
        for (int x = 0; x < P; ++x)
          s2[(b * P + y) * P + x] = s2_full[((int64_t)b * N + y0 + y) * N + x0 + x];
  } else {
    ck_assert_int_eq(msci_raster_read_window(g_s2, x0, y0, P, P, &r2), MSC_OK);
    memcpy(s2, r2.data, sizeof s2);
    msci_raster_free(&r2);
  }
  for (int i = 0; i < P * P; ++i) {
    valid[i] = 1;
    for (int b = 0; b < NB1; ++b) valid[i] &= isfinite(r1.data[b * P * P + i]) != 0;
    for (int b = 0; b < NB2; ++b) valid[i] &= isfinite(s2[b * P * P + i]) != 0;
    if (g_force && g_force[i]) valid[i] = 0;
  }
  for (int i = 0; i < P * P; ++i)
    if (!valid[i]) {
      for (int b = 0; b < NB1; ++b) r1.data[b * P * P + i] = k_mean1[b];
      for (int b = 0; b < NB2; ++b) s2[b * P * P + i] = k_mean2[b];
    }
  msc_batch *bt = NULL;
  ck_assert_int_eq(msc_batch_create(&bt), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(bt, "s1", r1.data, 1, NB1, P, P), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(bt, "s2", s2, 1, NB2, P, P), MSC_OK);
  msci_raster_free(&r1);
  return bt;
}

static void reference(msc_model *m, int64_t x0, int64_t y0, const float *s2_full, int32_t *cls,
                      float *prob, uint8_t *valid) {
  msc_batch *bt = ref_batch(x0, y0, s2_full, valid);
  if (cls) {
    ck_assert_int_eq(msc_predict_mask(m, bt, cls, P * P, prob, 2 * P * P), MSC_OK);
  } else {
    ck_assert_int_eq(msc_predict(m, bt, prob, 2), MSC_OK);
  }
  msc_batch_free(bt);
}

/* The scene's pixels [x0 + a, x0 + b) × [y0 + a, y0 + b) against the reference tile at
 * (x0, y0). */
static void check_region(const msci_raster *mask, const msci_raster *probs, int64_t x0,
                         int64_t y0, int64_t xa, int64_t xb, int64_t ya, int64_t yb,
                         const int32_t *cls, const float *prob, const uint8_t *valid) {
  int checked = 0, missing = 0;
  for (int64_t y = ya; y < yb; ++y)
    for (int64_t x = xa; x < xb; ++x) {
      const int64_t q = y * P + x, o = (y0 + y) * N + x0 + x;
      if (!valid[q]) {
        ck_assert_float_eq(mask->data[o], 255.f);
        ck_assert(isnan(probs->data[o]) && isnan(probs->data[N * N + o]));
        ++missing;
        continue;
      }
      ck_assert_float_eq_tol(probs->data[o], prob[q], 1e-5f);
      ck_assert_float_eq_tol(probs->data[N * N + o], prob[P * P + q], 1e-5f);
      if (fabsf(prob[q] - prob[P * P + q]) > 1e-4f) ck_assert_float_eq(mask->data[o], cls[q]);
      ++checked;
    }
  ck_assert_int_gt(checked, 0);
  (void)missing;
}

/* No overlap (stride 0 = 32): tile origins 0, 32, 64, 68 (the last shifted inward to
 * 100 − 32). Centre crop: tile 1 owns [32, 64) (boundaries (0+32+31)/2+1 = 32 and
 * (32+64+31)/2+1 = 64); tile 2 (origin 64) owns [64, 82) and tile 3 (origin 68) owns
 * [82, 100) ((64+68+31)/2+1 = 82: pixel 81's centre 81.5 is 1.5 from tile 2's centre 80
 * and 2.5 from tile 3's 84). */
START_TEST(centre_no_overlap) {
  msc_model *m = make_model("segmentation");
  msci_raster mask, probs;
  map(m, NULL, NULL, &mask, &probs);
  ck_assert_int_eq(mask.width, N);
  ck_assert_int_eq(mask.height, N);
  ck_assert_int_eq(probs.bands, 2);
  int32_t cls[P * P];
  float prob[2 * P * P];
  uint8_t valid[P * P];
  reference(m, 32, 32, NULL, cls, prob, valid);
  check_region(&mask, &probs, 32, 32, 0, P, 0, P, cls, prob, valid);
  reference(m, 64, 32, NULL, cls, prob, valid); /* tile 2 owns columns [64, 82) */
  check_region(&mask, &probs, 64, 32, 0, 82 - 64, 0, P, cls, prob, valid);
  reference(m, 68, 32, NULL, cls, prob, valid); /* the right edge: columns 82..99 */
  check_region(&mask, &probs, 68, 32, 82 - 68, P, 0, P, cls, prob, valid);
  reference(m, 68, 68, NULL, cls, prob, valid); /* the corner: rows and columns 82..99 */
  check_region(&mask, &probs, 68, 68, 14, P, 14, P, cls, prob, valid);
  /* Missing pixels: exactly where an S1 value is NaN (S2 has none). */
  msci_raster s1;
  ck_assert_int_eq(msci_raster_read(g_s1, &s1), MSC_OK);
  int64_t nan = 0;
  for (int64_t i = 0; i < N * N; ++i) {
    int miss = isnan(s1.data[i]) || isnan(s1.data[N * N + i]);
    nan += miss;
    ck_assert_int_eq(mask.data[i] == 255.f, miss);
    ck_assert_int_eq(isnan(probs.data[i]) != 0, miss);
    if (!miss) ck_assert(mask.data[i] == 0.f || mask.data[i] == 1.f);
  }
  ck_assert_int_gt(nan, 0);
  /* The georeferencing is the S1 file's (the scene's grid, ratio 1). */
  ck_assert(mask.info.has_tiepoints && s1.info.has_tiepoints);
  for (int k = 0; k < 6; ++k) ck_assert_double_eq(mask.info.tiepoints[k], s1.info.tiepoints[k]);
  ck_assert_double_eq(mask.info.pixel_scale[0], s1.info.pixel_scale[0]);
  ck_assert_int_eq(msci_raster_info_epsg(&mask.info), 4326);
  ck_assert_int_eq(mask.info.tiled, 1);
  msci_raster_free(&s1);
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  msc_model_free(m);
}
END_TEST

/* Stride 16: origins 0, 16, 32, 48, 64, 68. Tile 2 (origin 32) owns [40, 56):
 * (16+32+31)/2+1 = 40 and (32+48+31)/2+1 = 56. */
START_TEST(centre_overlap) {
  msc_model *m = make_model("segmentation");
  msci_raster mask, probs;
  map(m, NULL, "{\"scene.stride\":16,\"scene.batch\":3}", &mask, &probs);
  int32_t cls[P * P];
  float prob[2 * P * P];
  uint8_t valid[P * P];
  reference(m, 32, 32, NULL, cls, prob, valid);
  check_region(&mask, &probs, 32, 32, 8, 24, 8, 24, cls, prob, valid);
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  msc_model_free(m);
}
END_TEST

/* Mean blend, stride 32: pixel (80, 40) is covered by the tiles at x = 64 and x = 68 of
 * tile row y = 32 (and by no other): its probabilities are the mean of both. */
START_TEST(mean_blend) {
  msc_model *m = make_model("segmentation");
  msci_raster mask, probs;
  map(m, NULL, "{\"scene.blend\":\"mean\"}", &mask, &probs);
  int32_t c1[P * P], c2[P * P];
  float p1[2 * P * P], p2[2 * P * P];
  uint8_t v1[P * P], v2[P * P];
  reference(m, 64, 32, NULL, c1, p1, v1);
  reference(m, 68, 32, NULL, c2, p2, v2);
  int checked = 0;
  for (int y = 34; y < 46; ++y)
    for (int x = 70; x < 92; ++x) {
      const int q1 = (y - 32) * P + x - 64, q2 = (y - 32) * P + x - 68, o = y * N + x;
      if (!v1[q1]) continue;
      for (int c = 0; c < 2; ++c)
        ck_assert_float_eq_tol(probs.data[c * N * N + o],
                               0.5f * (p1[c * P * P + q1] + p2[c * P * P + q2]), 1e-5f);
      const float a = p1[q1] + p2[q2], b = p1[P * P + q1] + p2[P * P + q2];
      if (fabsf(a - b) > 1e-4f) ck_assert_float_eq(mask.data[o], b > a ? 1.f : 0.f);
      ++checked;
    }
  ck_assert_int_gt(checked, 200);
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  msc_model_free(m);
}
END_TEST

/* S2 at half the resolution (50 × 50, pixel scale × 2, written with the GeoTIFF writer):
 * resampled bilinearly onto the S1 grid, as msci_resample does for the whole raster. */
START_TEST(coarse_modality) {
  msci_raster s2;
  ck_assert_int_eq(msci_raster_read(g_s2, &s2), MSC_OK);
  const int n2 = N / 2;
  float *c = malloc((size_t)NB2 * n2 * n2 * sizeof *c);
  for (int b = 0; b < NB2; ++b)
    for (int y = 0; y < n2; ++y)
      for (int x = 0; x < n2; ++x) {
        const float *p = s2.data + ((int64_t)b * N + 2 * y) * N + 2 * x;
        c[(b * n2 + y) * n2 + x] = 0.25f * (p[0] + p[1] + p[N] + p[N + 1]);
      }
  msci_georef g;
  ck_assert_int_eq(msci_georef_window(&s2.info, 0, 0, 2, &g), MSC_OK);
  msci_geotiff_spec sp;
  memset(&sp, 0, sizeof sp);
  sp.width = sp.height = n2, sp.bands = NB2, sp.sample_format = 3, sp.bits = 32;
  sp.geo = &s2.info, sp.grid = &g;
  char coarse[400], shifted[400];
  snprintf(coarse, sizeof coarse, "%s/s2_20m.tif", g_dir);
  ck_assert_int_eq(msci_geotiff_write(coarse, &sp, c), MSC_OK);
  /* The reference: the coarse file read whole, resampled to 100 × 100. */
  msci_raster cr;
  ck_assert_int_eq(msci_raster_read(coarse, &cr), MSC_OK);
  float *up = malloc((size_t)NB2 * N * N * sizeof *up);
  for (int b = 0; b < NB2; ++b)
    msci_resample(cr.data + b * n2 * n2, n2, n2, up + (int64_t)b * N * N, N, N,
                  MSCI_RESAMPLE_BILINEAR);
  msc_model *m = make_model("segmentation");
  msci_raster mask, probs;
  map(m, coarse, NULL, &mask, &probs);
  int32_t cls[P * P];
  float prob[2 * P * P];
  uint8_t valid[P * P];
  reference(m, 32, 32, up, cls, prob, valid);
  check_region(&mask, &probs, 32, 32, 0, P, 0, P, cls, prob, valid);
  reference(m, 68, 68, up, cls, prob, valid);
  check_region(&mask, &probs, 68, 68, 14, P, 14, P, cls, prob, valid);
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  /* Off the grid by one coarse pixel: refused, naming the file. */
  ck_assert_int_eq(msci_georef_window(&s2.info, 2, 0, 2, &g), MSC_OK);
  snprintf(shifted, sizeof shifted, "%s/s2_shifted.tif", g_dir);
  ck_assert_int_eq(msci_geotiff_write(shifted, &sp, c), MSC_OK);
  const char *paths[2] = {g_s1, shifted};
  msc_scene *sc = NULL;
  ck_assert_int_eq(msc_scene_open(paths, 2, m, NULL, &sc), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s2_shifted.tif"));
  ck_assert_ptr_null(sc);
  msc_model_free(m);
  free(up);
  free(c);
  msci_raster_free(&cr);
  msci_raster_free(&s2);
}
END_TEST

/* A classification model: every pixel a tile owns has that tile's probabilities. */
START_TEST(classification) {
  msc_model *m = make_model("contrastive");
  msci_raster mask, probs;
  map(m, NULL, NULL, &mask, &probs);
  float prob[2];
  uint8_t valid[P * P];
  reference(m, 32, 64, NULL, NULL, prob, valid);
  for (int y = 64; y < 82; ++y) /* tile row 2 (origin 64) owns rows [64, 82) */
    for (int x = 32; x < 64; ++x) {
      const int o = y * N + x;
      if (!valid[(y - 64) * P + x - 32]) continue;
      ck_assert_float_eq_tol(probs.data[o], prob[0], 1e-5f);
      ck_assert_float_eq_tol(probs.data[N * N + o], prob[1], 1e-5f);
    }
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  msc_model_free(m);
}
END_TEST

static int64_t g_calls;
static int32_t cancel_at_2(int64_t done, int64_t total, void *user) {
  (void)user;
  ck_assert_int_eq(total, 16);
  ck_assert_int_eq(done, 4 * (g_calls + 1));
  return ++g_calls == 2;
}

/* Cancelled after the second row of tiles: MSC_E_CANCELLED, no output file. Refusals. */
START_TEST(cancel_and_refusals) {
  msc_model *m = make_model("segmentation");
  const char *paths[2] = {g_s1, g_s2};
  msc_scene *sc = NULL;
  ck_assert_int_eq(msc_scene_open(paths, 2, m, NULL, &sc), MSC_OK);
  int64_t w = 0, h = 0, t = 0;
  ck_assert_int_eq(msc_scene_size(sc, &w, &h, &t), MSC_OK);
  ck_assert(w == N && h == N && t == 16);
  char mp[400];
  snprintf(mp, sizeof mp, "%s/cancelled.tif", g_dir);
  g_calls = 0;
  ck_assert_int_eq(msc_scene_write(sc, mp, NULL, cancel_at_2, NULL), MSC_E_CANCELLED);
  ck_assert_int_eq(g_calls, 2);
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep cancelled)\"", g_dir);
  ck_assert_int_eq(system(cmd), 0);
  ck_assert_int_eq(msc_scene_write(sc, NULL, NULL, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_scene_write(sc, mp, mp, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  msc_scene_free(sc);
  msc_scene_free(NULL);
  sc = NULL;
  ck_assert_int_eq(msc_scene_open(paths, 1, m, NULL, &sc), MSC_E_INVALID_ARGUMENT);
  const char *swapped[2] = {g_s2, g_s1};
  ck_assert_int_eq(msc_scene_open(swapped, 2, m, NULL, &sc), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "13 bands"));
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "scene.stride", 33), MSC_OK);
  ck_assert_int_eq(msc_scene_open(paths, 2, m, o, &sc), MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
  /* Rasters smaller than a tile. */
  char small1[400], small2[400];
  snprintf(small1, sizeof small1, "%s/small1.tif", g_dir);
  snprintf(small2, sizeof small2, "%s/small2.tif", g_dir);
  static float px[NB2 * 20 * 20];
  msci_geotiff_spec sp;
  memset(&sp, 0, sizeof sp);
  sp.width = sp.height = 20, sp.bands = NB1, sp.sample_format = 3, sp.bits = 32;
  ck_assert_int_eq(msci_geotiff_write(small1, &sp, px), MSC_OK);
  sp.bands = NB2;
  ck_assert_int_eq(msci_geotiff_write(small2, &sp, px), MSC_OK);
  const char *sm[2] = {small1, small2};
  ck_assert_int_eq(msc_scene_open(sm, 2, m, NULL, &sc), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "smaller than a tile"));
  ck_assert_ptr_null(sc);
  ck_assert_int_eq(msc_scene_size(NULL, &w, &h, &t), MSC_E_INVALID_ARGUMENT);
  /* A truncated S1 raster (the downlink cut short): refused when opened (its directory
   * lost) or when its missing tiles are read; either way MSC_E_IO or MSC_E_BAD_FORMAT
   * and no output file. */
  char cut[400];
  snprintf(cut, sizeof cut, "%s/cut.tif", g_dir);
  snprintf(cmd, sizeof cmd, "head -c $(( $(stat -c %%s %s) * 3 / 5 )) %s > %s", g_s1, g_s1,
           cut);
  ck_assert_int_eq(system(cmd), 0);
  const char *cut_paths[2] = {cut, g_s2};
  msc_status st = msc_scene_open(cut_paths, 2, m, NULL, &sc);
  snprintf(mp, sizeof mp, "%s/from_cut.tif", g_dir);
  if (st == MSC_OK) {
    st = msc_scene_write(sc, mp, NULL, NULL, NULL);
    msc_scene_free(sc);
  }
  ck_assert_msg(st == MSC_E_IO || st == MSC_E_BAD_FORMAT, "truncated raster: status %d: %s",
                (int)st, msc_last_error());
  ck_assert_int_ne(access(mp, F_OK), 0);
  msc_model_free(m);
}
END_TEST

/* Finite pixels up to ±3e38 overflow the model's activations: msc_scene_write never
 * writes NaN probabilities for pixels that are not missing. It refuses with
 * MSC_E_NUMERICAL (the message of the output call) and leaves no output file; for the
 * segmentation model it may also succeed when the overflow died in a ReLU, and then
 * every probability is finite. */
START_TEST(huge_pixels) {
  char h1[400], h2[400];
  snprintf(h1, sizeof h1, "%s/huge1.tif", g_dir);
  snprintf(h2, sizeof h2, "%s/huge2.tif", g_dir);
  float *px = malloc((size_t)NB2 * N * N * sizeof(float));
  for (int64_t i = 0; i < (int64_t)NB2 * N * N; ++i) /* up to ±3e38, both signs */
    px[i] = 3e38f / 7 * (float)(i % 7) * (i % 3 ? 1 : -1);
  msci_geotiff_spec sp;
  memset(&sp, 0, sizeof sp);
  sp.width = sp.height = N, sp.bands = NB1, sp.sample_format = 3, sp.bits = 32;
  ck_assert_int_eq(msci_geotiff_write(h1, &sp, px), MSC_OK);
  sp.bands = NB2;
  ck_assert_int_eq(msci_geotiff_write(h2, &sp, px), MSC_OK);
  free(px);
  const char *paths[2] = {h1, h2};
  const char *tasks[2] = {"segmentation", "contrastive"};
  for (int k = 0; k < 2; ++k) {
    msc_model *m = make_model(tasks[k]);
    msc_scene *sc = NULL;
    ck_assert_int_eq(msc_scene_open(paths, 2, m, NULL, &sc), MSC_OK);
    char mp[400], pp[400];
    snprintf(mp, sizeof mp, "%s/huge_mask.tif", g_dir);
    snprintf(pp, sizeof pp, "%s/huge_probs.tif", g_dir);
    msc_status st = msc_scene_write(sc, mp, pp, NULL, NULL);
    msc_scene_free(sc);
    if (st == MSC_OK && k == 0) {
      /* The decoder's ReLUs may turn the overflow into finite values: then every pixel
       * (none is missing) has finite probabilities. */
      msci_raster probs;
      ck_assert_int_eq(msci_raster_read(pp, &probs), MSC_OK);
      for (int64_t i = 0; i < 2 * N * N; ++i)
        ck_assert_msg(isfinite(probs.data[i]), "MSC_OK with probability %g at %lld",
                      probs.data[i], (long long)i);
      msci_raster_free(&probs);
      unlink(mp), unlink(pp);
      msc_model_free(m);
      continue;
    }
    /* The fused features of the classifier certainly overflow. */
    ck_assert_msg(st == MSC_E_NUMERICAL, "%s: status %d (%s)", tasks[k], (int)st,
                  msc_last_error());
    ck_assert_msg(strstr(msc_last_error(), "not finite"), "message '%s'", msc_last_error());
    ck_assert_int_ne(access(mp, F_OK), 0);
    ck_assert_int_ne(access(pp, F_OK), 0);
    msc_model_free(m);
  }
}
END_TEST

/* The affine origin and pixel size of a raster with a tie point and a pixel scale. */
static void origin_of(const msci_raster_info *in, double *x, double *y, double *sx,
                      double *sy) {
  ck_assert(in->has_tiepoints && in->has_pixel_scale);
  *sx = in->pixel_scale[0], *sy = in->pixel_scale[1];
  *x = in->tiepoints[3] - in->tiepoints[0] * *sx;
  *y = in->tiepoints[4] + in->tiepoints[1] * *sy;
}

/* Embedding map, stride 16: tiles at 0, 16, 32, 48, 64 ((100 − 32) / 16 + 1 = 5 per
 * axis; 68 would need a shifted tile). Pixel (i, j) against msc_embed of the tile at
 * (16i, 16j) read from the files; the grid: pixel size 16 × the input's, origin
 * (32 − 16) / 2 = 8 input pixels in. */
START_TEST(embedding_map) {
  msc_model *m = make_model("segmentation");
  const char *paths[2] = {g_s1, g_s2};
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "scene.stride", 16), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "scene.batch", 3), MSC_OK);
  msc_scene *sc = NULL;
  ck_assert_int_eq(msc_scene_open(paths, 2, m, o, &sc), MSC_OK);
  msc_options_free(o);
  char ep[400];
  snprintf(ep, sizeof ep, "%s/emb.tif", g_dir);
  ck_assert_int_eq(msc_scene_write_embeddings(sc, ep, MSC_EMBED_FUSED, NULL, NULL), MSC_OK);
  ck_assert_int_eq(msc_scene_write_embeddings(sc, ep, 0x7777, NULL, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_scene_write_embeddings(sc, NULL, 0, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  int64_t D = 0;
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, &D), MSC_OK);
  msci_raster e;
  ck_assert_int_eq(msci_raster_read(ep, &e), MSC_OK);
  ck_assert(e.width == 5 && e.height == 5 && e.bands == D);
  const int64_t at[4][2] = {{0, 0}, {4, 1}, {2, 3}, {4, 4}};
  float *ref = malloc((size_t)D * sizeof *ref);
  uint8_t valid[P * P];
  for (int k = 0; k < 4; ++k) {
    const int64_t i = at[k][0], j = at[k][1];
    msc_batch *bt = ref_batch(16 * i, 16 * j, NULL, valid);
    ck_assert_int_eq(msc_embed(m, bt, MSC_EMBED_FUSED, ref, (size_t)D), MSC_OK);
    msc_batch_free(bt);
    for (int64_t d = 0; d < D; ++d)
      ck_assert_float_eq_tol(e.data[(d * 5 + j) * 5 + i], ref[d],
                             1e-5f + 1e-5f * fabsf(ref[d]));
  }
  msci_raster s1;
  ck_assert_int_eq(msci_raster_read(g_s1, &s1), MSC_OK);
  double x, y, sx, sy, ex, ey, esx, esy;
  origin_of(&s1.info, &x, &y, &sx, &sy);
  origin_of(&e.info, &ex, &ey, &esx, &esy);
  ck_assert_double_eq_tol(esx, 16 * sx, 1e-12);
  ck_assert_double_eq_tol(esy, 16 * sy, 1e-12);
  ck_assert_double_eq_tol(ex, x + 8 * sx, 1e-9);
  ck_assert_double_eq_tol(ey, y - 8 * sy, 1e-9);
  ck_assert_int_eq(msci_raster_info_epsg(&e.info), 4326);
  /* float16: the same values to half precision (relative 2^-11). */
  msc_scene_free(sc);
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "scene.embedding_type", "float16"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "scene.stride", 16), MSC_OK);
  ck_assert_int_eq(msc_scene_open(paths, 2, m, o, &sc), MSC_OK);
  msc_options_free(o);
  ck_assert_int_eq(msc_scene_write_embeddings(sc, ep, MSC_EMBED_FUSED, NULL, NULL), MSC_OK);
  msc_scene_free(sc);
  TIFF *t = TIFFOpen(ep, "r");
  ck_assert_ptr_nonnull(t);
  uint16_t bits = 0;
  TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bits);
  ck_assert_int_eq(bits, 16);
  uint16_t *h = malloc((size_t)TIFFTileSize(t));
  ck_assert_int_ge(TIFFReadEncodedTile(t, 0, h, TIFFTileSize(t)), 0);
  for (int64_t j = 0; j < 5; ++j)
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t d = 0; d < D; ++d) {
        const uint16_t v = h[(j * 256 + i) * D + d];
        const int ex16 = (v >> 10) & 31, mant = v & 1023;
        double f = ex16 ? ldexp(1024 + mant, ex16 - 25) : ldexp(mant, -24);
        if (v & 0x8000) f = -f;
        const float want = e.data[(d * 5 + j) * 5 + i];
        ck_assert_double_eq_tol(f, want, 6.2e-5 + fabs(want) / 2048);
      }
  free(h);
  TIFFClose(t);
  free(ref);
  msci_raster_free(&s1);
  msci_raster_free(&e);
  msc_model_free(m);
}
END_TEST

/* A cloud mask at half resolution (50 × 50, factor 2, nearest): mask pixels [0, 16)²
 * cover tile (0, 0) wholly (not run: nodata); mask rows [0, 10) of columns [16, 32) are
 * 20 of tile (32, 0)'s 32 rows, 62.5 % > 0.5 (not run); mask rows [0, 4) of columns
 * [32, 48) are 8 of tile (64, 0)'s rows, 25 % (runs, those pixels nodata); mask pixel
 * (30, 30) is scene pixels (60..61, 60..61) of tile (32, 32) (runs, masked pixels filled
 * like NaN ones and nodata). */
START_TEST(cloud_mask) {
  msc_model *m = make_model("segmentation");
  char mp[400];
  snprintf(mp, sizeof mp, "%s/clouds.tif", g_dir);
  static float cm[60 * 60]; /* (60 × 60: the mask of another size refused below) */
  memset(cm, 0, sizeof cm);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) cm[y * 50 + x] = 1;
  for (int y = 0; y < 10; ++y)
    for (int x = 16; x < 32; ++x) cm[y * 50 + x] = 3;
  for (int y = 0; y < 4; ++y)
    for (int x = 32; x < 48; ++x) cm[y * 50 + x] = 1;
  cm[30 * 50 + 30] = 1;
  msci_geotiff_spec sp;
  memset(&sp, 0, sizeof sp);
  sp.width = sp.height = 50, sp.bands = 1, sp.sample_format = 1, sp.bits = 8;
  sp.has_nodata = 1, sp.nodata = 0; /* a nodata of 0 must not mask the clear pixels */
  ck_assert_int_eq(msci_geotiff_write(mp, &sp, cm), MSC_OK);
  char json[600];
  snprintf(json, sizeof json, "{\"scene.mask\":\"%s\"}", mp);
  msci_raster mask, probs;
  map(m, NULL, json, &mask, &probs);
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 64; ++x) ck_assert_float_eq(mask.data[y * N + x], 255.f);
  int32_t cls[P * P];
  float prob[2 * P * P];
  uint8_t valid[P * P], force[P * P];
  memset(force, 0, sizeof force);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < P; ++x) force[y * P + x] = 1;
  g_force = force;
  reference(m, 64, 0, NULL, cls, prob, valid); /* owns columns [64, 82) */
  check_region(&mask, &probs, 64, 0, 0, 82 - 64, 0, P, cls, prob, valid);
  memset(force, 0, sizeof force);
  for (int y = 28; y < 30; ++y)
    for (int x = 28; x < 30; ++x) force[y * P + x] = 1;
  reference(m, 32, 32, NULL, cls, prob, valid);
  check_region(&mask, &probs, 32, 32, 0, P, 0, P, cls, prob, valid);
  g_force = NULL;
  for (int y = 60; y < 62; ++y)
    for (int x = 60; x < 62; ++x) ck_assert_float_eq(mask.data[y * N + x], 255.f);
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  /* A masked share of 0.7 allowed: tile (32, 0) runs (masked rows nodata, row 20 not). */
  snprintf(json, sizeof json, "{\"scene.mask\":\"%s\",\"scene.max_masked\":0.7}", mp);
  map(m, NULL, json, &mask, &probs);
  memset(force, 0, sizeof force);
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < P; ++x) force[y * P + x] = 1;
  g_force = force;
  reference(m, 32, 0, NULL, cls, prob, valid);
  check_region(&mask, &probs, 32, 0, 0, P, 0, P, cls, prob, valid);
  g_force = NULL;
  ck_assert_float_eq(mask.data[19 * N + 40], 255.f);
  ck_assert_float_eq(mask.data[31 * N + 20], 255.f); /* tile (0, 0): fully masked */
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  /* Embeddings: the fully masked tile (0, 0) is NaN. */
  const char *paths[2] = {g_s1, g_s2};
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "scene.mask", mp), MSC_OK);
  msc_scene *sc = NULL;
  ck_assert_int_eq(msc_scene_open(paths, 2, m, o, &sc), MSC_OK);
  char ep[400];
  snprintf(ep, sizeof ep, "%s/emb.tif", g_dir);
  ck_assert_int_eq(msc_scene_write_embeddings(sc, ep, MSC_EMBED_FUSED, NULL, NULL), MSC_OK);
  msc_scene_free(sc);
  msci_raster e;
  ck_assert_int_eq(msci_raster_read(ep, &e), MSC_OK);
  ck_assert(e.width == 3 && e.height == 3);
  ck_assert(isnan(e.data[0]) && isnan(e.data[1]) && !isnan(e.data[2]) && !isnan(e.data[4]));
  msci_raster_free(&e);
  /* Refused: a mask of another size, or with two bands. */
  sp.width = sp.height = 60;
  ck_assert_int_eq(msci_geotiff_write(mp, &sp, cm), MSC_OK);
  ck_assert_int_eq(msc_scene_open(paths, 2, m, o, &sc), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "mask"));
  sp.width = sp.height = 25, sp.bands = 2;
  ck_assert_int_eq(msci_geotiff_write(mp, &sp, cm), MSC_OK);
  ck_assert_int_eq(msc_scene_open(paths, 2, m, o, &sc), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "2 bands"));
  msc_options_free(o);
  msc_model_free(m);
}
END_TEST

/* A NULL path makes a modality absent (include/mosaic/mosaic.h, msc_scene_open): without
 * S2 the class probabilities of the tile at (32, 64) are msc_predict's on a batch holding
 * only that window of S1 (S1's NaN pixels filled with its means), and they differ from
 * the map with both modalities; a decoder that reads S2 cannot map without it, and no
 * path at all is refused. */
START_TEST(absent_modality) {
  msc_model *m = make_model("contrastive");
  const char *paths[2] = {g_s1, NULL};
  msc_scene *sc = NULL;
  msc_status st = msc_scene_open(paths, 2, m, NULL, &sc);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  char pp[400], mp[400];
  snprintf(pp, sizeof pp, "%s/probs_s1.tif", g_dir);
  st = msc_scene_write(sc, NULL, pp, NULL, NULL);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  msc_scene_free(sc);
  msci_raster probs, both, mask;
  ck_assert_int_eq(msci_raster_read(pp, &probs), MSC_OK);
  map(m, NULL, NULL, &mask, &both);

  msci_raster r1;
  ck_assert_int_eq(msci_raster_read_window(g_s1, 32, 64, P, P, &r1), MSC_OK);
  uint8_t valid[P * P];
  for (int i = 0; i < P * P; ++i) {
    valid[i] = 1;
    for (int b = 0; b < NB1; ++b) valid[i] &= isfinite(r1.data[b * P * P + i]) != 0;
  }
  for (int i = 0; i < P * P; ++i)
    for (int b = 0; !valid[i] && b < NB1; ++b) r1.data[b * P * P + i] = k_mean1[b];
  msc_batch *bt = NULL;
  ck_assert_int_eq(msc_batch_create(&bt), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(bt, "s1", r1.data, 1, NB1, P, P), MSC_OK);
  float prob[2];
  ck_assert_int_eq(msc_predict(m, bt, prob, 2), MSC_OK);
  msc_batch_free(bt);
  msci_raster_free(&r1);
  int checked = 0, differ = 0;
  for (int y = 64; y < 82; ++y) /* tile row 2 (origin 64) owns rows [64, 82) */
    for (int x = 32; x < 64; ++x) {
      const int o = y * N + x;
      if (!valid[(y - 64) * P + x - 32]) {
        ck_assert(isnan(probs.data[o]));
        continue;
      }
      ck_assert_float_eq_tol(probs.data[o], prob[0], 1e-5f);
      ck_assert_float_eq_tol(probs.data[N * N + o], prob[1], 1e-5f);
      differ += fabsf(both.data[o] - prob[0]) > 1e-6f;
      ++checked;
    }
  ck_assert_int_gt(checked, 0);
  ck_assert_int_gt(differ, 0);
  msci_raster_free(&probs);
  msci_raster_free(&both);
  msci_raster_free(&mask);
  msc_model_free(m);

  /* The decoder reads S2's levels: msc_predict_mask refuses the batch, nothing is left. */
  m = make_model("segmentation");
  ck_assert_int_eq(msc_scene_open(paths, 2, m, NULL, &sc), MSC_OK);
  snprintf(mp, sizeof mp, "%s/mask_s1.tif", g_dir);
  ck_assert_int_ne(msc_scene_write(sc, mp, NULL, NULL, NULL), MSC_OK);
  ck_assert_int_ne(access(mp, F_OK), 0);
  msc_scene_free(sc);
  const char *none[2] = {NULL, NULL};
  sc = NULL;
  ck_assert_int_eq(msc_scene_open(none, 2, m, NULL, &sc), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(sc);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "every path is NULL"));
  msc_model_free(m);
}
END_TEST

/* A copy of the S2 raster with 1000 added to every value (NaN kept), as baseline 04.00
 * stores the same reflectances, at path (its folder created). */
static void write_offset_copy(const char *dir, const char *path) {
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(g_s2, &r), MSC_OK);
  for (int64_t i = 0; i < r.bands * r.width * r.height; ++i) r.data[i] += 1000.f;
  msci_georef gr;
  ck_assert_int_eq(msci_georef_window(&r.info, 0, 0, 1, &gr), MSC_OK);
  msci_geotiff_spec sp;
  memset(&sp, 0, sizeof sp);
  sp.width = r.width, sp.height = r.height, sp.bands = r.bands;
  sp.sample_format = SAMPLEFORMAT_IEEEFP, sp.bits = 32, sp.geo = &r.info, sp.grid = &gr;
  ck_assert_int_eq(msci_geotiff_write(path, &sp, r.data), MSC_OK);
  msci_raster_free(&r);
}

/* Sentinel-2 processing baseline 04.00 (scene.harmonize, the default): a raster whose
 * metadata.json says PROCESSING_BASELINE 04.00, or whose product name says _N0400_, holding
 * the S2 values + 1000 maps exactly as the original raster does (the reader subtracts the
 * offset, msci_series_baseline decides); with scene.harmonize = 0 it does not. */
START_TEST(s2_baseline) {
  msc_model *m = make_model("segmentation");
  msci_raster mask0, probs0, mask, probs;
  map(m, NULL, NULL, &mask0, &probs0);
  char dir[2][400], path[2][1024];
  snprintf(dir[0], sizeof dir[0], "%s/b4", g_dir);
  snprintf(dir[1], sizeof dir[1], "%s/S2B_MSIL2A_20220706T085611_N0400_R007_T20KPB", g_dir);
  for (int k = 0; k < 2; ++k) {
    snprintf(path[k], sizeof path[k], "%s/s2.tif", dir[k]);
    write_offset_copy(dir[k], path[k]);
  }
  char meta[1024];
  snprintf(meta, sizeof meta, "%s/metadata.json", dir[0]);
  FILE *f = fopen(meta, "w");
  ck_assert_ptr_nonnull(f);
  fputs("{\"PROCESSING_BASELINE\": \"04.00\", \"SPACECRAFT_NAME\": \"Sentinel-2B\"}\n", f);
  fclose(f);
  for (int k = 0; k < 2; ++k) {
    map(m, path[k], NULL, &mask, &probs);
    for (int64_t i = 0; i < 2 * N * N; ++i)
      if (isnan(probs0.data[i]))
        ck_assert(isnan(probs.data[i]));
      else
        ck_assert_float_eq_tol(probs.data[i], probs0.data[i], 1e-5f);
    msci_raster_free(&mask);
    msci_raster_free(&probs);
  }
  map(m, path[0], "{\"scene.harmonize\": 0}", &mask, &probs);
  int differ = 0;
  for (int64_t i = 0; i < 2 * N * N; ++i)
    differ += !isnan(probs0.data[i]) && fabsf(probs.data[i] - probs0.data[i]) > 1e-3f;
  ck_assert_int_gt(differ, 0);
  msci_raster_free(&mask);
  msci_raster_free(&probs);
  msci_raster_free(&mask0);
  msci_raster_free(&probs0);
  msc_model_free(m);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("scene");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, centre_no_overlap);
  tcase_add_test(tc, centre_overlap);
  tcase_add_test(tc, mean_blend);
  tcase_add_test(tc, coarse_modality);
  tcase_add_test(tc, classification);
  tcase_add_test(tc, cancel_and_refusals);
  tcase_add_test(tc, huge_pixels);
  tcase_add_test(tc, embedding_map);
  tcase_add_test(tc, cloud_mask);
  tcase_add_test(tc, absent_modality);
  tcase_add_test(tc, s2_baseline);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
