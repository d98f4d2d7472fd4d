/*
 * dataset_series.c — the series manifest: users' own satellite image time series as
 * GeoTIFFs, one file (or one file per band) per date, listed in a TSV table with the
 * dates (docs/data.md, "Series manifest"; docs/pimc.md, "Formats").
 *
 * The table is data.metadata, or <root>/series.tsv (or .tsv.zst); relative paths are
 * relative to the table's folder, and every path must lie inside the dataset root unless
 * data.allow_outside_root (checked before the file is looked at). One row per (series,
 * date), in any order:
 *   series  the series id (required);
 *   date    YYYYMMDD (required; two rows of one series with the same date are an error);
 *   s2      a multi-band GeoTIFF, or a ','-list of single-band files in band order
 *           (required);
 *   split   train, validation (val), test (optional; per series);
 *   labels  class names joined with ';' (optional; per series: a patch-level label);
 *   target  a single-band class raster of the series' size (optional; per series: a
 *           class per pixel; values index data.series.classes, data.series.ignore is
 *           never drawn nor counted).
 * A per-series column may be filled on one row of the series or on all of them; two
 * different values are an error naming the line.
 *
 * data.series.bands names the bands in file order (default the 10 PASTIS / Sentinel-2
 * bands); the vegetation indices find B2 (or B02), B3, B4, B8 and B12 by name. Every date
 * of a series has the same band count and, band by band, the same size; the series' size
 * is the largest height and width of its bands, and a smaller band (Sentinel-2's 20 m and
 * 60 m bands stored at their own resolution) is resampled to it (data.resample, the same
 * pixel-centre alignment as msci_resample) when a window is read. A file's nodata value
 * (GDAL_NODATA) reads as NaN: a missing date for that pixel.
 *
 * Opening reads every file's header (msci_raster_info_read: no pixels) to check the
 * sizes, and every target raster once (twice for the opened split when the classes are
 * numbered from the targets). Reading a sample decodes, for each date and file, only the
 * strips or tiles under the window (msci_raster_read_window).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "common/internal.h"
#include "common/rng.h"
#include "data/dataset.h"
#include "data/dataset_files.h"
#include "data/lines.h"
#include "data/raster.h"
#include "data/series.h"
#include "data/sits_reader.h"
#include "options/options.h"

#define SERIES_MAX_T       4096
#define SERIES_MAX_CLASSES 65536

/* The files of one series. */
typedef struct series_files {
  int32_t nf;    /* files per date: 1 (multi-band) or c (one per band) */
  char **files;  /* t × nf paths, date-major, owned */
  int64_t *bh;   /* c band heights (the same on every date) */
  int64_t *bw;   /* c band widths */
  char *target;  /* the class raster, owned, or NULL */
  char *id;      /* the series id, owned */
  int32_t split; /* MSCI_SPLIT_* */
  char *labels;  /* the labels cell, owned, or NULL */
  int64_t t;     /* dates (for freeing files) */
  float *shift;  /* t values subtracted from each date's values (1000: baseline >= 04.00) */
} series_files;

/* The reader's state: the generic part first (sits_reader.c frees it). */
typedef struct series_state {
  msci_sits sits;
  series_files *sf; /* one per patch of sits (same index); n_sf slots, zeroed past them */
  int64_t n_sf;
  char **band_names;
  int64_t n_band_names;
  msci_resample_mode resample;
} series_state;

static void files_free(series_files *f) {
  if (f->files)
    for (int64_t i = 0; i < f->t * f->nf; ++i) free(f->files[i]);
  free(f->files);
  free(f->bh);
  free(f->bw);
  free(f->target);
  free(f->id);
  free(f->labels);
  free(f->shift);
  memset(f, 0, sizeof *f);
}

static void series_free_format(msci_sits *s) {
  series_state *ss = (series_state *)s;
  for (int64_t i = 0; i < ss->n_sf; ++i) files_free(&ss->sf[i]);
  free(ss->sf);
  msci_names_free(ss->band_names, ss->n_band_names);
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The source index a destination index i reads (bilinear: the lower of its two), as in
 * msci_resample. */
static double src_coord(int64_t i, int64_t src, int64_t dst, int nearest) {
  if (nearest) {
    double c = floor((double)i * (double)src / (double)dst);
    return c < (double)src - 1 ? c : (double)(src - 1);
  }
  double c = ((double)i + 0.5) * (double)src / (double)dst - 0.5;
  return c < 0 ? 0 : c;
}

/* The source span lo..hi (inclusive) that destination indices d0..d0+n-1 read. */
static void src_span(int64_t d0, int64_t n, int64_t src, int64_t dst, int nearest, int64_t *lo,
                     int64_t *hi) {
  *lo = (int64_t)src_coord(d0, src, dst, nearest);
  int64_t last = (int64_t)src_coord(d0 + n - 1, src, dst, nearest);
  *hi = nearest || last + 1 >= src ? last : last + 1;
  if (*hi > src - 1) *hi = src - 1;
}

/* Rows y0.. and columns x0.. (h × w) of the sh × sw band resampled to dh × dw, from the
 * crop r (the band's rows ry0.., columns rx0..): the values msci_resample gives there. */
static void resample_window(const float *r, int64_t rw, int64_t ry0, int64_t rx0, int64_t sh,
                            int64_t sw, int64_t dh, int64_t dw, int64_t y0, int64_t x0,
                            int64_t h, int64_t w, int nearest, float *out) {
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      double fy = src_coord(y0 + y, sh, dh, nearest), fx = src_coord(x0 + x, sw, dw, nearest);
      int64_t iy = (int64_t)fy, ix = (int64_t)fx;
      if (nearest) {
        out[y * w + x] = r[(iy - ry0) * rw + (ix - rx0)];
        continue;
      }
      int64_t iy1 = iy + 1 < sh ? iy + 1 : iy, ix1 = ix + 1 < sw ? ix + 1 : ix;
      double wy = fy - (double)iy, wx = fx - (double)ix;
      const float *a = r + (iy - ry0) * rw, *b = r + (iy1 - ry0) * rw;
      double top = (1 - wx) * a[ix - rx0] + wx * a[ix1 - rx0];
      double bottom = (1 - wx) * b[ix - rx0] + wx * b[ix1 - rx0];
      out[y * w + x] = (float)((1 - wy) * top + wy * bottom);
    }
}

/* A window of file path (band count and size as at the open), its nodata values NaN. */
static msc_status read_file_window(const char *path, int64_t bands, int64_t fh, int64_t fw,
                                   int64_t x0, int64_t y0, int64_t w, int64_t h,
                                   msci_raster *r) {
  MSCI_TRY(msci_raster_read_window(path, x0, y0, w, h, r));
  if (r->info.bands != bands || r->info.height != fh || r->info.width != fw) {
    msci_raster_free(r);
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s changed size or band count since the dataset was "
                     "opened",
                     path);
  }
  if (r->info.has_nodata && !isnan(r->info.nodata)) {
    const float nd = (float)r->info.nodata;
    for (int64_t i = 0; i < bands * w * h; ++i)
      if (r->data[i] == nd) r->data[i] = NAN;
  }
  return MSC_OK;
}

static msc_status series_read_box(const msci_sits *s, int64_t p, int64_t y0, int64_t x0,
                                  int64_t h, int64_t w, float *out) {
  const series_state *ss = (const series_state *)s;
  const series_files *f = &ss->sf[p];
  const msci_sits_patch *pt = &s->patches[p];
  const int64_t c = s->c, hw = h * w;
  const int nearest = ss->resample == MSCI_RESAMPLE_NEAREST;
  for (int64_t d = 0; d < pt->t; ++d) {
    float *od = out + (size_t)(d * c * hw);
    if (f->nf == 1) { /* one multi-band file: every band at the series' size */
      msci_raster r;
      MSCI_TRY(read_file_window(f->files[d], c, pt->h, pt->w, x0, y0, w, h, &r));
      memcpy(od, r.data, (size_t)(c * hw) * sizeof *od);
      msci_raster_free(&r);
      continue;
    }
    for (int64_t b = 0; b < c; ++b) {
      const char *path = f->files[d * f->nf + b];
      const int64_t sh = f->bh[b], sw = f->bw[b];
      msci_raster r;
      if (sh == pt->h && sw == pt->w) {
        MSCI_TRY(read_file_window(path, 1, sh, sw, x0, y0, w, h, &r));
        memcpy(od + b * hw, r.data, (size_t)hw * sizeof *od);
      } else { /* a coarser band: the source pixels under the window, resampled */
        int64_t ry0, ry1, rx0, rx1;
        src_span(y0, h, sh, pt->h, nearest, &ry0, &ry1);
        src_span(x0, w, sw, pt->w, nearest, &rx0, &rx1);
        MSCI_TRY(read_file_window(path, 1, sh, sw, rx0, ry0, rx1 - rx0 + 1, ry1 - ry0 + 1, &r));
        resample_window(r.data, rx1 - rx0 + 1, ry0, rx0, sh, sw, pt->h, pt->w, y0, x0, h, w,
                        nearest, od + b * hw);
      }
      msci_raster_free(&r);
    }
    if (f->shift && f->shift[d] != 0) /* NaN (nodata) stays NaN */
      for (int64_t q = 0; q < c * hw; ++q) od[q] -= f->shift[d];
  }
  return MSC_OK;
}

/* ---- the table ------------------------------------------------------------------------ */

enum { COL_SERIES, COL_DATE, COL_S2, COL_SPLIT, COL_LABELS, COL_TARGET, N_COLS };
static const char *const k_cols[N_COLS] = {"series", "date", "s2", "split", "labels", "target"};

typedef struct row {
  char *text;                /* the line, fields separated by '\0' */
  const char *field[N_COLS]; /* NULL for an absent column */
  int64_t line_no;
  int64_t days;
} row;

typedef struct table {
  const char *path; /* the table, for messages */
  row *rows;
  int64_t n, cap;
} table;

static int cmp_rows(const void *a, const void *b) {
  const row *x = *(const row *const *)a, *y = *(const row *const *)b;
  int c = strcmp(x->field[COL_SERIES], y->field[COL_SERIES]);
  if (c) return c;
  return x->days < y->days ? -1 : x->days > y->days ? 1 : 0;
}

/* Splits s (modifiable) at sep into parts; returns the count (at most max; -1 beyond). */
static int split_list(char *s, char sep, char **parts, int max) {
  int n = 0;
  for (char *p = s;;) {
    if (n == max) return -1;
    parts[n++] = p;
    char *e = strchr(p, sep);
    if (!e) break;
    *e = '\0';
    p = e + 1;
  }
  return n;
}

/* "YYYYMMDD" (exactly 8 digits) into days since 1970-01-01. */
static msc_status parse_date(const table *tb, int64_t line, const char *text, int64_t *days) {
  int ok = strlen(text) == 8;
  for (int i = 0; ok && i < 8; ++i) ok = text[i] >= '0' && text[i] <= '9';
  if (ok && msci_date_days(strtoll(text, NULL, 10), days) == MSC_OK) return MSC_OK;
  return msci_fail(MSC_E_BAD_FORMAT, "series: %s line %lld: date '%s' is not a valid YYYYMMDD",
                   tb->path, (long long)line, text);
}

/* The header and rows of the table. */
static msc_status read_table(const char *path, table *tb, int col_of[N_COLS]) {
  msci_lines rd;
  MSCI_TRY(msci_lines_open(&rd, path));
  msc_status st = MSC_OK;
  int r = msci_lines_next(&rd);
  if (r <= 0) {
    st = r < 0 ? rd.st : msci_fail(MSC_E_BAD_FORMAT, "series: %s is empty", path);
    goto done;
  }
  char *head[N_COLS + 1];
  const int ncols = split_list(rd.line, '\t', head, N_COLS);
  for (int k = 0; k < N_COLS; ++k) col_of[k] = -1;
  if (ncols < 0) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "series: %s: more than %d columns (series, date, s2, "
                   "split, labels, target)",
                   path, N_COLS);
    goto done;
  }
  for (int c = 0; c < ncols; ++c) {
    int k = 0;
    while (k < N_COLS && strcmp(head[c], k_cols[k]) != 0) k++;
    if (k == N_COLS || col_of[k] >= 0) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: %s: column '%s' is %s (columns: series, date, s2, split, labels, "
                     "target)",
                     path, head[c], k == N_COLS ? "unknown" : "repeated");
      goto done;
    }
    col_of[k] = c;
  }
  for (int k = 0; k <= COL_S2; ++k)
    if (col_of[k] < 0) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: %s has no '%s' column (series, date and s2 are "
                     "required)",
                     path, k_cols[k]);
      goto done;
    }
  int64_t line = 1;
  while ((r = msci_lines_next(&rd)) > 0) {
    line++;
    if (!rd.line[0]) continue;
    if (tb->n == tb->cap) {
      int64_t nc = tb->cap ? 2 * tb->cap : 256;
      row *p = realloc(tb->rows, (size_t)nc * sizeof *p);
      if (!p) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
        goto done;
      }
      tb->rows = p;
      tb->cap = nc;
    }
    row *w = &tb->rows[tb->n];
    memset(w, 0, sizeof *w);
    if (!(w->text = strdup(rd.line))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
      goto done;
    }
    tb->n++;
    w->line_no = line;
    char *f[N_COLS + 1];
    int nf = split_list(w->text, '\t', f, N_COLS);
    if (nf != ncols) {
      st = msci_fail(MSC_E_BAD_FORMAT, "series: %s line %lld has %s columns, %d expected", path,
                     (long long)line, nf < 0 ? "too many" : "fewer", ncols);
      goto done;
    }
    for (int k = 0; k < N_COLS; ++k) w->field[k] = col_of[k] >= 0 ? f[col_of[k]] : NULL;
    if (!w->field[COL_SERIES][0] || !w->field[COL_S2][0]) {
      st = msci_fail(MSC_E_BAD_FORMAT, "series: %s line %lld: empty %s", path, (long long)line,
                     w->field[COL_SERIES][0] ? "s2" : "series");
      goto done;
    }
    if ((st = parse_date(tb, line, w->field[COL_DATE], &w->days)) != MSC_OK) goto done;
  }
  if (r < 0)
    st = rd.st;
  else if (tb->n == 0)
    st = msci_fail(MSC_E_BAD_FORMAT, "series: %s has no row", path);
done:
  msci_lines_close(&rd);
  return st;
}

/* The value of per-series column k over rows g[0..n): the one non-empty value (NULL if
 * none); two different ones are an error naming the line. */
static msc_status series_value(const table *tb, row *const *g, int64_t n, int k,
                               const char **out) {
  *out = NULL;
  const row *from = NULL;
  for (int64_t i = 0; i < n; ++i) {
    const char *v = g[i]->field[k];
    if (!v || !v[0]) continue;
    if (*out && strcmp(*out, v) != 0)
      return msci_fail(MSC_E_BAD_FORMAT,
                       "series: %s line %lld: series %s has %s '%s', line %lld '%s' (one value "
                       "per series)",
                       tb->path, (long long)g[i]->line_no, g[i]->field[COL_SERIES], k_cols[k],
                       v, (long long)from->line_no, *out);
    *out = v;
    from = g[i];
  }
  return MSC_OK;
}

/* path of a table cell: absolute, or relative to the table's folder. */
static char *cell_path(char **buf, size_t *cap, const char *base, const char *cell) {
  return cell[0] == '/' ? msci_path_printf(buf, cap, "%s", cell)
                        : msci_path_printf(buf, cap, "%s/%s", base, cell);
}

/* msci_dataset_check_path on a cell's path, before anything opens it: the message names
 * the table and where the cell is (where, e.g. "line 3"). */
static msc_status cell_check(const msc_dataset *ds, const table *tb, const char *where,
                             const char *path) {
  msc_status st = msci_dataset_check_path(ds, path);
  if (st == MSC_E_BAD_FORMAT) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    st = msci_fail(st, "series: %s %s: %s", tb->path, where, msg);
  }
  return st;
}

/* data.series.bands into names; the index bands found by name. */
static msc_status parse_bands(const char *text, series_state *ss) {
  char *tmp = strdup(text), *parts[MSCI_MAX_BANDS + 1];
  if (!tmp) return msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
  msc_status st = MSC_OK;
  const int n = split_list(tmp, ',', parts, MSCI_MAX_BANDS);
  if (n < 0) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT, "data.series.bands: more than %d bands",
                   MSCI_MAX_BANDS);
    goto done;
  }
  if (!(ss->band_names = calloc((size_t)n, sizeof *ss->band_names))) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
    goto done;
  }
  ss->n_band_names = n;
  msci_vi_bands *vb = &ss->sits.bands;
  vb->b2 = vb->b3 = vb->b4 = vb->b8 = vb->b12 = -1;
  static const char *const idx_names[5][2] = {
      {"B2", "B02"}, {"B3", "B03"}, {"B4", "B04"}, {"B8", "B08"}, {"B12", "B12"}};
  int32_t *slot[5] = {&vb->b2, &vb->b3, &vb->b4, &vb->b8, &vb->b12};
  for (int i = 0; i < n; ++i) {
    const char *p = parts[i];
    if (!p[0] || strlen(p) >= MSCI_NAME_LEN) {
      st = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "data.series.bands: band %d of '%s' has an empty or too long name", i + 1,
                     text);
      goto done;
    }
    for (int j = 0; j < i; ++j)
      if (!strcmp(ss->band_names[j], p)) {
        st = msci_fail(MSC_E_INVALID_ARGUMENT, "data.series.bands: %s listed twice", p);
        goto done;
      }
    if (!(ss->band_names[i] = strdup(p))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
      goto done;
    }
    for (int k = 0; k < 5; ++k)
      if (!strcmp(p, idx_names[k][0]) || !strcmp(p, idx_names[k][1])) *slot[k] = i;
  }
  ss->sits.c = n;
  ss->sits.band_names = (const char *const *)ss->band_names;
done:
  free(tmp);
  return st;
}

/* Every index of data.sits.indices finds its bands. */
static msc_status check_index_bands(const msci_sits *s) {
  static const char *const what[5] = {"B2 (blue)", "B3 (green)", "B4 (red)", "B8 (NIR)",
                                      "B12 (SWIR2)"};
  const msci_vi_bands *b = &s->bands;
  for (int k = 0; k < s->rp.channels; ++k) {
    const int vi = s->rp.index[k];
    const int need[5] = {vi == MSCI_VI_EVI, vi == MSCI_VI_NDWI,
                         vi != MSCI_VI_NDWI && vi != MSCI_VI_NBR, 1, vi == MSCI_VI_NBR};
    const int32_t have[5] = {b->b2, b->b3, b->b4, b->b8, b->b12};
    for (int j = 0; j < 5; ++j)
      if (need[j] && have[j] < 0)
        return msci_fail(MSC_E_INVALID_ARGUMENT,
                         "data.sits.indices: %s needs %s, which data.series.bands does not "
                         "name",
                         msci_vi_name((msci_vi)vi), what[j]);
  }
  return MSC_OK;
}

/* The header of one date's file j (band count and size), checked against the series. */
static msc_status date_file(const table *tb, const row *w, const char *path, int nf, int64_t c,
                            int j, int first, series_files *f, int64_t *h, int64_t *wd) {
  msci_raster_info ri;
  msc_status st = msci_raster_info_read(path, &ri);
  if (st != MSC_OK) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    return msci_fail(st, "series: %s line %lld: %s", tb->path, (long long)w->line_no, msg);
  }
  const int64_t want_bands = nf == 1 ? c : 1;
  if (ri.bands != want_bands)
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "series: %s line %lld: %s has %lld bands, %lld expected (data.series.bands "
                   "names %lld; a list of files must hold single-band files)",
                   tb->path, (long long)w->line_no, path, (long long)ri.bands,
                   (long long)want_bands, (long long)c);
  const int64_t b0 = nf == 1 ? 0 : j, b1 = nf == 1 ? c : j + 1;
  for (int64_t b = b0; st == MSC_OK && b < b1; ++b) {
    if (first) {
      f->bh[b] = ri.height;
      f->bw[b] = ri.width;
    } else if (f->bh[b] != ri.height || f->bw[b] != ri.width) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: %s line %lld: %s is %lld x %lld, the first date of series %s "
                     "%lld x %lld (every date of a series has the same size)",
                     tb->path, (long long)w->line_no, path, (long long)ri.height,
                     (long long)ri.width, f->id, (long long)f->bh[b], (long long)f->bw[b]);
    }
    if (f->bh[b] > *h) *h = f->bh[b];
    if (f->bw[b] > *wd) *wd = f->bw[b];
  }
  msci_raster_info_free(&ri);
  return st;
}

/* ---- processing baselines ------------------------------------------------------------ */

/* The Sentinel-2 processing baseline of a date whose file is path, as a number (4.0 for
 * "04.00"), or 0 when unknown: PROCESSING_BASELINE of a metadata.json in the file's folder
 * (SSL4EO-S12, Earth Engine's properties), else the product name's N<xxyy> field in the
 * path (S2A_MSIL2A_20220706T085611_N0400_R007_..., Major-TOM's folders). */
double msci_series_baseline(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
  char *meta = malloc(dir + sizeof "metadata.json");
  double v = 0;
  if (meta) {
    memcpy(meta, path, dir);
    memcpy(meta + dir, "metadata.json", sizeof "metadata.json");
    unsigned char *text = NULL;
    size_t len = 0;
    if (msci_is_file(meta) && msci_file_read_all(meta, &text, &len) == MSC_OK) {
      char *buf = realloc(text, len + 1); /* NUL-terminated for strstr */
      if (buf) {
        buf[len] = '\0';
        const char *k = strstr(buf, "\"PROCESSING_BASELINE\"");
        if (k) {
          k += strlen("\"PROCESSING_BASELINE\"");
          while (*k == ' ' || *k == ':' || *k == '"' || *k == '\t') k++;
          v = msci_strtod(k, NULL);
        }
        free(buf);
      } else {
        free(text);
      }
    }
    msc_clear_error(); /* an unreadable metadata.json only means "unknown" */
    free(meta);
  }
  if (v > 0) return v;
  /* Only in a product name (..._MSIL1C_ or _MSIL2A_, then _N<xxyy>_), so that a user's
   * folder named "x_N1234_y" means nothing. */
  const char *product = strstr(path, "_MSIL");
  for (const char *p = product ? strstr(product, "_N") : NULL; p; p = strstr(p + 1, "_N")) {
    int ok = p[6] == '_';
    for (int i = 2; ok && i < 6; ++i) ok = p[i] >= '0' && p[i] <= '9';
    if (ok)
      return (p[2] - '0') * 10 + (p[3] - '0') + ((p[4] - '0') * 10 + (p[5] - '0')) / 100.0;
  }
  return 0;
}

/* The files of the series of rows g[0..t) (sorted by date) into f. *missing is set (and
 * MSC_OK returned) when a file does not exist. */
static msc_status series_files_load(const msc_dataset *ds, const table *tb, row *const *g,
                                    int64_t t, int64_t c, const char *base, series_files *f,
                                    int64_t *h, int64_t *w, const char **missing, char **pbuf,
                                    size_t *pcap, int harmonize) {
  *missing = NULL;
  *h = *w = 0;
  char *parts[MSCI_MAX_BANDS + 1];
  for (int64_t d = 0; d < t; ++d) {
    const row *rw = g[d];
    char *list = strdup(rw->field[COL_S2]);
    if (!list) return msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
    const int np = split_list(list, ',', parts, MSCI_MAX_BANDS);
    msc_status st = MSC_OK;
    if (d == 0) {
      f->nf = np == 1 ? 1 : (int32_t)c;
      f->files = calloc((size_t)(t * f->nf), sizeof *f->files);
      f->bh = calloc((size_t)c, sizeof *f->bh);
      f->bw = calloc((size_t)c, sizeof *f->bw);
      f->t = t;
      f->shift = calloc((size_t)t, sizeof *f->shift);
      if (!f->files || !f->bh || !f->bw || !f->shift)
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: oom");
    }
    if (st == MSC_OK && np != f->nf)
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: %s line %lld: s2 lists %s%d files: one multi-band file, or one "
                     "single-band file per band of data.series.bands (%lld)%s",
                     tb->path, (long long)rw->line_no, np < 0 ? "more than " : "",
                     np < 0 ? MSCI_MAX_BANDS : np, (long long)c,
                     d > 0 ? ", as the series' first date" : "");
    for (int j = 0; st == MSC_OK && j < np; ++j) {
      if (!cell_path(pbuf, pcap, base, parts[j]) ||
          !(f->files[d * f->nf + j] = strdup(*pbuf))) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
        break;
      }
      char where[48];
      snprintf(where, sizeof where, "line %lld", (long long)rw->line_no);
      if ((st = cell_check(ds, tb, where, *pbuf)) != MSC_OK) break;
      if (!msci_is_file(*pbuf)) {
        *missing = f->files[d * f->nf + j];
        break;
      }
      st = date_file(tb, rw, *pbuf, f->nf, c, j, d == 0, f, h, w);
    }
    free(list);
    if (st != MSC_OK || *missing) return st;
    /* Baseline 04.00 (25 January 2022) added 1000 to every digital number (BOA_ADD_OFFSET
     * -1000): subtracting it puts the date in the convention of the earlier ones. */
    if (harmonize && msci_series_baseline(f->files[d * f->nf]) >= 4.0 - 1e-9)
      f->shift[d] = 1000.0f;
  }
  return MSC_OK;
}

/* The classes of target path (h × w): cls[q] = class, or -1 for the ignore value. Values
 * must be integers 0..k-1 (k <= 0: any value 0..SERIES_MAX_CLASSES-1; *max receives the
 * largest). */
static msc_status read_target(const char *path, int64_t h, int64_t w, int64_t k, int64_t ignore,
                              int32_t *cls, int64_t *max) {
  msci_raster r;
  MSCI_TRY(msci_raster_read(path, &r));
  msc_status st = MSC_OK;
  if (r.bands != 1 || r.height != h || r.width != w) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "series: target %s is %lld x %lld with %lld bands, the series %lld x %lld "
                   "(one band)",
                   path, (long long)r.height, (long long)r.width, (long long)r.bands,
                   (long long)h, (long long)w);
    goto done;
  }
  const int64_t lim = k > 0 ? k : SERIES_MAX_CLASSES;
  for (int64_t q = 0; q < h * w; ++q) {
    const float v = r.data[q];
    if (ignore >= 0 && v == (float)ignore) {
      cls[q] = -1;
      continue;
    }
    if (!(v >= 0 && v < (float)lim && v == floorf(v))) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: target %s: pixel (%lld, %lld) is %g, not a class 0..%lld (nor "
                     "data.series.ignore = %lld)",
                     path, (long long)(q / w), (long long)(q % w), (double)v,
                     (long long)lim - 1, (long long)ignore);
      goto done;
    }
    cls[q] = (int32_t)v;
    if (max && v > (float)*max) *max = (int64_t)v;
  }
done:
  msci_raster_free(&r);
  return st;
}

/* (first line, group) pairs by first line. */
static int cmp_first(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds the ';'-joined names of cell to the set names[0..*n). */
static msc_status collect_labels(const char *cell, char ***names, int64_t *n) {
  char *tmp = strdup(cell), *parts[257];
  if (!tmp) return msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
  const int np = split_list(tmp, ';', parts, 256);
  msc_status st =
      np < 0 ? msci_fail(MSC_E_BAD_FORMAT, "series: more than 256 labels in '%s'", cell)
             : MSC_OK;
  for (int i = 0; st == MSC_OK && i < np; ++i) {
    int64_t k = 0;
    while (k < *n && strcmp((*names)[k], parts[i]) != 0) k++;
    if (k < *n || !parts[i][0]) continue;
    char **p = realloc(*names, (size_t)(*n + 1) * sizeof *p);
    if (!p) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
      break;
    }
    *names = p;
    if (!(p[*n] = strdup(parts[i]))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
      break;
    }
    (*n)++;
  }
  free(tmp);
  return st;
}

static int split_code(const char *v) {
  return !v                                                ? MSCI_SPLIT_NONE
         : !strcmp(v, "train")                             ? MSCI_SPLIT_TRAIN
         : (!strcmp(v, "validation") || !strcmp(v, "val")) ? MSCI_SPLIT_VALIDATION
         : !strcmp(v, "test")                              ? MSCI_SPLIT_TEST
                                                           : -1;
}

msc_status msci_open_series(msc_dataset *ds, const char *root, const msc_options *opts) {
  char *meta = NULL, *on_missing = NULL, *want_split = NULL, *bands = NULL, *classes_opt = NULL;
  char *path = NULL, *base = NULL, *buf = NULL;
  size_t cap = 0, bcap = 0;
  table tb = {0};
  row **order = NULL;
  int64_t *group_start = NULL, *group_first = NULL, *gorder = NULL, n_groups = 0;
  int col_of[N_COLS];
  char **classes = NULL;
  int64_t n_classes = 0;
  int32_t *cls = NULL;
  int64_t *cand = NULL;
  int64_t pixels = 16, seed = 0, ignore = -1, harmonize = 1;
  msc_status st = MSC_OK;
  series_state *ss = calloc(1, sizeof *ss);
  if (!ss) return msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
  msci_sits *s = &ss->sits;
  snprintf(s->format, sizeof s->format, "series");
  s->read_box = series_read_box;
  s->format_free = series_free_format;
  ss->resample = ds->resample;
  ds->reader = &msci_sits_reader; /* from here msc_dataset_free releases ss */
  ds->reader_state = ss;

  if ((st = msci_options_get_string_alloc(opts, "data.metadata", &meta)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.split", &want_split)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.series.bands", &bands)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.series.classes", &classes_opt)) !=
          MSC_OK ||
      (st = msc_options_get_int(opts, "data.series.ignore", &ignore)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.series.harmonize", &harmonize)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.sits.pixels", &pixels)) != MSC_OK ||
      (st = msc_options_get_int(opts, "seed", &seed)) != MSC_OK)
    goto done;
  const int skip = !strcmp(on_missing, "skip");
  if ((st = parse_bands(bands, ss)) != MSC_OK) goto done;
  if (meta[0]) {
    path = meta;
    meta = NULL;
  } else {
    if (!msci_path_printf(&path, &cap, "%s/series.tsv", root)) goto oom;
    if (!msci_is_file(path) && !msci_path_printf(&path, &cap, "%s/series.tsv.zst", root))
      goto oom;
    if (!msci_is_file(path)) {
      st = msci_fail(MSC_E_IO,
                     "series: no %s/series.tsv or series.tsv.zst (or set "
                     "data.metadata)",
                     root);
      goto done;
    }
  }
  const char *slash = strrchr(path, '/');
  if (!(base = slash ? strndup(path, (size_t)(slash - path)) : strdup("."))) goto oom;
  tb.path = path;
  if ((st = read_table(path, &tb, col_of)) != MSC_OK) goto done;
  if (col_of[COL_LABELS] >= 0 && col_of[COL_TARGET] >= 0) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "series: %s has both a labels and a target column (patch labels or pixel "
                   "classes: one of them)",
                   path);
    goto done;
  }

  /* Rows grouped by series and sorted by date; series in the order of their first row. */
  if (!(order = malloc((size_t)tb.n * sizeof *order)) ||
      !(group_start = malloc((size_t)(tb.n + 1) * sizeof *group_start)) ||
      !(group_first = malloc((size_t)tb.n * sizeof *group_first)))
    goto oom;
  for (int64_t i = 0; i < tb.n; ++i) order[i] = &tb.rows[i];
  qsort(order, (size_t)tb.n, sizeof *order, cmp_rows);
  for (int64_t i = 0; i < tb.n; ++i) {
    const int same =
        i > 0 && !strcmp(order[i]->field[COL_SERIES], order[i - 1]->field[COL_SERIES]);
    if (same && order[i]->days == order[i - 1]->days) {
      const int64_t a = order[i - 1]->line_no, b = order[i]->line_no;
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: %s line %lld: series %s has date %s twice (line %lld)", path,
                     (long long)(a > b ? a : b), order[i]->field[COL_SERIES],
                     order[i]->field[COL_DATE], (long long)(a < b ? a : b));
      goto done;
    }
    if (!same) {
      group_start[n_groups] = i;
      group_first[n_groups++] = order[i]->line_no;
    } else if (order[i]->line_no < group_first[n_groups - 1]) {
      group_first[n_groups - 1] = order[i]->line_no;
    }
  }
  group_start[n_groups] = tb.n;
  /* Series order: by first line. */
  if (!(gorder = malloc((size_t)n_groups * 2 * sizeof *gorder))) goto oom;
  for (int64_t g = 0; g < n_groups; ++g) {
    gorder[2 * g] = group_first[g];
    gorder[2 * g + 1] = g;
  }
  qsort(gorder, (size_t)n_groups, 2 * sizeof *gorder, cmp_first);

  /* Every series: its per-series values, files and sizes. */
  if (!(ss->sf = calloc((size_t)n_groups, sizeof *ss->sf))) goto oom;
  ss->n_sf = n_groups;
  int64_t max_hw = 1;
  for (int64_t gi = 0; gi < n_groups && st == MSC_OK; ++gi) {
    const int64_t g = gorder[2 * gi + 1];
    row *const *rows = order + group_start[g];
    const int64_t t = group_start[g + 1] - group_start[g];
    const char *split_v = NULL, *labels_v = NULL, *target_v = NULL;
    if ((st = series_value(&tb, rows, t, COL_SPLIT, &split_v)) != MSC_OK ||
        (st = series_value(&tb, rows, t, COL_LABELS, &labels_v)) != MSC_OK ||
        (st = series_value(&tb, rows, t, COL_TARGET, &target_v)) != MSC_OK)
      break;
    const int sp = split_code(split_v);
    if (sp < 0) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "series: %s: series %s: unknown split '%s' (train, "
                     "validation, test)",
                     path, rows[0]->field[COL_SERIES], split_v);
      break;
    }
    if (t > SERIES_MAX_T) {
      st = msci_fail(MSC_E_BAD_FORMAT, "series: %s: series %s has %lld dates (at most %d)",
                     path, rows[0]->field[COL_SERIES], (long long)t, SERIES_MAX_T);
      break;
    }
    if (labels_v && (st = collect_labels(labels_v, &classes, &n_classes)) != MSC_OK) break;
    series_files *f = &ss->sf[s->n_patches];
    if (!(f->id = strdup(rows[0]->field[COL_SERIES])) ||
        (labels_v && !(f->labels = strdup(labels_v))))
      goto oom;
    f->split = sp;
    if (target_v) {
      if (!cell_path(&buf, &bcap, base, target_v) || !(f->target = strdup(buf))) goto oom;
      char where[160];
      snprintf(where, sizeof where, "series %.100s, column target", f->id);
      if ((st = cell_check(ds, &tb, where, f->target)) != MSC_OK) {
        files_free(f);
        break;
      }
    }
    int64_t h = 0, w = 0;
    const char *missing = NULL;
    st = series_files_load(ds, &tb, rows, t, s->c, base, f, &h, &w, &missing, &buf, &bcap,
                           (int)harmonize);
    if (st == MSC_OK && !missing && f->target && !msci_is_file(f->target)) missing = f->target;
    if (st != MSC_OK || missing) {
      if (st == MSC_OK && !skip)
        st = msci_fail(MSC_E_NOT_FOUND,
                       "series: %s: series %s: missing file %s (data.on_missing = \"skip\" "
                       "leaves such series out)",
                       path, f->id, missing);
      if (st == MSC_OK) msci_dataset_note_skipped(ds, f->id);
      files_free(f);
      continue;
    }
    double *days = malloc((size_t)t * sizeof *days);
    if (!days) goto oom;
    for (int64_t d = 0; d < t; ++d) days[d] = (double)rows[d]->days;
    if ((st = msci_sits_add_patch(s, f->files[0], t, h, w, days)) != MSC_OK) {
      files_free(f);
      break;
    }
    if (h * w > max_hw) max_hw = h * w;
  }
  if (st != MSC_OK) goto done;

  if ((st = msci_sits_setup(s, ds, opts)) != MSC_OK) goto done;
  if ((st = check_index_bands(s)) != MSC_OK) goto done;

  /* Classes: the labels column's names (sorted byte-wise, all splits), or the target's
   * numbering (data.series.classes, else "0".."max" over every target). */
  const int targets = col_of[COL_TARGET] >= 0;
  if (!(cls = malloc((size_t)max_hw * sizeof *cls)) ||
      !(cand = malloc((size_t)max_hw * sizeof *cand)))
    goto oom;
  if (targets && classes_opt[0]) {
    char *tmp = strdup(classes_opt), *parts[1025];
    if (!tmp) goto oom;
    int np = split_list(tmp, ',', parts, 1024);
    if (np < 0) {
      free(tmp);
      st = msci_fail(MSC_E_INVALID_ARGUMENT, "data.series.classes: more than 1024 classes");
      goto done;
    }
    st = msci_dataset_set_classes(ds, (const char *const *)parts, np);
    free(tmp);
    if (st != MSC_OK) goto done;
  } else if (targets) {
    int64_t max = -1;
    for (int64_t pi = 0; pi < s->n_patches && st == MSC_OK; ++pi)
      if (ss->sf[pi].target)
        st = read_target(ss->sf[pi].target, s->patches[pi].h, s->patches[pi].w, 0, ignore, cls,
                         &max);
    if (st != MSC_OK) goto done;
    if (max >= 0) {
      if (!(classes = calloc((size_t)(max + 1), sizeof *classes))) goto oom;
      n_classes = max + 1;
      for (int64_t k = 0; k <= max; ++k) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)k);
        if (!(classes[k] = strdup(num))) goto oom;
      }
      if ((st = msci_dataset_set_classes(ds, (const char *const *)classes, n_classes)) !=
          MSC_OK)
        goto done;
    }
  } else if (n_classes > 0) {
    qsort(classes, (size_t)n_classes, sizeof *classes, cmp_str);
    if ((st = msci_dataset_set_classes(ds, (const char *const *)classes, n_classes)) != MSC_OK)
      goto done;
  }
  if (targets && ds->classes > 0) ds->single_label = !s->patch_samples;

  /* The samples of the wanted split (without a split column, all: the generic filter
   * then asks for data.split = all). */
  const int want = col_of[COL_SPLIT] < 0 ? -2 : split_code(want_split);
  for (int64_t pi = 0; pi < s->n_patches; ++pi) {
    const series_files *f = &ss->sf[pi];
    if (want >= 0 && f->split != want) continue;
    const int32_t *pc = NULL;
    if (targets && ds->classes > 0) {
      if (!f->target) {
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "series: %s: series %s has no target (the column is "
                       "there: every series needs one)",
                       path, f->id);
        goto done;
      }
      if ((st = read_target(f->target, s->patches[pi].h, s->patches[pi].w, ds->classes, ignore,
                            cls, NULL)) != MSC_OK)
        goto done;
      pc = cls;
    }
    const char *names[257];
    int n_names = 0;
    char *tmp = NULL;
    if (!targets && ds->classes > 0 && f->labels) {
      char *parts[257];
      if (!(tmp = strdup(f->labels))) goto oom;
      int np = split_list(tmp, ';', parts, 256);
      for (int q = 0; q < np; ++q)
        if (parts[q][0]) names[n_names++] = parts[q];
    }
    st = msci_sits_add_samples(ds, s, pi, ss->sf[pi].id, ss->sf[pi].split, pc, pixels, seed,
                               cand, names, n_names);
    free(tmp);
    if (st != MSC_OK) goto done;
  }
  goto done;
oom:
  st = msci_fail(MSC_E_OUT_OF_MEMORY, "series: out of memory");
done:
  for (int64_t i = 0; i < tb.n; ++i) free(tb.rows[i].text);
  free(tb.rows);
  free(order);
  free(group_start);
  free(group_first);
  free(gorder);
  msci_names_free(classes, n_classes);
  free(cls);
  free(cand);
  free(meta);
  free(on_missing);
  free(want_split);
  free(bands);
  free(classes_opt);
  free(path);
  free(base);
  free(buf);
  return st;
}
