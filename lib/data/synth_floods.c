/*
 * synth_floods.c — synthetic chips in the Sen1Floods11 hand-labelled layout
 * (msc_synth_write(dir, "sen1floods11", ...); docs/data.md, "Sen1Floods11"): flood-like
 * scenes whose water can be learnt from both sensors, for tests and demos (no real chip
 * can be downloaded here).
 *
 * A chip's water is a meandering river (a sinusoidal band of random direction and width)
 * and, on some chips, a flooded ellipse; the rest is land with a smooth field texture.
 * Water is dark in Sentinel-1 (VV ≈ −20 dB, VH ≈ −27 dB; land ≈ −10 / −17 dB) and has a
 * high NDWI in Sentinel-2 (green above near infrared: B03 ≈ 900 vs B08 ≈ 300; land the
 * reverse), each with seeded noise (speckle of 1.5 dB; 4 % in S2). As in the real data,
 * some pixels are missing: about a third of the chips have a cloud (a rectangle, bright
 * in every S2 band, labelled −1), some a strip of NaN S1 pixels at the swath edge, and
 * every chip ~0.2 % scattered NaN S1 pixels; the label itself does not know the NaN S1
 * pixels (the reader ignores them: docs/data.md).
 *
 * Georeferencing: like the real chips (exported from Google Earth Engine), every file is
 * a GeoTIFF in EPSG:4326 with a tie point and a pixel scale of 0.00008983152841195215°
 * (10 m at the equator); chip i lies in its region (a fixed corner per region), shifted
 * east by i chip widths so that no two chips overlap. The three files of a chip share
 * one grid.
 *
 * Files (uncompressed, pixel-interleaved strips; msci_synth_write_geotiff):
 *   S1Hand/<region>_<id>_S1Hand.tif       2 bands float32 dB (VV, VH)
 *   S2Hand/<region>_<id>_S2Hand.tif       13 bands uint16 (B1..B8, B8A, B9..B12)
 *   LabelHand/<region>_<id>_LabelHand.tif 1 band int16 (−1 no data, 0 not water, 1 water)
 *   flood_{train,valid,test}_data.csv     "<S1 file>,<label file>" per line, no header
 * Splits are drawn per chip (about 60/20/20 %); the chip of index 0 is always in train,
 * so every dataset has a train split. Real chips are 512 × 512; size (16..512) makes
 * smaller ones. Deterministic: rng.h streams labelled by chip and purpose.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "data/synth.h"
#include "common/internal.h"
#include "common/rng.h"

/* The regions of the real hand-labelled chips. */
static const char *const k_regions[] = {"Bolivia", "Ghana",     "India",    "Mekong",
                                        "Nigeria", "Pakistan",  "Paraguay", "Somalia",
                                        "Spain",   "Sri-Lanka", "USA"};
#define N_REGIONS ((int)(sizeof k_regions / sizeof *k_regions))

/* Upper-left corner (longitude, latitude in degrees) of each region's chips. */
static const double k_region_ll[][2] = {
    {-65.0, -14.0}, {-1.0, 9.0}, {86.0, 26.0}, {105.0, 11.0}, {7.0, 8.0},   {68.0, 27.0},
    {-58.0, -24.0}, {45.0, 3.0}, {-2.0, 41.0}, {81.0, 7.5},   {-91.0, 35.0}};
#define DEG_PER_PX 0.00008983152841195215

/* Reflectance × 10000 of land and water in band order B1..B8, B8A, B9..B12. */
static const float k_land[13] = {1200, 1000, 1100, 1000, 1500, 2500, 2900,
                                 3100, 3200, 1000, 30,   2300, 1500};
static const float k_water[13] = {1100, 1000, 900, 600, 450, 350, 320,
                                  300,  280,  150, 10,  120, 80};

typedef struct chip_plan {
  int split;                                    /* 0 train, 1 valid, 2 test */
  double half, angle, offset, amp, freq, width; /* the river, about the chip's centre */
  int lake;
  double lx, ly, la, lb; /* lake centre and semi-axes, in pixels */
  int cloud;
  int64_t cx0, cy0, cx1, cy1; /* cloud rectangle [x0, x1) × [y0, y1) */
  int nan_strip;              /* NaN S1 columns at the left edge */
} chip_plan;

static void plan_chip(uint64_t seed, int64_t i, int64_t size, chip_plan *p) {
  char label[64];
  msci_rng r;
  snprintf(label, sizeof label, "floods/c%lld/plan", (long long)i);
  msci_rng_seed(&r, seed, label);
  const double s = (double)size;
  double u = msci_rng_uniform(&r);
  p->split = i == 0 ? 0 : u < 0.6 ? 0 : u < 0.8 ? 1 : 2;
  p->angle = 3.141592653589793 * msci_rng_uniform(&r);
  p->half = 0.5 * s;
  p->offset = s * (0.4 * msci_rng_uniform(&r) - 0.2);
  p->amp = s * (0.05 + 0.1 * msci_rng_uniform(&r));
  p->freq = 6.283185307179586 / s * (0.5 + 1.5 * msci_rng_uniform(&r));
  p->width = s * (0.05 + 0.1 * msci_rng_uniform(&r));
  p->lake = msci_rng_uniform(&r) < 0.5;
  p->lx = s * msci_rng_uniform(&r);
  p->ly = s * msci_rng_uniform(&r);
  p->la = s * (0.1 + 0.2 * msci_rng_uniform(&r));
  p->lb = s * (0.1 + 0.2 * msci_rng_uniform(&r));
  p->cloud = msci_rng_uniform(&r) < 0.35;
  p->cx0 = (int64_t)(s * 0.7 * msci_rng_uniform(&r));
  p->cy0 = (int64_t)(s * 0.7 * msci_rng_uniform(&r));
  p->cx1 = p->cx0 + 1 + (int64_t)(s * (0.1 + 0.15 * msci_rng_uniform(&r)));
  p->cy1 = p->cy0 + 1 + (int64_t)(s * (0.1 + 0.15 * msci_rng_uniform(&r)));
  p->nan_strip = msci_rng_uniform(&r) < 0.3 ? 1 + (int)(s * 0.05) : 0;
}

static int is_water(const chip_plan *p, double x, double y) {
  /* Distance across the river: the pixel's coordinate across the river's direction,
   * against a sinusoid along it. */
  const double ca = cos(p->angle), sa = sin(p->angle);
  const double xc = x - p->half, yc = y - p->half; /* about the chip's centre */
  const double along = xc * ca + yc * sa, across = -xc * sa + yc * ca;
  const double centre = p->offset + p->amp * sin(p->freq * along);
  if (fabs(across - centre) < p->width) return 1;
  if (p->lake) {
    const double dx = (x - p->lx) / p->la, dy = (y - p->ly) / p->lb;
    if (dx * dx + dy * dy < 1.0) return 1;
  }
  return 0;
}

/* Writes the three files of chip i. */
static msc_status write_chip(const char *dir, uint64_t seed, int64_t i, int64_t size,
                             const char *id, const chip_plan *p, float *s1, uint16_t *s2,
                             int16_t *lab) {
  const int64_t px = size * size;
  char label[64], path[4200];
  msci_rng r;
  /* The label first: the images follow it. */
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      int16_t v = (int16_t)is_water(p, (double)x + 0.5, (double)y + 0.5);
      if (p->cloud && x >= p->cx0 && x < p->cx1 && y >= p->cy0 && y < p->cy1) v = -1;
      lab[y * size + x] = v;
    }
  snprintf(label, sizeof label, "floods/c%lld/s1", (long long)i);
  msci_rng_seed(&r, seed, label);
  for (int64_t q = 0; q < px; ++q) {
    /* The true surface, even under a cloud (radar sees through it). */
    const int w = is_water(p, (double)(q % size) + 0.5, (double)(q / size) + 0.5);
    s1[q] = (w ? -20.f : -10.f) + (float)(1.5 * msci_rng_normal(&r));
    s1[px + q] = (w ? -27.f : -17.f) + (float)(1.5 * msci_rng_normal(&r));
    if (msci_rng_uniform(&r) < 0.002 || (q % size) < p->nan_strip) s1[q] = s1[px + q] = NAN;
  }
  snprintf(label, sizeof label, "floods/c%lld/s2", (long long)i);
  msci_rng_seed(&r, seed, label);
  const double fx = 0.02 + 0.03 * msci_rng_uniform(&r), fy = 0.02 + 0.03 * msci_rng_uniform(&r);
  for (int64_t q = 0; q < px; ++q) {
    const int64_t x = q % size, y = q / size;
    const int w = is_water(p, (double)x + 0.5, (double)y + 0.5);
    const int cloud = lab[q] == -1;
    const float tex = w ? 1.f : (float)(1.0 + 0.15 * sin(fx * (double)x) * cos(fy * (double)y));
    for (int b = 0; b < 13; ++b) {
      float v = cloud ? 5000.f + 300.f * (float)b : (w ? k_water[b] : k_land[b]) * tex;
      v *= 1.f + (float)(0.04 * msci_rng_normal(&r));
      v = v < 1.f ? 1.f : v > 10000.f ? 10000.f : v;
      s2[(size_t)b * (size_t)px + (size_t)q] = (uint16_t)lrintf(v);
    }
  }
  const double *corner = k_region_ll[i % N_REGIONS];
  const double ll[3] = {corner[0] + (double)(i / N_REGIONS) * (double)size * DEG_PER_PX,
                        corner[1], DEG_PER_PX};
  const int n = (int)size;
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/S1Hand/%s_S1Hand.tif", dir, id));
  MSCI_TRY(msci_synth_write_geotiff(path, s1, n, n, 2, SAMPLEFORMAT_IEEEFP, 32, ll));
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/S2Hand/%s_S2Hand.tif", dir, id));
  MSCI_TRY(msci_synth_write_geotiff(path, s2, n, n, 13, SAMPLEFORMAT_UINT, 16, ll));
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/LabelHand/%s_LabelHand.tif", dir, id));
  return msci_synth_write_geotiff(path, lab, n, n, 1, SAMPLEFORMAT_INT, 16, ll);
}

static void chip_id(int64_t i, char *out, size_t cap) {
  snprintf(out, cap, "%s_%lld", k_regions[i % N_REGIONS], (long long)(100000 + i));
}

/* Writes the list of split `which`: "<S1 file>,<label file>" per chip of that split. */
static msc_status write_split(const char *dir, const char *name, uint64_t seed, int64_t n,
                              int64_t size, int which) {
  char path[4200], tmp[4300], id[64];
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/%s", dir, name));
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return msci_fail(MSC_E_IO, "synth: cannot create %s: %s", tmp, strerror(errno));
  for (int64_t i = 0; i < n; ++i) {
    chip_plan p;
    plan_chip(seed, i, size, &p);
    if (p.split != which) continue;
    chip_id(i, id, sizeof id);
    fprintf(f, "%s_S1Hand.tif,%s_LabelHand.tif\n", id, id);
  }
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  return msci_synth_commit(tmp, path, bad);
}

static const char *const k_leftovers[] = {"S1Hand",
                                          "S2Hand",
                                          "LabelHand",
                                          "flood_valid_data.csv",
                                          "flood_valid_data.csv.tmp",
                                          "flood_test_data.csv",
                                          "flood_test_data.csv.tmp",
                                          NULL};

msc_status msci_synth_floods(const char *dir, int64_t n, uint64_t seed, int64_t size) {
  if (size < 16 || size > 512)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: synth.size = %lld, must be 16..512",
                     (long long)size);
  MSCI_TRY(msci_synth_make_dirs(dir));
  MSCI_TRY(msci_synth_check_target(dir, "flood_train_data.csv", k_leftovers));
  static const char *const sub[3] = {"S1Hand", "S2Hand", "LabelHand"};
  char path[4200];
  for (int k = 0; k < 3; ++k) {
    MSCI_TRY(msci_synth_join(path, sizeof path, "%s/%s", dir, sub[k]));
    MSCI_TRY(msci_synth_make_dirs(path));
  }
  const size_t px = (size_t)(size * size);
  float *s1 = malloc(2 * px * sizeof *s1);
  uint16_t *s2 = malloc(13 * px * sizeof *s2);
  int16_t *lab = malloc(px * sizeof *lab);
  msc_status st = MSC_OK;
  if (!s1 || !s2 || !lab) st = msci_fail(MSC_E_OUT_OF_MEMORY, "synth: pixel buffers");
  char id[64];
  for (int64_t i = 0; st == MSC_OK && i < n; ++i) {
    chip_plan p;
    plan_chip(seed, i, size, &p);
    chip_id(i, id, sizeof id);
    st = write_chip(dir, seed, i, size, id, &p, s1, s2, lab);
  }
  free(s1);
  free(s2);
  free(lab);
  /* The split lists last, train (the marker of a finished dataset) at the very end. */
  if (st == MSC_OK) st = write_split(dir, "flood_valid_data.csv", seed, n, size, 1);
  if (st == MSC_OK) st = write_split(dir, "flood_test_data.csv", seed, n, size, 2);
  if (st == MSC_OK) st = write_split(dir, "flood_train_data.csv", seed, n, size, 0);
  return st;
}
