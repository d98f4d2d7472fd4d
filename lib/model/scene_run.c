/*
 * scene_run.c — msc_scene_write: a scene mapped one row of tiles at a time (docs/scenes.md).
 *
 * For tile row k (rows ys[k] .. ys[k] + P of the scene):
 *  1. every modality's rows are read as one window of the raster (a coarser raster: the
 *     coarse rows those scene rows need, resampled as msci_resample would resample the
 *     whole raster), its missing pixels (NaN, infinite, the file's nodata) marked and
 *     filled with the band's normalisation mean;
 *  2. the tiles of the row go through the model scene.batch at a time (a tile without
 *     a valid pixel is skipped);
 *  3. each tile's result goes into the output rows: the pixels it owns (centre crop), or
 *     added to the running sums (mean);
 *  4. the rows no later tile can touch are converted and streamed to the GeoTIFF
 *     writers, and the output buffer moves down.
 * The output buffer holds P rows from `base`, the first row not yet written: every tile
 * of row k lies within [base, base + P) (base ≥ ys[k], scene.h's ownership rule keeps
 * the owned rows of a tile inside it).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "model/model.h"
#include "model/scene.h"

typedef struct run {
  msc_scene *s;
  int64_t W, P, C, B; /* scene width, tile, classes, batch */
  int32_t seg;
  float *in[MSCI_MAX_MODALITIES];    /* bands × P × W: the tile row's input */
  uint8_t *valid;                    /* P × W */
  uint8_t *masked;                   /* P × W: scene.mask nonzero */
  float *patch[MSCI_MAX_MODALITIES]; /* B × bands × P × P */
  int32_t *cls;                      /* B × P × P (segmentation) */
  float *prob;                       /* B × C × P × P, or B × C (classification) */
  /* The output rows [base, base + P): */
  int64_t base;
  float *o_cls;  /* P × W: the owner's class (centre), NaN where missing */
  float *o_sum;  /* C × P × W: the owner's probabilities (centre) or their sum (mean) */
  float *o_cnt;  /* P × W: tiles added (mean); < 0 where missing */
  float *rows_m; /* P × W: converted class rows */
  float *rows_p; /* C × P × W: converted probability rows */
  msc_batch *batch;
  msci_geotiff *wm, *wp;
} run;

static void run_free(run *r) {
  for (int i = 0; i < MSCI_MAX_MODALITIES; ++i) free(r->in[i]), free(r->patch[i]);
  free(r->valid), free(r->masked), free(r->cls), free(r->prob);
  free(r->o_cls), free(r->o_sum), free(r->o_cnt), free(r->rows_m), free(r->rows_p);
  msc_batch_free(r->batch);
  msci_geotiff_abort(r->wm);
  msci_geotiff_abort(r->wp);
}

/* The input side: a row of tiles, its masks and a batch of patches. */
static int alloc_input(run *r) {
  const size_t W = (size_t)r->W, P = (size_t)r->P, B = (size_t)r->B;
  int ok = 1;
  for (int32_t m = 0; m < r->s->n; ++m) {
    if (r->s->mod[m].absent) continue;
    const size_t bands = (size_t)r->s->mod[m].bands;
    ok = ok && (r->in[m] = malloc(bands * P * W * sizeof(float)));
    ok = ok && (r->patch[m] = malloc(B * bands * P * P * sizeof(float)));
  }
  return ok && (r->valid = malloc(P * W)) && (r->masked = calloc(P * W, 1));
}

static msc_status run_alloc(run *r) {
  const size_t W = (size_t)r->W, P = (size_t)r->P, C = (size_t)r->C, B = (size_t)r->B;
  int ok = alloc_input(r);
  ok = ok && (r->cls = malloc(B * P * P * sizeof(int32_t))) &&
       (r->prob = malloc(B * C * P * P * sizeof(float))) &&
       (r->o_cls = malloc(P * W * sizeof(float))) &&
       (r->o_sum = malloc(C * P * W * sizeof(float))) &&
       (r->o_cnt = malloc(P * W * sizeof(float))) &&
       (r->rows_m = malloc(P * W * sizeof(float))) &&
       (r->rows_p = malloc(C * P * W * sizeof(float)));
  if (!ok)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "scene: buffers for a row of tiles (%lld x %lld)",
                     (long long)r->P, (long long)r->W);
  for (size_t i = 0; i < P * W; ++i) r->o_cls[i] = NAN, r->o_cnt[i] = 0;
  memset(r->o_sum, 0, C * P * W * sizeof(float));
  return msc_batch_create(&r->batch);
}

/* ---- input ----------------------------------------------------------------------------- */

/* Scene rows [y, y + P) of raster m into dst (bands × P × W), missing values as NaN;
 * nearest: nearest-neighbour resampling whatever scene.resample says (the mask). */
static msc_status read_rows(run *r, const msci_scene_mod *m, int64_t y, float *out,
                            int nearest) {
  const int64_t f = m->factor, P = r->P, W = r->W, w = m->info.width, h = m->info.height;
  /* The coarse rows the scene rows read (msci_resample's maps, at scale 1/f). */
  int64_t c0 = 0, c1 = 0;
  for (int64_t k = 0; k < 2; ++k) {
    const int64_t Y = k ? y + P - 1 : y;
    int64_t lo, hi;
    if (nearest || f == 1) {
      lo = hi = Y / f;
    } else {
      double fy = ((double)Y + 0.5) * (double)h / (double)r->s->height - 0.5;
      lo = fy < 0 ? 0 : (int64_t)fy;
      hi = lo + 1 < h ? lo + 1 : lo;
    }
    if (k == 0)
      c0 = lo;
    else
      c1 = hi;
  }
  msci_raster win;
  MSCI_TRY(msci_raster_read_window(m->path, 0, c0, w, c1 - c0 + 1, &win));
  const int64_t wh = c1 - c0 + 1, npx = wh * w;
  if (m != &r->s->mask && m->info.has_nodata && !isnan(m->info.nodata)) /* mask: values */
    for (int64_t i = 0; i < m->bands * npx; ++i)
      if (win.data[i] == (float)m->info.nodata) win.data[i] = NAN;
  if (m->shift != 0) /* the S2 baseline offset (scene.harmonize); NaN stays NaN */
    for (int64_t i = 0; i < m->bands * npx; ++i) win.data[i] -= m->shift;
  for (int64_t b = 0; b < m->bands; ++b) {
    const float *src = win.data + b * npx;
    float *dst = out + b * P * W;
    if (f == 1) {
      memcpy(dst, src, (size_t)(P * W) * sizeof(float));
      continue;
    }
    for (int64_t yy = 0; yy < P; ++yy)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t Y = y + yy;
        if (nearest) {
          dst[yy * W + x] = src[(Y / f - c0) * w + x / f];
          continue;
        }
        /* The very expressions of msci_resample (lib/data/raster.c), so that a row of
         * tiles gets the same floats as the whole raster resampled at once. */
        double fy = ((double)Y + 0.5) * (double)h / (double)r->s->height - 0.5,
               fx = ((double)x + 0.5) * (double)w / (double)W - 0.5;
        fy = fy < 0 ? 0 : fy, fx = fx < 0 ? 0 : fx;
        int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
        int64_t y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
        double wy = fy - (double)y0, wx = fx - (double)x0;
        const float *r0 = src + (y0 - c0) * w, *r1 = src + (y1 - c0) * w;
        double top = (1 - wx) * r0[x0] + wx * r0[x1];
        double bottom = (1 - wx) * r1[x0] + wx * r1[x1];
        dst[yy * W + x] = (float)((1 - wy) * top + wy * bottom);
      }
  }
  msci_raster_free(&win);
  return MSC_OK;
}

/* Every modality's rows of tile row y; r->valid marks the pixels with every value finite,
 * and the others get the band's mean. */
static msc_status read_tile_row(run *r, int64_t y) {
  const int64_t PW = r->P * r->W;
  memset(r->valid, 1, (size_t)PW);
  if (r->s->has_mask) { /* the mask read through the grid raster's row buffer */
    float *buf = r->in[r->s->grid];
    MSCI_TRY(read_rows(r, &r->s->mask, y, buf, 1));
    for (int64_t i = 0; i < PW; ++i) r->masked[i] = buf[i] != 0, r->valid[i] = !r->masked[i];
  }
  for (int32_t m = 0; m < r->s->n; ++m) {
    if (r->s->mod[m].absent) continue;
    MSCI_TRY(read_rows(r, &r->s->mod[m], y, r->in[m], r->s->nearest));
    for (int64_t b = 0; b < r->s->mod[m].bands; ++b)
      for (int64_t i = 0; i < PW; ++i)
        if (!isfinite(r->in[m][b * PW + i])) r->valid[i] = 0;
  }
  for (int32_t m = 0; m < r->s->n; ++m)
    for (int64_t b = 0; !r->s->mod[m].absent && b < r->s->mod[m].bands; ++b)
      for (int64_t i = 0; i < PW; ++i)
        if (!r->valid[i]) r->in[m][b * PW + i] = r->s->mod[m].fill[b];
  return MSC_OK;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Adds tile t of the batch (origin x0, y0) to the output rows. */
static void add_tile(run *r, int64_t t, int64_t kx, int64_t ky) {
  const msc_scene *s = r->s;
  const int64_t P = r->P, W = r->W, C = r->C, PW = P * W, x0 = s->xs[kx], y0 = s->ys[ky];
  int64_t xlo = x0, xhi = x0 + P, ylo = y0, yhi = y0 + P;
  if (!s->mean) {
    msci_scene_owned(s->xs, s->nx, kx, P, s->width, &xlo, &xhi);
    msci_scene_owned(s->ys, s->ny, ky, P, s->height, &ylo, &yhi);
  }
  const float *tp = r->seg ? r->prob + t * C * P * P : r->prob + t * C;
  for (int64_t y = ylo; y < yhi; ++y)
    for (int64_t x = xlo; x < xhi; ++x) {
      const int64_t o = (y - r->base) * W + x, q = (y - y0) * P + (x - x0);
      if (!r->valid[(y - y0) * W + x]) {
        r->o_cnt[o] = -1, r->o_cls[o] = NAN;
        continue;
      }
      const int64_t step = r->seg ? P * P : 1, at = r->seg ? q : 0;
      if (s->mean) {
        for (int64_t c = 0; c < C; ++c) r->o_sum[c * PW + o] += tp[c * step + at];
        r->o_cnt[o] += 1;
        continue;
      }
      for (int64_t c = 0; c < C; ++c) r->o_sum[c * PW + o] = tp[c * step + at];
      if (r->seg) {
        r->o_cls[o] = (float)r->cls[t * P * P + q];
      } else {
        int64_t best = 0;
        for (int64_t c = 1; c < C; ++c)
          if (tp[c] > tp[best]) best = c;
        r->o_cls[o] = (float)best;
      }
      r->o_cnt[o] = 1;
    }
}

/* Converts the output rows [base, base + n), streams them out and moves the buffer. */
static msc_status flush_rows(run *r, int64_t n) {
  const int64_t P = r->P, W = r->W, C = r->C, PW = P * W, nW = n * W;
  for (int64_t i = 0; i < nW; ++i) {
    const float cnt = r->o_cnt[i];
    if (!(cnt > 0)) { /* missing, or no tile ran over it */
      r->rows_m[i] = NAN;
      for (int64_t c = 0; c < C; ++c) r->rows_p[c * nW + i] = NAN;
      continue;
    }
    int64_t best = 0;
    for (int64_t c = 0; c < C; ++c) {
      r->rows_p[c * nW + i] = r->o_sum[c * PW + i] / cnt;
      if (r->o_sum[c * PW + i] > r->o_sum[best * PW + i]) best = c;
    }
    r->rows_m[i] = r->s->mean ? (float)best : r->o_cls[i];
  }
  if (r->wm) {
    msc_status st = msci_geotiff_write_rows(r->wm, r->rows_m, n);
    if (st != MSC_OK) return r->wm = NULL, st; /* the writer aborted itself */
  }
  if (r->wp) {
    msc_status st = msci_geotiff_write_rows(r->wp, r->rows_p, n);
    if (st != MSC_OK) return r->wp = NULL, st;
  }
  const size_t keep = (size_t)((P - n) * W);
  for (int64_t c = 0; c < C; ++c) {
    memmove(r->o_sum + c * PW, r->o_sum + c * PW + nW, keep * sizeof(float));
    memset(r->o_sum + c * PW + keep, 0, (size_t)nW * sizeof(float));
  }
  memmove(r->o_cls, r->o_cls + nW, keep * sizeof(float));
  memmove(r->o_cnt, r->o_cnt + nW, keep * sizeof(float));
  for (int64_t i = (int64_t)keep; i < PW; ++i) r->o_cls[i] = NAN, r->o_cnt[i] = 0;
  r->base += n;
  return MSC_OK;
}

/* ---- inference ------------------------------------------------------------------------- */

/* Runs the n tiles kx[0..n) of tile row ky and adds them to the output. */
/* r->batch holds the n tiles of the current row of tiles whose left columns are x0[0..n),
 * cut from every present modality's input rows. */
static msc_status stage_batch(run *r, const int64_t *x0, int64_t n) {
  const msc_scene *s = r->s;
  const int64_t P = r->P, W = r->W, PW = P * W;
  if (msc_batch_size(r->batch) != 0 && msc_batch_size(r->batch) != n) {
    /* A batch keeps one sample count: the short last batch of a row needs a new one. */
    msc_batch_free(r->batch);
    r->batch = NULL;
    MSCI_TRY(msc_batch_create(&r->batch));
  }
  for (int32_t m = 0; m < s->n; ++m) {
    if (s->mod[m].absent) continue;
    const int64_t bands = s->mod[m].bands;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t b = 0; b < bands; ++b)
        for (int64_t y = 0; y < P; ++y)
          memcpy(r->patch[m] + ((t * bands + b) * P + y) * P, r->in[m] + b * PW + y * W + x0[t],
                 (size_t)P * sizeof(float));
    MSCI_TRY(msc_batch_set_modality(r->batch, s->model->cfg.mod[m].name, r->patch[m], n, bands,
                                    P, P));
  }
  return MSC_OK;
}

static msc_status infer(run *r, const int64_t *kx, int64_t n, int64_t ky) {
  const msc_scene *s = r->s;
  const int64_t P = r->P;
  int64_t x0[1024]; /* n ≤ scene.batch ≤ 1024 */
  for (int64_t t = 0; t < n; ++t) x0[t] = s->xs[kx[t]];
  MSCI_TRY(stage_batch(r, x0, n));
  if (r->seg)
    MSCI_TRY(msc_predict_mask(s->model, r->batch, r->cls, (size_t)(n * P * P), r->prob,
                              (size_t)(n * r->C * P * P)));
  else
    MSCI_TRY(msc_predict(s->model, r->batch, r->prob, (size_t)(n * r->C)));
  for (int64_t t = 0; t < n; ++t) add_tile(r, t, kx[t], ky);
  return MSC_OK;
}

/* Whether the tile at column x0 of the current row runs: it has a valid pixel, and its
 * masked share does not exceed scene.max_masked. */
static int tile_runs(const run *r, int64_t x0) {
  int64_t any = 0, masked = 0;
  for (int64_t y = 0; y < r->P; ++y)
    for (int64_t x = 0; x < r->P; ++x)
      any |= r->valid[y * r->W + x0 + x], masked += r->masked[y * r->W + x0 + x];
  return any && (double)masked <= r->s->max_masked * (double)(r->P * r->P);
}

/* The tiles of tile row ky: those that run (tile_runs), in batches. */
static msc_status tile_row(run *r, int64_t ky) {
  const msc_scene *s = r->s;
  int64_t kx[1024], n = 0;
  for (int64_t k = 0; k < s->nx; ++k) {
    if (!tile_runs(
            r, s->xs[k])) { /* no inference; its pixels are missing where it is their tile */
      if (s->mean) continue;
      int64_t xlo, xhi, ylo, yhi;
      msci_scene_owned(s->xs, s->nx, k, r->P, s->width, &xlo, &xhi);
      msci_scene_owned(s->ys, s->ny, ky, r->P, s->height, &ylo, &yhi);
      for (int64_t y = ylo; y < yhi; ++y)
        for (int64_t x = xlo; x < xhi; ++x) r->o_cnt[(y - r->base) * r->W + x] = -1;
      continue;
    }
    kx[n++] = k;
    if (n == r->B) {
      MSCI_TRY(infer(r, kx, n, ky));
      n = 0;
    }
  }
  return n ? infer(r, kx, n, ky) : MSC_OK;
}

/* ---- outputs --------------------------------------------------------------------------- */

/* A colour for each class: distinct hues around the wheel (golden angle), 255 black. */
static void palette(uint8_t *pal) {
  for (int i = 0; i < 256; ++i) {
    double h = fmod(0.61803398875 * i + 0.08, 1.0) * 6.0, v = i % 2 ? 0.75 : 0.95, s = 0.8;
    int k = (int)h;
    double f = h - k, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; ++c) pal[3 * i + c] = (uint8_t)lrint(255 * rgb[k % 6][c]);
  }
  pal[3 * 255] = pal[3 * 255 + 1] = pal[3 * 255 + 2] = 0;
}

static msc_status open_outputs(run *r, const char *mask_path, const char *probs_path) {
  const msc_scene *s = r->s;
  const msci_model_cfg *cfg = &s->model->cfg;
  msci_geotiff_spec sp;
  memset(&sp, 0, sizeof sp);
  sp.width = s->width, sp.height = s->height, sp.tile = 256;
  sp.geo = &s->mod[s->grid].info;
  sp.grid = s->has_georef ? &s->georef : NULL;
  if (!s->has_georef) sp.geo = NULL;
  sp.class_names = (const char *const *)cfg->class_names, sp.n_classes = cfg->classes;
  sp.has_nodata = 1;
  sp.overviews = s->overviews ? MSCI_OVERVIEW_AVERAGE : 0;
  if (mask_path) {
    static const char *const name[1] = {"class"};
    uint8_t pal[768];
    msci_geotiff_spec m = sp;
    m.bands = 1, m.band_names = name;
    m.overviews = s->overviews ? MSCI_OVERVIEW_NEAREST : 0;
    if (r->C <= 255) {
      palette(pal);
      m.sample_format = SAMPLEFORMAT_UINT, m.bits = 8, m.nodata = 255;
      m.palette = pal, m.n_palette = 256;
    } else {
      m.sample_format = SAMPLEFORMAT_UINT, m.bits = 16, m.nodata = 65535;
    }
    MSCI_TRY(msci_geotiff_open(mask_path, &m, &r->wm));
  }
  if (probs_path) {
    msci_geotiff_spec p = sp;
    p.bands = r->C, p.sample_format = SAMPLEFORMAT_IEEEFP, p.bits = 32, p.nodata = NAN;
    p.band_names = (const char *const *)cfg->class_names;
    MSCI_TRY(msci_geotiff_open(probs_path, &p, &r->wp));
  }
  return MSC_OK;
}

msc_status msc_scene_write(msc_scene *scene, const char *mask_path, const char *probs_path,
                           msc_progress_fn progress, void *user) {
  if (!scene || (!mask_path && !probs_path))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "scene write: NULL scene or no output path");
  if (mask_path && probs_path && strcmp(mask_path, probs_path) == 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "scene write: the mask and the probabilities "
                     "both go to %s",
                     mask_path);
  const msci_model_cfg *cfg = &scene->model->cfg;
  if (cfg->classes > 65534)
    return msci_fail(MSC_E_UNSUPPORTED, "scene write: %lld classes", (long long)cfg->classes);
  run r;
  memset(&r, 0, sizeof r);
  r.s = scene, r.W = scene->width, r.P = scene->P, r.C = cfg->classes;
  r.B = scene->batch < scene->nx ? scene->batch : scene->nx;
  r.seg = cfg->segmentation;
  msc_status st = run_alloc(&r);
  if (st == MSC_OK) st = open_outputs(&r, mask_path, probs_path);
  const int64_t total = scene->nx * scene->ny;
  for (int64_t ky = 0; st == MSC_OK && ky < scene->ny; ++ky) {
    st = read_tile_row(&r, scene->ys[ky]);
    if (st == MSC_OK) st = tile_row(&r, ky);
    if (st != MSC_OK) break;
    /* Rows no later tile row reaches: up to the next row's first pixel (mean) or the
     * first pixel it owns (centre); all that is left after the last row. */
    int64_t upto = scene->height;
    if (ky + 1 < scene->ny) {
      int64_t lo, hi;
      msci_scene_owned(scene->ys, scene->ny, ky, r.P, scene->height, &lo, &hi);
      upto = scene->mean ? scene->ys[ky + 1] : hi;
    }
    while (st == MSC_OK && r.base < upto) {
      int64_t n = upto - r.base < r.P ? upto - r.base : r.P;
      st = flush_rows(&r, n);
    }
    if (st == MSC_OK && progress && progress((ky + 1) * scene->nx, total, user) != 0)
      st = msci_fail(MSC_E_CANCELLED, "scene write: cancelled after %lld of %lld tiles",
                     (long long)((ky + 1) * scene->nx), (long long)total);
  }
  if (st == MSC_OK && r.wm) {
    st = msci_geotiff_close(r.wm);
    r.wm = NULL;
  }
  if (st == MSC_OK && r.wp) {
    st = msci_geotiff_close(r.wp);
    r.wp = NULL;
  }
  run_free(&r);
  return st;
}

/* ---- embedding maps -------------------------------------------------------------------- */

/* The tiles of an embedding map: origins i·stride while the tile fits (no tile shifted
 * inward, so the map is a regular grid). */
static int64_t emb_count(int64_t size, int64_t P, int64_t stride) {
  return (size - P) / stride + 1;
}

msc_status msc_scene_write_embeddings(msc_scene *scene, const char *path, int32_t which,
                                      msc_progress_fn progress, void *user) {
  if (!scene || !path)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "scene embeddings: NULL scene or path");
  int64_t D = 0;
  MSCI_TRY(msc_model_embedding_size(scene->model, which, &D));
  const int64_t P = scene->P, S = scene->stride;
  const int64_t ex = emb_count(scene->width, P, S), ey = emb_count(scene->height, P, S);
  run r;
  memset(&r, 0, sizeof r);
  r.s = scene, r.W = scene->width, r.P = P, r.B = scene->batch < ex ? scene->batch : ex;
  float *emb = NULL, *row = NULL;
  msci_geotiff *w = NULL;
  msc_status st = MSC_OK;
  if (!alloc_input(&r) || !(emb = malloc((size_t)(r.B * D) * sizeof(float))) ||
      !(row = malloc((size_t)(D * ex) * sizeof(float))))
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "scene embeddings: buffers");
  if (st == MSC_OK) st = msc_batch_create(&r.batch);
  /* Output pixel (i, j) is tile (i·S, j·S): its S × S centre block, which starts
   * (P − S) / 2 pixels into the tile, is the pixel's footprint on the scene. */
  msci_georef gr;
  memset(&gr, 0, sizeof gr);
  if (st == MSC_OK && scene->has_georef)
    st = msci_georef_window(&scene->mod[scene->grid].info, 0.5 * (double)(P - S),
                            0.5 * (double)(P - S), (double)S, &gr);
  if (st == MSC_OK) {
    msci_geotiff_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.width = ex, sp.height = ey, sp.bands = D, sp.tile = 256;
    sp.sample_format = SAMPLEFORMAT_IEEEFP, sp.bits = scene->half ? 16 : 32;
    sp.has_nodata = 1, sp.nodata = NAN;
    sp.geo = scene->has_georef ? &scene->mod[scene->grid].info : NULL;
    sp.grid = scene->has_georef ? &gr : NULL;
    sp.overviews = scene->overviews ? MSCI_OVERVIEW_AVERAGE : 0;
    st = msci_geotiff_open(path, &sp, &w);
  }
  const int64_t total = ex * ey;
  for (int64_t j = 0; st == MSC_OK && j < ey; ++j) {
    st = read_tile_row(&r, j * S);
    for (int64_t i = 0; i < D * ex; ++i) row[i] = NAN;
    int64_t kx[1024], n = 0;
    for (int64_t i = 0; st == MSC_OK && i < ex; ++i) {
      if (tile_runs(&r, i * S)) kx[n++] = i;
      if (n == 0 || (n < r.B && i + 1 < ex)) continue;
      int64_t x0[1024];
      for (int64_t t = 0; t < n; ++t) x0[t] = kx[t] * S;
      st = stage_batch(&r, x0, n);
      if (st == MSC_OK) st = msc_embed(scene->model, r.batch, which, emb, (size_t)(n * D));
      for (int64_t t = 0; st == MSC_OK && t < n; ++t)
        for (int64_t d = 0; d < D; ++d) row[d * ex + kx[t]] = emb[t * D + d];
      n = 0;
    }
    if (st == MSC_OK) {
      st = msci_geotiff_write_rows(w, row, 1);
      if (st != MSC_OK) w = NULL; /* the writer aborted itself */
    }
    if (st == MSC_OK && progress && progress((j + 1) * ex, total, user) != 0)
      st = msci_fail(MSC_E_CANCELLED, "scene embeddings: cancelled after %lld of %lld tiles",
                     (long long)((j + 1) * ex), (long long)total);
  }
  if (st == MSC_OK) {
    st = msci_geotiff_close(w);
    w = NULL;
  }
  msci_geotiff_abort(w);
  free(emb);
  free(row);
  run_free(&r);
  return st;
}
