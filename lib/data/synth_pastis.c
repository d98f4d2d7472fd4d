/*
 * synth_pastis.c — synthetic satellite image time series in the PASTIS layout
 * (msc_synth_write(dir, "pastis", ...)): crop parcels whose NDVI follows a class-specific
 * double-logistic phenology, for tests and demos of PIMC (docs/pimc.md, "Synthetic time
 * series", has the model, the class table and the layout).
 *
 * A patch is 32 × 32 pixels split into 2–3 × 2–3 rectangles (fields); each is a parcel of
 * one of the 18 crop classes or background (class 0), with at least two distinct crop
 * classes per patch. A patch has T = 20..28 dates over 2019; each pixel's NDVI on date d
 * (day of the year, 0 = 1 January) is its class's curve
 *
 *   v(d) = base + amp · (1 / (1 + e^−(d − up)/s_up) − 1 / (1 + e^−(d − down)/s_down))
 *
 * (background: flat, 0.12), turned into ten band reflectances whose B4/B8 give v back
 * exactly; every band then gets 2 % multiplicative Gaussian noise and is written as a
 * digital number, round(10000 · ρ), int16. A seeded 10–25 % of the dates are cloudy: every
 * band of every pixel is bright (ρ ≈ 0.40–0.58). About a quarter of the pixels at the border
 * between two fields are labelled void (19).
 *
 * Determinism: the numbers of patch i come from rng.h streams labelled "pastis/p<i>/…",
 * one thread writes everything, and the JSON is written in insertion order: the same seed
 * and n give byte-identical files.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy_write.h"
#include "data/synth.h"
#include "common/internal.h"
#include "common/rng.h"

#define P_SIZE    32 /* H = W */
#define P_BANDS   10 /* B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 */
#define P_T_MIN   20
#define P_T_MAX   28
#define P_CROPS   18 /* classes 1..18; 0 background, 19 void */
#define P_VOID    19
#define P_MAX_REC 9
#define P_YEAR    2019

/* NDVI phenology of class c (0 background, 1..18 crops): base, amplitude, green-up and
 * senescence days (day of the year, 0 = 1 January) and their logistic widths in days.
 * docs/pimc.md lists the same table. */
typedef struct pheno {
  double base, amp, up, down, s_up, s_down;
} pheno;

static const pheno k_pheno[P_CROPS + 1] = {
    {0.12, 0.00, 0, 0, 1, 1},       /*  0 background: flat */
    {0.35, 0.40, 75, 290, 15, 20},  /*  1 meadow */
    {0.20, 0.65, 60, 170, 10, 8},   /*  2 soft winter wheat */
    {0.15, 0.72, 160, 255, 8, 10},  /*  3 corn */
    {0.20, 0.60, 50, 150, 10, 7},   /*  4 winter barley */
    {0.25, 0.60, 40, 145, 12, 9},   /*  5 winter rapeseed */
    {0.15, 0.60, 100, 190, 8, 8},   /*  6 spring barley */
    {0.15, 0.62, 140, 230, 9, 8},   /*  7 sunflower */
    {0.20, 0.35, 120, 270, 12, 12}, /*  8 grapevine */
    {0.15, 0.70, 130, 280, 10, 12}, /*  9 beet */
    {0.20, 0.58, 65, 178, 10, 8},   /* 10 winter triticale */
    {0.20, 0.55, 70, 165, 9, 7},    /* 11 winter durum wheat */
    {0.20, 0.45, 110, 220, 10, 10}, /* 12 fruits, vegetables, flowers */
    {0.15, 0.65, 125, 215, 8, 9},   /* 13 potatoes */
    {0.30, 0.45, 70, 250, 12, 15},  /* 14 leguminous fodder */
    {0.15, 0.66, 150, 262, 9, 9},   /* 15 soybeans */
    {0.30, 0.40, 95, 285, 14, 14},  /* 16 orchard */
    {0.20, 0.52, 78, 182, 11, 9},   /* 17 mixed cereal */
    {0.15, 0.60, 168, 268, 8, 9}};  /* 18 sorghum */

static const char *const k_tiles[4] = {"T30UXV", "T31TFJ", "T31TFM", "T32ULU"};

static double ndvi_curve(int c, double day) {
  const pheno *p = &k_pheno[c];
  return p->base + p->amp * (1.0 / (1.0 + exp(-(day - p->up) / p->s_up)) -
                             1.0 / (1.0 + exp(-(day - p->down) / p->s_down)));
}

/* Clear-sky reflectances of the ten bands for NDVI v: B4 + B8 = 0.30 + 0.15 v and
 * (B8 − B4) / (B8 + B4) = v; the other bands follow B4, B8 and v. */
static void bands_of_ndvi(double v, double *r) {
  const double s = 0.30 + 0.15 * v, r4 = 0.5 * s * (1.0 - v), r8 = 0.5 * s * (1.0 + v);
  r[0] = 0.6 * r4 + 0.01;            /* B2 */
  r[1] = 0.7 * r4 + 0.1 * r8 + 0.01; /* B3 */
  r[2] = r4;                         /* B4 */
  r[3] = 0.6 * r4 + 0.3 * r8;        /* B5 */
  r[4] = 0.25 * r4 + 0.75 * r8;      /* B6 */
  r[5] = 0.1 * r4 + 0.9 * r8;        /* B7 */
  r[6] = r8;                         /* B8 */
  r[7] = 1.02 * r8;                  /* B8A */
  r[8] = 0.28 - 0.10 * v;            /* B11 */
  r[9] = 0.22 - 0.12 * v;            /* B12 */
}

/* One patch's plan: dates, clouds, fields. */
typedef struct pastis_plan {
  int t;
  int day[P_T_MAX];      /* day of the year, strictly increasing */
  int cloudy[P_T_MAX];   /* 1 on a cloudy date */
  double cloud[P_T_MAX]; /* cloud reflectance of a cloudy date */
  int nx, ny;            /* fields: nx columns × ny rows */
  int xs[4], ys[4];      /* field boundaries, xs[0] = 0 ... xs[nx] = P_SIZE */
  int cls[P_MAX_REC];    /* class of field r = row · nx + column (0 background) */
  int fold, tile;
} pastis_plan;

static int draw(msci_rng *r, int k) {
  return (int)(msci_rng_next(r) % (uint64_t)k);
}

static void plan_patch(uint64_t seed, int64_t i, pastis_plan *p) {
  char label[64];
  msci_rng r;
  snprintf(label, sizeof label, "pastis/p%lld/plan", (long long)i);
  msci_rng_seed(&r, seed, label);
  memset(p, 0, sizeof *p);

  /* Dates: T in 20..28, about evenly spread over days 0..350 with ±3 days of jitter;
   * consecutive dates are at least 350/28 − 6 > 6 days apart. */
  p->t = P_T_MIN + draw(&r, P_T_MAX - P_T_MIN + 1);
  const int start = 3 + draw(&r, 8);
  for (int k = 0; k < p->t; ++k)
    p->day[k] = start + (int)floor(350.0 * k / p->t) + draw(&r, 7) - 3;
  /* Clouds: round(f·T) dates (at least one), f uniform in [0.10, 0.25). */
  const double f = 0.10 + 0.15 * msci_rng_uniform(&r);
  int n_cloudy = (int)lround(f * p->t);
  if (n_cloudy < 1) n_cloudy = 1;
  int order[P_T_MAX];
  for (int k = 0; k < p->t; ++k) order[k] = k;
  for (int k = 0; k < n_cloudy; ++k) {
    int j = k + draw(&r, p->t - k), tmp = order[k];
    order[k] = order[j], order[j] = tmp;
    p->cloudy[order[k]] = 1;
  }
  for (int k = 0; k < p->t; ++k) p->cloud[k] = 0.42 + 0.14 * msci_rng_uniform(&r);

  /* Fields: 2–3 columns × 2–3 rows, boundaries near the even split (±3 pixels). */
  p->nx = 2 + draw(&r, 2);
  p->ny = 2 + draw(&r, 2);
  for (int k = 0; k <= p->nx; ++k)
    p->xs[k] = k == 0 ? 0 : k == p->nx ? P_SIZE : k * P_SIZE / p->nx + draw(&r, 7) - 3;
  for (int k = 0; k <= p->ny; ++k)
    p->ys[k] = k == 0 ? 0 : k == p->ny ? P_SIZE : k * P_SIZE / p->ny + draw(&r, 7) - 3;
  /* Classes: background with probability 1/4, else a crop; drawn again until the patch
   * holds at least two distinct crop classes. */
  const int n_rec = p->nx * p->ny;
  for (;;) {
    int first = 0, distinct = 0;
    for (int k = 0; k < n_rec; ++k) {
      p->cls[k] = draw(&r, 4) == 0 ? 0 : 1 + draw(&r, P_CROPS);
      if (p->cls[k] && !first) first = p->cls[k];
      if (p->cls[k] && p->cls[k] != first) distinct = 1;
    }
    if (distinct) break;
  }
  p->fold = 1 + (int)(i % 5);
  p->tile = draw(&r, 4);
}

/* The field (rectangle index) holding pixel (y, x). */
static int field_of(const pastis_plan *p, int y, int x) {
  int cx = 0, cy = 0;
  while (x >= p->xs[cx + 1]) ++cx;
  while (y >= p->ys[cy + 1]) ++cy;
  return cy * p->nx + cx;
}

/* ---- files ------------------------------------------------------------------------------- */

/* What an interrupted run leaves besides metadata.geojson.tmp: the array folders. */
static const char *const k_pastis_leftovers[] = {"DATA_S2", "ANNOTATIONS",
                                                 "INSTANCE_ANNOTATIONS", NULL};

/* What a patch's writer needs besides its plan. */
typedef struct pastis_bufs {
  int16_t *s2;     /* P_T_MAX × P_BANDS × P_SIZE × P_SIZE */
  uint8_t *target; /* 3 × P_SIZE × P_SIZE */
  int64_t *inst;   /* P_SIZE × P_SIZE */
} pastis_bufs;

/* Labels of patch i: TARGET (class, then two copies) and INSTANCES (parcel id, 0 for
 * background); the number of parcels and the share of parcel pixels. */
static void label_patch(uint64_t seed, int64_t i, const pastis_plan *p, pastis_bufs *b,
                        int *n_parcel, double *cover) {
  char label[64];
  msci_rng r;
  snprintf(label, sizeof label, "pastis/p%lld/void", (long long)i);
  msci_rng_seed(&r, seed, label);
  int id[P_MAX_REC], n = 0;
  for (int k = 0; k < p->nx * p->ny; ++k) id[k] = p->cls[k] ? ++n : 0;
  int parcel_px = 0;
  for (int y = 0; y < P_SIZE; ++y)
    for (int x = 0; x < P_SIZE; ++x) {
      const int f = field_of(p, y, x), c = p->cls[f];
      int border = 0;
      if (y > 0) border |= field_of(p, y - 1, x) != f;
      if (y < P_SIZE - 1) border |= field_of(p, y + 1, x) != f;
      if (x > 0) border |= field_of(p, y, x - 1) != f;
      if (x < P_SIZE - 1) border |= field_of(p, y, x + 1) != f;
      /* A draw for every border pixel of a parcel, so the stream does not depend on
       * anything but the plan. */
      const int is_void = c && border && draw(&r, 4) == 0;
      b->target[y * P_SIZE + x] = (uint8_t)(is_void ? P_VOID : c);
      b->inst[y * P_SIZE + x] = id[f];
      parcel_px += c != 0;
    }
  memcpy(b->target + P_SIZE * P_SIZE, b->target, P_SIZE * P_SIZE);
  memcpy(b->target + 2 * P_SIZE * P_SIZE, b->target, P_SIZE * P_SIZE);
  *n_parcel = n;
  *cover = (double)parcel_px / (P_SIZE * P_SIZE);
}

/* DATA_S2 of patch i: T × 10 × 32 × 32 digital numbers. */
static void series_patch(uint64_t seed, int64_t i, const pastis_plan *p, int16_t *s2) {
  char label[64];
  msci_rng r;
  snprintf(label, sizeof label, "pastis/p%lld/pixels", (long long)i);
  msci_rng_seed(&r, seed, label);
  const int hw = P_SIZE * P_SIZE;
  for (int t = 0; t < p->t; ++t) {
    double refl[P_CROPS + 1][P_BANDS];
    for (int c = 0; c <= P_CROPS; ++c) bands_of_ndvi(ndvi_curve(c, p->day[t]), refl[c]);
    for (int b = 0; b < P_BANDS; ++b) {
      /* A cloud: the same brightness in every band, ±0.02 by band. */
      const double cloud = p->cloud[t] + 0.02 * (double)(b % 3 - 1);
      int16_t *out = s2 + ((size_t)t * P_BANDS + (size_t)b) * hw;
      for (int y = 0; y < P_SIZE; ++y)
        for (int x = 0; x < P_SIZE; ++x) {
          const double rho = p->cloudy[t] ? cloud : refl[p->cls[field_of(p, y, x)]][b];
          double dn = 10000.0 * rho * (1.0 + 0.02 * msci_rng_normal(&r));
          dn = dn < 0.0 ? 0.0 : dn > 20000.0 ? 20000.0 : dn;
          out[y * P_SIZE + x] = (int16_t)lrint(dn);
        }
    }
  }
}

static msc_status write_patch(const char *dir, uint64_t seed, int64_t i, const pastis_plan *p,
                              pastis_bufs *b, int *n_parcel, double *cover) {
  char path[4200];
  label_patch(seed, i, p, b, n_parcel, cover);
  series_patch(seed, i, p, b->s2);
  const int64_t s2_shape[4] = {p->t, P_BANDS, P_SIZE, P_SIZE};
  const int64_t target_shape[3] = {3, P_SIZE, P_SIZE}, inst_shape[2] = {P_SIZE, P_SIZE};
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/DATA_S2/S2_%lld.npy", dir, (long long)i));
  MSCI_TRY(msci_npy_write(path, "<i2", 4, s2_shape, b->s2));
  MSCI_TRY(
      msci_synth_join(path, sizeof path, "%s/ANNOTATIONS/TARGET_%lld.npy", dir, (long long)i));
  MSCI_TRY(msci_npy_write(path, "|u1", 3, target_shape, b->target));
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/INSTANCE_ANNOTATIONS/INSTANCES_%lld.npy", dir,
                           (long long)i));
  MSCI_TRY(msci_npy_write(path, "<i8", 2, inst_shape, b->inst));
  return MSC_OK;
}

/* YYYYMMDD of day d (0 = 1 January) of the non-leap year P_YEAR. */
static int yyyymmdd(int d) {
  static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int m = 0;
  while (m < 11 && d >= month_days[m]) d -= month_days[m++];
  return P_YEAR * 10000 + (m + 1) * 100 + d + 1;
}

/* The feature of patch i (NULL when out of memory). */
static json_t *feature(int64_t i, const pastis_plan *p, int n_parcel, double cover) {
  json_t *props = json_object(), *dates = json_object(), *cloudy = json_array();
  json_t *ring = json_array(), *coords = json_array(), *geom = json_object();
  json_t *feat = json_object();
  if (!props || !dates || !cloudy || !ring || !coords || !geom || !feat) goto fail;
  int bad = 0;
  bad |= json_object_set_new(props, "ID_PATCH", json_integer(i));
  bad |= json_object_set_new(props, "Fold", json_integer(p->fold));
  bad |= json_object_set_new(props, "TILE", json_string(k_tiles[p->tile]));
  bad |= json_object_set_new(props, "N_Parcel", json_integer(n_parcel));
  bad |= json_object_set_new(props, "Parcel_Cover", json_real(cover));
  for (int k = 0; k < p->t; ++k) {
    char key[16];
    snprintf(key, sizeof key, "%d", k);
    bad |= json_object_set_new(dates, key, json_integer(yyyymmdd(p->day[k])));
    if (p->cloudy[k]) bad |= json_array_append_new(cloudy, json_integer(k));
  }
  bad |= json_object_set_new(props, "dates-S2", dates);
  dates = NULL;
  bad |= json_object_set_new(props, "synth-cloudy-S2", cloudy);
  cloudy = NULL;
  /* A 320 m square (about 0.0044° × 0.0029°) on a grid of 100 patches a row. */
  const double x0 = 1.0 + 0.005 * (double)(i % 100), y0 = 45.0 + 0.004 * (double)(i / 100);
  const double dx = 0.0044, dy = 0.0029;
  const double pts[5][2] = {
      {x0, y0}, {x0, y0 + dy}, {x0 + dx, y0 + dy}, {x0 + dx, y0}, {x0, y0}};
  for (int k = 0; k < 5; ++k)
    bad |= json_array_append_new(ring, json_pack("[f, f]", pts[k][0], pts[k][1]));
  bad |= json_array_append_new(coords, ring);
  ring = NULL;
  bad |= json_object_set_new(geom, "type", json_string("Polygon"));
  bad |= json_object_set_new(geom, "coordinates", coords);
  coords = NULL;
  bad |= json_object_set_new(feat, "type", json_string("Feature"));
  bad |= json_object_set_new(feat, "properties", props);
  props = NULL;
  bad |= json_object_set_new(feat, "geometry", geom);
  geom = NULL;
  if (bad) goto fail;
  return feat;
fail:
  json_decref(props), json_decref(dates), json_decref(cloudy), json_decref(ring);
  json_decref(coords), json_decref(geom), json_decref(feat);
  return NULL;
}

static msc_status write_metadata(const char *dir, uint64_t seed, int64_t n, const int *n_parcel,
                                 const double *cover) {
  char path[4200], tmp[4300];
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/metadata.geojson", dir));
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  json_t *root =
      json_pack("{s:s, s:{s:s, s:{s:s}}}", "type", "FeatureCollection", "crs", "type", "name",
                "properties", "name", "urn:ogc:def:crs:OGC:1.3:CRS84");
  json_t *features = json_array();
  int bad = !root || !features;
  for (int64_t i = 0; !bad && i < n; ++i) {
    pastis_plan p;
    plan_patch(seed, i, &p);
    json_t *f = feature(i, &p, n_parcel[i], cover[i]);
    bad = !f || json_array_append_new(features, f) != 0;
  }
  if (!bad) {
    bad = json_object_set_new(root, "features", features) != 0;
    features = NULL;
  }
  json_decref(features);
  if (bad) {
    json_decref(root);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "synth: metadata.geojson");
  }
  int rc =
      json_dump_file(root, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(root);
  return msci_synth_commit(tmp, path, rc != 0);
}

msc_status msci_synth_pastis(const char *dir, int64_t n, uint64_t seed) {
  char path[4200];
  MSCI_TRY(msci_synth_make_dirs(dir));
  MSCI_TRY(msci_synth_check_target(dir, "metadata.geojson", k_pastis_leftovers));
  static const char *const folders[3] = {"DATA_S2", "ANNOTATIONS", "INSTANCE_ANNOTATIONS"};
  for (int k = 0; k < 3; ++k) {
    MSCI_TRY(msci_synth_join(path, sizeof path, "%s/%s", dir, folders[k]));
    MSCI_TRY(msci_synth_make_dirs(path));
  }
  pastis_bufs b;
  b.s2 = malloc((size_t)P_T_MAX * P_BANDS * P_SIZE * P_SIZE * sizeof *b.s2);
  b.target = malloc(3 * P_SIZE * P_SIZE);
  b.inst = malloc(P_SIZE * P_SIZE * sizeof *b.inst);
  int *n_parcel = malloc((size_t)n * sizeof *n_parcel);
  double *cover = malloc((size_t)n * sizeof *cover);
  msc_status st = MSC_OK;
  if (!b.s2 || !b.target || !b.inst || !n_parcel || !cover)
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "synth: pixel buffers");
  for (int64_t i = 0; st == MSC_OK && i < n; ++i) {
    pastis_plan p;
    plan_patch(seed, i, &p);
    st = write_patch(dir, seed, i, &p, &b, &n_parcel[i], &cover[i]);
  }
  /* metadata.geojson last: a dataset is listed only once all its files exist. */
  if (st == MSC_OK) st = write_metadata(dir, seed, n, n_parcel, cover);
  free(b.s2), free(b.target), free(b.inst), free(n_parcel), free(cover);
  return st;
}
