/*
 * scene.c — opening a scene (msc_scene_open): every raster's layout and georeferencing
 * read without pixels, checked against the model (bands, one patch size) and against the
 * finest raster (the grid: same extent, an integer resolution factor, same EPSG code),
 * and the tile grid laid out. msc_scene_write is in scene_run.c; docs/scenes.md.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/model.h"
#include "model/scene.h"
#include "data/dataset.h"

int64_t msci_scene_tile_count(int64_t size, int64_t P, int64_t stride) {
  return size <= P ? 1 : (size - P + stride - 1) / stride + 1;
}

int64_t msci_scene_tile_origin(int64_t k, int64_t n, int64_t size, int64_t P, int64_t stride) {
  int64_t x = k * stride;
  return k == n - 1 || x > size - P ? size - P : x;
}

/* Pixel x goes to tile k + 1 rather than k when its centre x + 1/2 is strictly nearer to
 * c_{k+1} = pos_{k+1} + P/2 than to c_k: 2x + 1 > pos_k + pos_{k+1} + P. */
void msci_scene_owned(const int64_t *pos, int64_t n, int64_t k, int64_t P, int64_t size,
                      int64_t *lo, int64_t *hi) {
  *lo = k == 0 ? 0 : (pos[k - 1] + pos[k] + P - 1) / 2 + 1;
  *hi = k == n - 1 ? size : (pos[k] + pos[k + 1] + P - 1) / 2 + 1;
}

/* The affine map from raster coordinates (pixel corners) to the model space:
 * X = a[0] + a[1]·u + a[2]·v, Y = a[3] + a[4]·u + a[5]·v. 0 when not georeferenced. */
static int affine_of(const msci_raster_info *in, double a[6]) {
  msci_georef g;
  if (msci_georef_window(in, 0, 0, 1, &g) != MSC_OK) return 0;
  uint16_t rt = 1;
  const double h = msci_raster_info_geokey(in, 1025, &rt) && rt == 2 ? 0.5 : 0.0;
  if (g.has_transformation) {
    const double *m = g.transformation;
    a[1] = m[0], a[2] = m[1], a[4] = m[4], a[5] = m[5];
    a[0] = m[3] - h * (m[0] + m[1]), a[3] = m[7] - h * (m[4] + m[5]);
    return 1;
  }
  if (g.has_tiepoint) { /* Y grows downwards: −ScaleY */
    const double *t = g.tiepoint;
    a[1] = g.scale[0], a[2] = 0, a[4] = 0, a[5] = -g.scale[1];
    a[0] = t[3] - (t[0] + h) * g.scale[0], a[3] = t[4] + (t[1] + h) * g.scale[1];
    return 1;
  }
  return 0;
}

/* Whether raster m lies on the grid of raster g at factor f (when both are georeferenced). */
static msc_status check_extent(const msci_scene_mod *m, const msci_scene_mod *g) {
  double am[6], ag[6];
  int hm = affine_of(&m->info, am), hg = affine_of(&g->info, ag);
  if (!hm || !hg) {
    if (hm != hg)
      msci_log(MSC_LOG_WARNING,
               "scene: %s is %sgeoreferenced and %s is %s; taken to be on one grid", m->path,
               hm ? "" : "not ", g->path, hg ? "georeferenced" : "not");
    return MSC_OK;
  }
  const int32_t em = msci_raster_info_epsg(&m->info), eg = msci_raster_info_epsg(&g->info);
  if (em && eg && em != eg)
    return msci_fail(MSC_E_SHAPE, "scene: %s is in EPSG:%d, %s in EPSG:%d", m->path, (int)em,
                     g->path, (int)eg);
  const double f = (double)m->factor;
  const double px = fabs(ag[1]) + fabs(ag[2]) + fabs(ag[4]) + fabs(ag[5]); /* ~ pixel size */
  int ok = fabs(am[0] - ag[0]) <= 1e-3 * px && fabs(am[3] - ag[3]) <= 1e-3 * px;
  const int lin[4] = {1, 2, 4, 5};
  for (int i = 0; i < 4; ++i) ok = ok && fabs(am[lin[i]] - f * ag[lin[i]]) <= 1e-6 * f * px;
  if (!ok)
    return msci_fail(MSC_E_SHAPE,
                     "scene: %s (origin %.10g, %.10g, pixel %.6g x %.6g) is not on the grid of "
                     "%s (origin %.10g, %.10g, pixel %.6g x %.6g) at %lldx its pixel size",
                     m->path, am[0], am[3], am[1], am[5], g->path, ag[0], ag[3], ag[1], ag[5],
                     (long long)m->factor);
  return MSC_OK;
}

void msc_scene_free(msc_scene *scene) {
  if (!scene) return;
  for (int32_t i = 0; i < scene->n; ++i) {
    free(scene->mod[i].path);
    msci_raster_info_free(&scene->mod[i].info);
  }
  free(scene->mask.path);
  msci_raster_info_free(&scene->mask.info);
  free(scene->xs);
  free(scene->ys);
  free(scene);
}

static msc_status read_options(const msc_options *opts, msc_scene *s) {
  int64_t stride = 0, batch = 8, overviews = 1, harmonize = 1;
  double max_masked = 0.5;
  char resample[16] = "bilinear", blend[16] = "centre", type[16] = "float32";
  size_t mlen = 0;
  if (opts) {
    MSCI_TRY(msc_options_get_int(opts, "scene.overviews", &overviews));
    MSCI_TRY(msc_options_get_int(opts, "scene.harmonize", &harmonize));
    MSCI_TRY(msc_options_get_float(opts, "scene.max_masked", &max_masked));
    MSCI_TRY(msc_options_get_string(opts, "scene.embedding_type", type, sizeof type, NULL));
    char one[1];
    msc_status st = msc_options_get_string(opts, "scene.mask", one, sizeof one, &mlen);
    if (st != MSC_OK && st != MSC_E_BUFFER_TOO_SMALL) return st;
    if (mlen > 0) {
      if (!(s->mask.path = malloc(mlen + 1)))
        return msci_fail(MSC_E_OUT_OF_MEMORY, "scene: mask path");
      MSCI_TRY(msc_options_get_string(opts, "scene.mask", s->mask.path, mlen + 1, NULL));
      s->has_mask = 1;
    }
    MSCI_TRY(msc_options_get_int(opts, "scene.stride", &stride));
    MSCI_TRY(msc_options_get_int(opts, "scene.batch", &batch));
    MSCI_TRY(msc_options_get_string(opts, "scene.resample", resample, sizeof resample, NULL));
    MSCI_TRY(msc_options_get_string(opts, "scene.blend", blend, sizeof blend, NULL));
  }
  if (stride > s->P)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "scene: scene.stride = %lld exceeds the tile size %lld (pixels would be "
                     "skipped)",
                     (long long)stride, (long long)s->P);
  s->stride = stride ? stride : s->P;
  s->batch = batch;
  s->nearest = strcmp(resample, "nearest") == 0;
  s->mean = strcmp(blend, "mean") == 0;
  s->overviews = overviews != 0;
  s->harmonize = harmonize != 0;
  s->max_masked = max_masked;
  s->half = strcmp(type, "float16") == 0;
  return MSC_OK;
}

/* Reads the modalities' rasters and checks them against the model. */
static msc_status open_rasters(const char *const *paths, msc_scene *s) {
  const msci_model_cfg *cfg = &s->model->cfg;
  s->grid = -1;
  for (int32_t i = 0; i < s->n; ++i) {
    msci_scene_mod *m = &s->mod[i];
    if (!paths[i]) { /* an absent modality: the model decides whether it can do without */
      m->absent = 1;
      continue;
    }
    size_t len = strlen(paths[i]);
    if (!(m->path = malloc(len + 1))) return msci_fail(MSC_E_OUT_OF_MEMORY, "scene: path");
    memcpy(m->path, paths[i], len + 1);
    MSCI_TRY(msci_raster_info_read(m->path, &m->info));
    m->bands = cfg->mod[i].bands;
    if (m->info.bands != m->bands)
      return msci_fail(MSC_E_SHAPE, "scene: %s has %lld bands, modality %s of the model %lld",
                       m->path, (long long)m->info.bands, cfg->mod[i].name,
                       (long long)m->bands);
    for (int64_t b = 0; b < m->bands; ++b) m->fill[b] = cfg->mod[i].mean[b];
    /* Sentinel-2 of processing baseline 04.00 or later (25 January 2022) has 1000 added
     * to every digital number: subtracted, the raster is in the earlier convention, the
     * one the series reader puts every date in (msci_series_baseline, docs/scenes.md). */
    if (s->harmonize && strncasecmp(cfg->mod[i].name, "s2", 2) == 0 &&
        msci_series_baseline(m->path) >= 4.0 - 1e-9)
      m->shift = 1000.0f;
    if (cfg->mod[i].size != s->P)
      return msci_fail(
          MSC_E_UNSUPPORTED,
          "scene: modality %s has patches of %lld pixels, %s of %lld; a scene needs "
          "one patch size",
          cfg->mod[i].name, (long long)cfg->mod[i].size, cfg->mod[0].name, (long long)s->P);
    if (s->grid < 0 || m->info.width > s->mod[s->grid].info.width) s->grid = i;
  }
  if (s->grid < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "scene: every path is NULL: a scene needs at "
                                             "least one modality's raster");
  const msci_scene_mod *g = &s->mod[s->grid];
  s->width = g->info.width, s->height = g->info.height;
  for (int32_t i = 0; i < s->n; ++i) {
    msci_scene_mod *m = &s->mod[i];
    if (m->absent) continue;
    const int64_t f = s->width / m->info.width;
    if (f * m->info.width != s->width || f * m->info.height != s->height)
      return msci_fail(MSC_E_SHAPE,
                       "scene: %s is %lld x %lld pixels, not the %lld x %lld of %s divided by "
                       "an integer factor",
                       m->path, (long long)m->info.width, (long long)m->info.height,
                       (long long)s->width, (long long)s->height, g->path);
    m->factor = f;
    MSCI_TRY(check_extent(m, g));
  }
  if (s->width < s->P || s->height < s->P)
    return msci_fail(MSC_E_SHAPE, "scene: %s is %lld x %lld pixels, smaller than a tile (%lld)",
                     g->path, (long long)s->width, (long long)s->height, (long long)s->P);
  if (s->has_mask) { /* one band, on the grid or coarser by an integer factor */
    msci_scene_mod *m = &s->mask;
    MSCI_TRY(msci_raster_info_read(m->path, &m->info));
    m->bands = 1;
    const int64_t f = s->width / m->info.width;
    if (m->info.bands != 1)
      return msci_fail(MSC_E_SHAPE, "scene: the mask %s has %lld bands, not 1", m->path,
                       (long long)m->info.bands);
    if (f * m->info.width != s->width || f * m->info.height != s->height)
      return msci_fail(MSC_E_SHAPE,
                       "scene: the mask %s is %lld x %lld pixels, not the %lld x %lld of the "
                       "scene (%s) divided by an integer factor",
                       m->path, (long long)m->info.width, (long long)m->info.height,
                       (long long)s->width, (long long)s->height, g->path);
    m->factor = f;
    MSCI_TRY(check_extent(m, g));
  }
  msci_georef gr;
  MSCI_TRY(msci_georef_window(&g->info, 0, 0, 1, &gr));
  s->georef = gr;
  s->has_georef = gr.has_tiepoint || gr.has_transformation;
  return MSC_OK;
}

msc_status msc_scene_open(const char *const *paths, int32_t n, msc_model *model,
                          const msc_options *opts, msc_scene **out) {
  if (!paths || !model || !out)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "scene: NULL argument");
  if (n != model->cfg.n_mod)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "scene: %d rasters for a model of %d modalities",
                     (int)n, (int)model->cfg.n_mod);
  msc_scene *s = calloc(1, sizeof *s);
  if (!s) return msci_fail(MSC_E_OUT_OF_MEMORY, "scene");
  s->model = model;
  s->n = n;
  s->P = model->cfg.mod[0].size;
  msc_status st = read_options(opts, s);
  if (st == MSC_OK) st = open_rasters(paths, s);
  if (st == MSC_OK) {
    s->nx = msci_scene_tile_count(s->width, s->P, s->stride);
    s->ny = msci_scene_tile_count(s->height, s->P, s->stride);
    s->xs = malloc((size_t)s->nx * sizeof *s->xs);
    s->ys = malloc((size_t)s->ny * sizeof *s->ys);
    if (!s->xs || !s->ys) st = msci_fail(MSC_E_OUT_OF_MEMORY, "scene: tile grid");
  }
  if (st != MSC_OK) {
    msc_scene_free(s);
    return st;
  }
  for (int64_t k = 0; k < s->nx; ++k)
    s->xs[k] = msci_scene_tile_origin(k, s->nx, s->width, s->P, s->stride);
  for (int64_t k = 0; k < s->ny; ++k)
    s->ys[k] = msci_scene_tile_origin(k, s->ny, s->height, s->P, s->stride);
  *out = s;
  return MSC_OK;
}

msc_status msc_scene_size(const msc_scene *scene, int64_t *width, int64_t *height,
                          int64_t *tiles) {
  if (!scene) return msci_fail(MSC_E_INVALID_ARGUMENT, "scene: NULL scene");
  if (width) *width = scene->width;
  if (height) *height = scene->height;
  if (tiles) *tiles = scene->nx * scene->ny;
  return MSC_OK;
}
