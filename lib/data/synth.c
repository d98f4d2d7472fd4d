/*
 * synth.c — synthetic datasets in a real format (msc_synth_write): BigEarthNet v2 layout
 * (docs/data.md) with labels that can be recovered from the pixels, for tests, benchmarks and
 * demos without downloading anything. The PASTIS layout ("pastis") is written by
 * lib/data/synth_pastis.c, Sen1Floods11 ("sen1floods11") by lib/data/synth_floods.c.
 *
 * Every patch gets 1–3 of the 19 classes. The 120×120 ground of a patch is split into
 * Voronoi regions around 1–3 random centres, one region per label; a pixel of a band at
 * any resolution takes the class of the region under its centre. Each class has a fixed
 * 12-band optical signature (a land-cover group — urban, cropland, forest, grassland,
 * sand, wetland, water — perturbed per class), a texture (a class-dependent sinusoid)
 * and S1 VV/VH backscatter levels that follow the same group, plus seeded noise.
 * The signatures depend only on the class, never on the seed, so a model trained on one
 * seed's data applies to another's.
 *
 * Determinism: every random number comes from rng.h streams labelled by the patch index
 * and band ("synth/p<i>/…"), TIFFs are uncompressed with fixed tags: the same seed and n
 * give byte-identical files. Every file is written under "<name>.tmp" and renamed.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/dataset.h" /* msci_ben_classes */
#include "data/geotiff_write.h"
#include "data/synth.h"
#include "common/internal.h"
#include "common/rng.h"

#define N_CLASSES 19
#define N_S2      12
#define PATCH     120

/* S2 bands in file-name order with their native sizes (10 m: 120, 20 m: 60, 60 m: 20). */
static const char *const k_s2_bands[N_S2] = {"B01", "B02", "B03", "B04", "B05", "B06",
                                             "B07", "B08", "B8A", "B09", "B11", "B12"};
static const int k_s2_size[N_S2] = {20, 120, 120, 120, 60, 60, 60, 120, 60, 20, 60, 60};

/* Land-cover groups: reflectance ×10000 in the band order above, and S1 VV/VH in dB. */
enum { G_URBAN, G_CROP, G_FOREST, G_GRASS, G_SAND, G_WETLAND, G_WATER, N_GROUPS };
static const float k_group_s2[N_GROUPS][N_S2] = {
    {1100, 1200, 1300, 1400, 1600, 1800, 1900, 2000, 2100, 2100, 2400, 2100}, /* urban */
    {800, 900, 1200, 1300, 1800, 2400, 2700, 2900, 3000, 3000, 2600, 1800},   /* crop */
    {250, 300, 550, 300, 800, 2200, 2700, 3000, 3100, 3100, 1500, 700},       /* forest */
    {500, 600, 900, 800, 1300, 2200, 2500, 2700, 2800, 2800, 2300, 1400},     /* grass */
    {1500, 1800, 2200, 2600, 2900, 3100, 3200, 3300, 3400, 3400, 4200, 3500}, /* sand */
    {300, 400, 600, 450, 700, 1300, 1500, 1600, 1650, 1600, 900, 500},        /* wetland */
    {400, 500, 600, 400, 300, 250, 220, 200, 180, 150, 100, 80}};             /* water */
static const float k_group_s1[N_GROUPS][2] = {{-4.f, -10.f},  {-11.f, -17.f}, {-7.5f, -13.f},
                                              {-12.f, -18.f}, {-16.f, -22.f}, {-9.f, -16.f},
                                              {-21.f, -24.f}};
static const int k_class_group[N_CLASSES] = {G_URBAN,   G_URBAN,   G_CROP,  G_CROP,   G_GRASS,
                                             G_CROP,    G_CROP,    G_CROP,  G_FOREST, G_FOREST,
                                             G_FOREST,  G_GRASS,   G_GRASS, G_FOREST, G_SAND,
                                             G_WETLAND, G_WETLAND, G_WATER, G_WATER};

static const char *const k_countries[] = {"Austria", "Belgium",    "Finland",    "Ireland",
                                          "Kosovo",  "Lithuania",  "Luxembourg", "Portugal",
                                          "Serbia",  "Switzerland"};

#define S2_PRODUCT  "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP"
#define S2V1_PREFIX "S2A_MSIL2A_20170613T101031"
#define S1_PRODUCT  "S1A_IW_GRDH_1SDV_20170613T165043"
#define S1_TILE     "33UUP"

/* A class's optical signature, texture and backscatter: the group's, perturbed by a
 * fixed function of the class index so that classes of one group differ too. */
typedef struct class_sig {
  float s2[N_S2];
  float s1[2];
  float amp, fx, fy; /* texture: relative amplitude, spatial frequencies (rad/pixel) */
} class_sig;

static void class_signature(int c, class_sig *s) {
  int g = k_class_group[c];
  for (int b = 0; b < N_S2; ++b)
    s->s2[b] = k_group_s2[g][b] * (1.f + 0.22f * sinf(1.7f * (float)c + 0.9f * (float)b));
  s->s1[0] = k_group_s1[g][0] + 1.5f * sinf(2.3f * (float)c);
  s->s1[1] = k_group_s1[g][1] + 1.5f * cosf(1.9f * (float)c);
  s->amp = 0.05f + 0.04f * (float)(c % 5);
  s->fx = 0.08f + 0.05f * (float)(c % 7);
  s->fy = 0.06f + 0.04f * (float)((c * 3) % 5);
}

/* One patch's composition: its labels and the Voronoi centres of their regions. */
typedef struct patch_plan {
  int n_labels;
  int labels[3];
  float cx[3], cy[3]; /* centres, in 120-pixel ground coordinates */
  int split;          /* 0 train, 1 validation, 2 test */
  int country;
} patch_plan;

static void plan_patch(uint64_t seed, int64_t i, patch_plan *p) {
  char label[64];
  msci_rng r;
  snprintf(label, sizeof label, "synth/p%lld/plan", (long long)i);
  msci_rng_seed(&r, seed, label);
  p->n_labels = 1 + (int)(msci_rng_next(&r) % 3);
  for (int k = 0; k < p->n_labels; ++k) {
    int c, dup;
    do {
      c = (int)(msci_rng_next(&r) % N_CLASSES);
      dup = 0;
      for (int j = 0; j < k; ++j) dup |= p->labels[j] == c;
    } while (dup);
    p->labels[k] = c;
  }
  /* Sorted labels: metadata lists them in class order, as BigEarthNet does. */
  for (int a = 0; a < p->n_labels; ++a)
    for (int b = a + 1; b < p->n_labels; ++b)
      if (p->labels[b] < p->labels[a]) {
        int t = p->labels[a];
        p->labels[a] = p->labels[b];
        p->labels[b] = t;
      }
  /* Centres spread so that every region keeps a good share of the patch. */
  for (int k = 0; k < p->n_labels; ++k) {
    p->cx[k] = (float)(PATCH * (0.15 + 0.7 * msci_rng_uniform(&r)));
    p->cy[k] = (float)(PATCH * (0.15 + 0.7 * msci_rng_uniform(&r)));
  }
  double u = msci_rng_uniform(&r);
  p->split = u < 0.70 ? 0 : u < 0.85 ? 1 : 2;
  p->country = (int)(msci_rng_next(&r) % (sizeof k_countries / sizeof *k_countries));
}

/* The label slot (0..n_labels-1) whose region holds ground point (x, y). */
static int region_of(const patch_plan *p, float x, float y) {
  int best = 0;
  float bd = INFINITY;
  for (int k = 0; k < p->n_labels; ++k) {
    float dx = x - p->cx[k], dy = y - p->cy[k], d = dx * dx + dy * dy;
    if (d < bd) bd = d, best = k;
  }
  return best;
}

/* ---- files ------------------------------------------------------------------------------- */

typedef struct tiff_msg {
  char text[256];
} tiff_msg;

static int on_tiff_error(TIFF *tif, void *user, const char *module, const char *fmt,
                         va_list ap) {
  tiff_msg *m = user;
  (void)tif, (void)module;
  if (m && !m->text[0]) vsnprintf(m->text, sizeof m->text, fmt, ap);
  return 1;
}

static int on_tiff_warning(TIFF *tif, void *user, const char *module, const char *fmt,
                           va_list ap) {
  (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
  return 1;
}

/* Writes a one-band TIFF (uint16 when is_float is 0, else float32) of w × h pixels to
 * path + ".tmp", then renames it to path. */
static msc_status write_tiff(const char *path, const void *pixels, int w, int h, int is_float) {
  return msci_synth_write_tiff(path, pixels, w, h, 1,
                               is_float ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT,
                               is_float ? 32 : 16);
}

msc_status msci_synth_write_tiff(const char *path, const void *pixels, int w, int h, int bands,
                                 int sample_format, int bits) {
  return msci_synth_write_geotiff(path, pixels, w, h, bands, sample_format, bits, NULL);
}

/* Sets EPSG:4326 georeferencing: tie point, pixel scale and the GeoKeys of a geographic
 * WGS 84 raster (model type 2, PixelIsArea, GCS 4326, angular unit degree 9102). */
static int set_lonlat(TIFF *t, const double *ll) {
  static const uint16_t keys[20] = {1, 1, 0,    4, 1024, 0,    1,    2, 1025, 0,
                                    1, 1, 2048, 0, 1,    4326, 2054, 0, 1,    9102};
  double tie[6] = {0, 0, 0, ll[0], ll[1], 0}, scale[3] = {ll[2], ll[2], 0};
  return msci_geotiff_register_tags(t) && TIFFSetField(t, 33922, 6, tie) &&
         TIFFSetField(t, 33550, 3, scale) && TIFFSetField(t, 34735, 20, keys);
}

msc_status msci_synth_write_geotiff(const char *path, const void *pixels, int w, int h,
                                    int bands, int sample_format, int bits,
                                    const double *lonlat_deg) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: path too long: %s", path);
  const size_t bpv = (size_t)(bits / 8), row_bytes = (size_t)w * (size_t)bands * bpv;
  const int rows_per_strip = 16;
  /* Pixel-interleaved (chunky) strips, GDAL's default layout for multi-band files. */
  unsigned char *strip = NULL;
  if (bands > 1 && !(strip = malloc(row_bytes * (size_t)rows_per_strip)))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "synth: strip buffer");
  tiff_msg m = {{0}};
  TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
  if (!o) {
    free(strip);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "synth: libtiff options");
  }
  TIFFOpenOptionsSetErrorHandlerExtR(o, on_tiff_error, &m);
  TIFFOpenOptionsSetWarningHandlerExtR(o, on_tiff_warning, NULL);
  TIFF *t = TIFFOpenExt(tmp, "w", o);
  TIFFOpenOptionsFree(o);
  if (!t) {
    free(strip);
    return msci_fail(MSC_E_IO, "synth: cannot create %s: %s", tmp,
                     m.text[0] ? m.text : strerror(errno));
  }
  int ok = TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w) &&
           TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h) &&
           TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)bits) &&
           TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, (uint16_t)sample_format) &&
           TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)bands) &&
           TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)rows_per_strip) &&
           TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)PHOTOMETRIC_MINISBLACK) &&
           TIFFSetField(t, TIFFTAG_PLANARCONFIG, (uint16_t)PLANARCONFIG_CONTIG) &&
           TIFFSetField(t, TIFFTAG_COMPRESSION, (uint16_t)COMPRESSION_NONE);
  if (ok && bands > 1) { /* the bands past the first are data, not colour (as GDAL writes) */
    uint16_t extra[64] = {0};
    ok = bands <= 65 && TIFFSetField(t, TIFFTAG_EXTRASAMPLES, (uint16_t)(bands - 1), extra);
  }
  if (ok && lonlat_deg) ok = set_lonlat(t, lonlat_deg);
  const size_t plane = (size_t)w * (size_t)h * bpv;
  for (int y = 0; ok && y < h; y += rows_per_strip) {
    int rows = h - y < rows_per_strip ? h - y : rows_per_strip;
    const unsigned char *src = (const unsigned char *)pixels + (size_t)y * row_bytes;
    if (strip) { /* band-major in, interleaved out */
      const unsigned char *in = pixels;
      for (int r = 0; r < rows; ++r)
        for (int x = 0; x < w; ++x)
          for (int b = 0; b < bands; ++b)
            memcpy(strip + ((size_t)r * (size_t)w + (size_t)x) * (size_t)bands * bpv + b * bpv,
                   in + (size_t)b * plane + ((size_t)(y + r) * (size_t)w + (size_t)x) * bpv,
                   bpv);
      src = strip;
    }
    ok = TIFFWriteEncodedStrip(t, (uint32_t)(y / rows_per_strip), (void *)src,
                               (tmsize_t)(row_bytes * (size_t)rows)) >= 0;
  }
  if (ok) ok = TIFFWriteDirectory(t) != 0;
  TIFFClose(t);
  free(strip);
  if (!ok) {
    unlink(tmp);
    return msci_fail(MSC_E_IO, "synth: cannot write %s: %s", tmp,
                     m.text[0] ? m.text : "libtiff error");
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return msci_fail(MSC_E_IO, "synth: cannot rename %s: %s", tmp, strerror(e));
  }
  return MSC_OK;
}

msc_status msci_synth_make_dirs(const char *path) {
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: bad directory \"%s\"", path);
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; ++i) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return msci_fail(MSC_E_IO, "synth: cannot create directory %s: %s", buf, strerror(errno));
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
      return msci_fail(MSC_E_IO, "synth: %s is not a directory", buf);
    buf[i] = c;
  }
  return MSC_OK;
}

/* What an interrupted run leaves besides metadata.tsv.tmp: the two image folders. */
static const char *const k_ben2_leftovers[] = {"BigEarthNet-S1", "BigEarthNet-S2", NULL};

msc_status msci_synth_check_target(const char *dir, const char *meta,
                                   const char *const *leftovers) {
  DIR *d = opendir(dir);
  if (!d)
    return msci_fail(MSC_E_IO, "synth: cannot open directory %s: %s", dir, strerror(errno));
  char meta_tmp[64];
  snprintf(meta_tmp, sizeof meta_tmp, "%s.tmp", meta);
  int has_meta = 0, foreign = 0;
  char first_foreign[256] = "";
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
    if (!strcmp(n, meta)) {
      has_meta = 1;
      continue;
    }
    int known = !strcmp(n, meta_tmp);
    for (const char *const *l = leftovers; !known && *l; ++l) known = !strcmp(n, *l);
    if (!known && !foreign) snprintf(first_foreign, sizeof first_foreign, "%s", n);
    foreign |= !known;
  }
  closedir(d);
  if (foreign && !has_meta)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "synth: %s is not empty (it holds \"%s\") and has no %s: "
                     "refusing to write a dataset into it",
                     dir, first_foreign, meta);
  return MSC_OK;
}

msc_status msci_synth_commit(const char *tmp, const char *path, int failed) {
  if (failed) {
    unlink(tmp);
    return msci_fail(MSC_E_IO, "synth: cannot write %s", tmp);
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return msci_fail(MSC_E_IO, "synth: cannot rename %s: %s", tmp, strerror(e));
  }
  return MSC_OK;
}

msc_status msci_synth_join(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, cap, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: path too long (%s...)", out);
  return MSC_OK;
}

/* Writes the 12 S2 and 2 S1 files of patch i. buf holds 120×120 floats, pix 120×120×4
 * bytes. */
static msc_status write_patch(const char *dir, uint64_t seed, int64_t i, int row, int col,
                              const patch_plan *p, const class_sig *sig, float *buf,
                              uint16_t *u16) {
  char patch[128], s1name[128], folder[4096], path[4200], label[64];
  snprintf(patch, sizeof patch, S2_PRODUCT "_%d_%d", row, col);
  snprintf(s1name, sizeof s1name, S1_PRODUCT "_" S1_TILE "_%d_%d", row, col);

  MSCI_TRY(msci_synth_join(folder, sizeof folder, "%s/BigEarthNet-S2/" S2_PRODUCT "/%s", dir,
                           patch));
  MSCI_TRY(msci_synth_make_dirs(folder));
  for (int b = 0; b < N_S2; ++b) {
    const int s = k_s2_size[b];
    const float scale = (float)PATCH / (float)s;
    msci_rng r;
    snprintf(label, sizeof label, "synth/p%lld/%s", (long long)i, k_s2_bands[b]);
    msci_rng_seed(&r, seed, label);
    const float phase = (float)(6.283185307179586 * msci_rng_uniform(&r));
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x) {
        float gx = ((float)x + 0.5f) * scale, gy = ((float)y + 0.5f) * scale;
        const class_sig *cs = &sig[p->labels[region_of(p, gx, gy)]];
        float v = cs->s2[b] * (1.f + cs->amp * sinf(cs->fx * gx + cs->fy * gy + phase));
        v += (float)(0.03 * cs->s2[b] * msci_rng_normal(&r)) + 20.f;
        v = v < 0.f ? 0.f : v > 6000.f ? 6000.f : v;
        u16[y * s + x] = (uint16_t)lrintf(v);
      }
    MSCI_TRY(msci_synth_join(path, sizeof path, "%s/%s_%s.tif", folder, patch, k_s2_bands[b]));
    MSCI_TRY(write_tiff(path, u16, s, s, 0));
  }

  MSCI_TRY(msci_synth_join(folder, sizeof folder, "%s/BigEarthNet-S1/" S1_PRODUCT "/%s", dir,
                           s1name));
  MSCI_TRY(msci_synth_make_dirs(folder));
  for (int b = 0; b < 2; ++b) {
    msci_rng r;
    snprintf(label, sizeof label, "synth/p%lld/%s", (long long)i, b ? "VH" : "VV");
    msci_rng_seed(&r, seed, label);
    for (int y = 0; y < PATCH; ++y)
      for (int x = 0; x < PATCH; ++x) {
        float gx = (float)x + 0.5f, gy = (float)y + 0.5f;
        const class_sig *cs = &sig[p->labels[region_of(p, gx, gy)]];
        /* Speckle-like noise: dB plus a texture following the optical one. */
        float v = cs->s1[b] + 1.5f * cs->amp * 10.f * sinf(cs->fx * gx + cs->fy * gy) +
                  (float)(1.2 * msci_rng_normal(&r));
        buf[y * PATCH + x] = v < -25.f ? -25.f : v > 0.f ? 0.f : v;
      }
    MSCI_TRY(
        msci_synth_join(path, sizeof path, "%s/%s_%s.tif", folder, s1name, b ? "VH" : "VV"));
    MSCI_TRY(write_tiff(path, buf, PATCH, PATCH, 1));
  }
  return MSC_OK;
}

static msc_status write_metadata(const char *dir, uint64_t seed, int64_t n) {
  char path[4200], tmp[4300];
  MSCI_TRY(msci_synth_join(path, sizeof path, "%s/metadata.tsv", dir));
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return msci_fail(MSC_E_IO, "synth: cannot create %s: %s", tmp, strerror(errno));
  fputs("patch_id\ts1_name\ts2v1_name\tsplit\tcountry\tcontains_seasonal_snow\t"
        "contains_cloud_or_shadow\tlabels\n",
        f);
  static const char *const splits[3] = {"train", "validation", "test"};
  for (int64_t i = 0; i < n; ++i) {
    patch_plan p;
    plan_patch(seed, i, &p);
    int row = (int)(i / 100), col = (int)(i % 100);
    fprintf(f,
            S2_PRODUCT "_%d_%d\t" S1_PRODUCT "_" S1_TILE "_%d_%d\t" S2V1_PREFIX
                       "_%d_%d\t%s\t%s\tfalse\tfalse\t",
            row, col, row, col, row, col, splits[p.split], k_countries[p.country]);
    for (int k = 0; k < p.n_labels; ++k)
      fprintf(f, "%s%s", k ? ";" : "", msci_ben_classes[p.labels[k]]);
    fputc('\n', f);
  }
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  return msci_synth_commit(tmp, path, bad);
}

MSC_API msc_status msc_synth_write(const char *dir, const char *format, int64_t n,
                                   uint64_t seed, const msc_options *opts) {
  if (!dir || !format) return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: NULL argument");
  if (!dir[0]) return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: empty directory name");
  const int pastis = !strcmp(format, "pastis"), floods = !strcmp(format, "sen1floods11");
  if (!pastis && !floods && strcmp(format, "bigearthnet-v2") != 0)
    return msci_fail(MSC_E_UNSUPPORTED,
                     "synth: format \"%s\" is not supported (\"bigearthnet-v2\", \"pastis\" "
                     "or \"sen1floods11\")",
                     format);
  if (n < 1 || n > 1000000)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "synth: n = %lld, must be 1..1000000",
                     (long long)n);
  if (pastis) return msci_synth_pastis(dir, n, seed);
  if (floods) {
    int64_t size = 512;
    if (opts) MSCI_TRY(msc_options_get_int(opts, "synth.size", &size));
    return msci_synth_floods(dir, n, seed, size);
  }
  MSCI_TRY(msci_synth_make_dirs(dir));
  MSCI_TRY(msci_synth_check_target(dir, "metadata.tsv", k_ben2_leftovers));

  class_sig sig[N_CLASSES];
  for (int c = 0; c < N_CLASSES; ++c) class_signature(c, &sig[c]);
  float *buf = malloc(PATCH * PATCH * sizeof(float));
  uint16_t *u16 = malloc(PATCH * PATCH * sizeof(uint16_t));
  msc_status st = MSC_OK;
  if (!buf || !u16) st = msci_fail(MSC_E_OUT_OF_MEMORY, "synth: pixel buffers");
  for (int64_t i = 0; st == MSC_OK && i < n; ++i) {
    patch_plan p;
    plan_patch(seed, i, &p);
    st = write_patch(dir, seed, i, (int)(i / 100), (int)(i % 100), &p, sig, buf, u16);
  }
  free(buf);
  free(u16);
  /* metadata.tsv last: a dataset is listed only once all its files exist. */
  if (st == MSC_OK) st = write_metadata(dir, seed, n);
  return st;
}
