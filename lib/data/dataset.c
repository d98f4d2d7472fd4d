/*
 * dataset.c — the format-independent part of datasets: the sample table the openers
 * fill (dataset.h), reading and resampling a sample's bands, and the public msc_dataset_*
 * functions (open with the common options, split / fraction selection, batches,
 * statistics).
 */
#include "data/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/batch.h"
#include "data/dataset_files.h"
#include "common/internal.h"
#include "options/options.h"
#include "data/stratify.h"

#define MAX_SKIPPED_IDS 1000

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static void free_names(char **names, int64_t n) {
  if (!names) return;
  for (int64_t i = 0; i < n; ++i) free(names[i]);
  free(names);
}

static char **copy_names(const char *const *names, int64_t n) {
  char **out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
  if (!out) return NULL;
  for (int64_t i = 0; i < n; ++i)
    if (!(out[i] = dup_str(names[i] ? names[i] : ""))) {
      free_names(out, n);
      return NULL;
    }
  return out;
}

static void free_sample(const msc_dataset *ds, msci_sample *s) {
  free(s->id);
  for (int32_t k = 0; k < MSCI_MAX_MODALITIES; ++k) {
    if (!s->bands[k]) continue;
    for (int64_t b = 0; b < ds->mod[k].bands; ++b) free(s->bands[k][b].path);
    free(s->bands[k]);
  }
  free(s->labels);
  free(s->mask.path);
  memset(s, 0, sizeof *s);
}

/* ---- building the table ------------------------------------------------------------ */

msci_sample *msci_dataset_add(msc_dataset *ds, const char *id) {
  if (!ds || !id) return NULL;
  if (ds->n_samples == ds->cap_samples) {
    int64_t cap = ds->cap_samples ? ds->cap_samples * 2 : 256;
    msci_sample *p = realloc(ds->samples, (size_t)cap * sizeof *p);
    if (!p) return NULL;
    ds->samples = p;
    ds->cap_samples = cap;
  }
  msci_sample *s = &ds->samples[ds->n_samples];
  memset(s, 0, sizeof *s);
  s->split = MSCI_SPLIT_NONE;
  if (!(s->id = dup_str(id))) return NULL;
  ds->n_samples++;
  return s;
}

void msci_dataset_drop_last(msc_dataset *ds) {
  if (!ds || ds->n_samples == 0) return;
  free_sample(ds, &ds->samples[--ds->n_samples]);
}

void msci_dataset_note_skipped(msc_dataset *ds, const char *id) {
  if (!ds) return;
  int64_t k = ds->n_skipped++;
  if (!id || k >= MAX_SKIPPED_IDS) return;
  if (!ds->skipped_ids) {
    ds->skipped_ids = calloc(MAX_SKIPPED_IDS, sizeof *ds->skipped_ids);
    if (!ds->skipped_ids) return;
  }
  ds->skipped_ids[k] = dup_str(id); /* NULL on OOM: only the count is kept */
  msci_log(MSC_LOG_DEBUG, "dataset %s: skipped patch %s", ds->format, id);
}

msc_status msci_sample_set_band(msci_sample *s, const msc_dataset *ds, int32_t k, int32_t b,
                                const char *path, int32_t band_in_file) {
  if (!s || !ds || !path || k < 0 || k >= ds->n_mod || b < 0 || b >= ds->mod[k].bands ||
      band_in_file < 0)
    return msci_fail(MSC_E_INTERNAL, "dataset: bad band slot (modality %d, band %d)", (int)k,
                     (int)b);
  if (!s->bands[k]) {
    s->bands[k] = calloc((size_t)ds->mod[k].bands, sizeof *s->bands[k]);
    if (!s->bands[k]) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  }
  char *p = dup_str(path);
  if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  free(s->bands[k][b].path);
  s->bands[k][b].path = p;
  s->bands[k][b].band = band_in_file;
  return MSC_OK;
}

msc_status msci_dataset_set_modality(msc_dataset *ds, int32_t k, const char *name, int64_t size,
                                     const char *const *band_names, int64_t bands) {
  if (!ds || !name || k < 0 || k >= MSCI_MAX_MODALITIES || bands <= 0 || size <= 0 ||
      strlen(name) == 0 || strlen(name) >= MSCI_NAME_LEN || ds->n_samples > 0)
    return msci_fail(MSC_E_INTERNAL, "dataset: bad modality %d", (int)k);
  msci_ds_modality *m = &ds->mod[k];
  char **names = NULL;
  if (band_names && !(names = copy_names(band_names, bands)))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  free_names(m->band_names, m->bands);
  snprintf(m->name, sizeof m->name, "%s", name);
  m->band_names = names;
  m->bands = bands;
  m->size = size;
  m->scale = 1.0; /* the values as read, unless the opener says what they measure */
  m->offset = 0.0;
  if (k + 1 > ds->n_mod) ds->n_mod = k + 1;
  return MSC_OK;
}

msc_status msci_dataset_set_classes(msc_dataset *ds, const char *const *names, int64_t n) {
  if (!ds || !names || n <= 0 || ds->n_samples > 0)
    return msci_fail(MSC_E_INTERNAL, "dataset: bad classes");
  char **c = copy_names(names, n);
  if (!c) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  free_names(ds->class_names, ds->classes);
  ds->class_names = c;
  ds->classes = n;
  return MSC_OK;
}

msc_status msci_dataset_set_mask(msc_dataset *ds, const char *const *names, int64_t classes,
                                 int32_t ignore, int64_t size, int64_t lo, const int32_t *lut,
                                 int64_t lut_n) {
  if (!ds || !names || classes <= 0 || size <= 0 || lut_n <= 0 || lut_n > (1 << 24) ||
      ds->n_samples > 0)
    return msci_fail(MSC_E_INTERNAL, "dataset: bad mask declaration");
  char **c = copy_names(names, classes);
  int32_t *t = malloc((size_t)lut_n * sizeof *t);
  if (!c || !t) {
    free_names(c, classes);
    free(t);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  }
  for (int64_t v = 0; v < lut_n; ++v) t[v] = lut ? lut[v] : (int32_t)v;
  free_names(ds->mask_class_names, ds->mask_classes);
  free(ds->mask_lut);
  ds->mask_class_names = c;
  ds->mask_classes = classes;
  ds->mask_ignore = ignore;
  ds->mask_size = size;
  ds->mask_lut = t;
  ds->mask_lut_lo = lo;
  ds->mask_lut_n = lut_n;
  return MSC_OK;
}

msc_status msci_sample_set_mask(msci_sample *s, const char *path, int32_t band_in_file) {
  if (!s || !path || band_in_file < 0)
    return msci_fail(MSC_E_INTERNAL, "dataset: bad mask file");
  char *p = dup_str(path);
  if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  free(s->mask.path);
  s->mask.path = p;
  s->mask.band = band_in_file;
  return MSC_OK;
}

msc_status msci_sample_set_label_names(msci_sample *s, const msc_dataset *ds,
                                       const char *const *names, int32_t n) {
  if (!s || !ds || (n > 0 && !names) || ds->classes <= 0)
    return msci_fail(MSC_E_INTERNAL, "dataset: labels without classes");
  if (!s->labels) {
    s->labels = calloc((size_t)ds->classes, 1);
    if (!s->labels) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
  } else {
    memset(s->labels, 0, (size_t)ds->classes);
  }
  for (int32_t i = 0; i < n; ++i) {
    int64_t c = 0;
    while (c < ds->classes && strcmp(ds->class_names[c], names[i]) != 0) c++;
    if (c == ds->classes)
      return msci_fail(MSC_E_BAD_FORMAT, "dataset %s: patch %s has an unknown label '%s'",
                       ds->format, s->id, names[i]);
    s->labels[c] = 1;
  }
  return MSC_OK;
}

/* ---- band selection ----------------------------------------------------------------- */

int msci_parse_bands(const char *key, const char *s, const msci_band_info *table, int nt,
                     const int *def, int ndef, int *idx) {
  int n = 0;
  const char *p = s;
  if (*p == '\0' || strcmp(p, "none") == 0) return 0;
  if (strcmp(p, "default") == 0) {
    for (int b = 0; b < ndef; ++b) idx[b] = def ? def[b] : b;
    return ndef;
  }
  for (;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len > 0 && *p == ' ') p++, len--;
    while (len > 0 && p[len - 1] == ' ') len--;
    int j = 0;
    while (j < nt && !(strlen(table[j].name) == len && strncmp(table[j].name, p, len) == 0))
      j++;
    if (j == nt || n == nt) {
      char names[128] = "";
      size_t w = 0;
      for (int t = 0; t < nt; ++t)
        w += (size_t)snprintf(names + w, sizeof names - w, "%s%s", t ? "," : "", table[t].name);
      msci_fail(MSC_E_INVALID_ARGUMENT, "%s: '%.*s' is not a band (bands: %s)", key, (int)len,
                p, names);
      return -1;
    }
    for (int t = 0; t < n; ++t)
      if (idx[t] == j) {
        msci_fail(MSC_E_INVALID_ARGUMENT, "%s: band %s listed twice", key, table[j].name);
        return -1;
      }
    idx[n++] = j;
    if (!e) break;
    p = e + 1;
  }
  return n;
}

msc_status msci_dataset_set_bands(msc_dataset *ds, int32_t k, const char *name, int64_t size,
                                  const msci_band_info *table, const int *idx, int n) {
  const char *names[MSCI_MAX_BANDS] = {0};
  if (n <= 0 || n > MSCI_MAX_BANDS) return msci_fail(MSC_E_INTERNAL, "dataset: bad band count");
  for (int b = 0; b < n; ++b) names[b] = table[idx[b]].name;
  MSCI_TRY(msci_dataset_set_modality(ds, k, name, size, names, n));
  msci_ds_modality *m = &ds->mod[k];
  /* Every format with a band table stores Sentinel-2 as reflectance × 10000 (digital
   * numbers) and Sentinel-1 as backscatter in dB (docs/data.md, "Band units"). */
  if (strcmp(name, "s2") == 0) m->scale = 1e-4;
  for (int b = 0; b < n; ++b) m->file_px[b] = table[idx[b]].file_px;
  m->has_stats = 1;
  for (int b = 0; b < n; ++b) m->has_stats &= table[idx[b]].has_stats;
  if (m->has_stats) {
    m->mean = malloc((size_t)n * sizeof(float));
    m->std = malloc((size_t)n * sizeof(float));
    if (!m->mean || !m->std) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
    for (int b = 0; b < n; ++b) {
      m->mean[b] = table[idx[b]].mean;
      m->std[b] = table[idx[b]].std;
    }
  }
  return MSC_OK;
}

/* ---- split lists ----------------------------------------------------------------------- */

msc_status msci_split_lists_load(const char *root, const char *const files[3], int strip_ext,
                                 msci_name_set sets[3], int *found) {
  char *path = NULL;
  size_t cap = 0;
  msc_status st = MSC_OK;
  *found = 0;
  for (int i = 0; i < 3 && st == MSC_OK; ++i) {
    if (!msci_path_printf(&path, &cap, "%s/%s", root, files[i])) {
      st = MSC_E_OUT_OF_MEMORY;
      break;
    }
    if (!msci_is_file(path)) continue;
    if ((st = msci_name_set_load(&sets[i], path, strip_ext)) != MSC_OK) break;
    msci_name_set_seal(&sets[i]);
    *found = 1;
  }
  free(path);
  return st;
}

int msci_split_lists_find(const msci_name_set sets[3], int found, const char *name) {
  if (!found) return MSCI_SPLIT_NONE;
  static const int codes[3] = {MSCI_SPLIT_TRAIN, MSCI_SPLIT_VALIDATION, MSCI_SPLIT_TEST};
  for (int i = 0; i < 3; ++i)
    if (msci_name_set_has(&sets[i], name)) return codes[i];
  return -1;
}

/* ---- reading ------------------------------------------------------------------------- */

/* Sets the mask pixels whose nearest source pixel (msci_resample's nearest rule) is NaN
 * in band (sh × sw) to the ignore value. */
static void ignore_nan_pixels(const msc_dataset *ds, const float *band, int64_t sh, int64_t sw,
                              int32_t *mask) {
  const int64_t ms = ds->mask_size;
  for (int64_t y = 0; y < ms; ++y) {
    int64_t sy = (int64_t)floor((double)y * (double)sh / (double)ms);
    sy = sy < sh ? sy : sh - 1;
    for (int64_t x = 0; x < ms; ++x) {
      int64_t sx = (int64_t)floor((double)x * (double)sw / (double)ms);
      sx = sx < sw ? sx : sw - 1;
      if (isnan(band[sy * sw + sx])) mask[y * ms + x] = ds->mask_ignore;
    }
  }
}

msc_status msci_dataset_read(const msc_dataset *ds, int64_t i, int32_t k, float *dst) {
  return msci_dataset_read_masked(ds, i, k, dst, NULL);
}

/* Reads modality k of sample i. Rasters are cached within the call, so a multi-band file
 * is decoded once. */
msc_status msci_dataset_read_masked(const msc_dataset *ds, int64_t i, int32_t k, float *dst,
                                    int32_t *mask) {
  if (!ds || !dst || i < 0 || i >= ds->n_samples || k < 0 || k >= ds->n_mod)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "dataset: bad read request");
  if (ds->reader) return ds->reader->read(ds, i, k, dst);
  const msci_sample *s = &ds->samples[i];
  const msci_ds_modality *m = &ds->mod[k];
  if (!s->bands[k])
    return msci_fail(MSC_E_INTERNAL, "dataset %s: sample %s has no %s files", ds->format, s->id,
                     m->name);
  const int64_t nb = m->bands, size = m->size;
  /* Decoded files, each once (a multi-band file serves several bands). */
  enum { STACK_FILES = 16 };
  msci_raster cache_stack[STACK_FILES];
  const char *cpath_stack[STACK_FILES];
  msci_raster *cache = cache_stack;
  const char **cpath = cpath_stack;
  if (nb > STACK_FILES) {
    cache = calloc((size_t)nb, sizeof *cache);
    cpath = calloc((size_t)nb, sizeof *cpath);
  }
  int32_t n_cache = 0;
  msc_status st = MSC_OK;
  if (!cache || !cpath) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset: out of memory");
    goto done;
  }
  for (int64_t b = 0; b < nb && st == MSC_OK; ++b) {
    const msci_band_source *src = &s->bands[k][b];
    if (!src->path) {
      st = msci_fail(MSC_E_INTERNAL, "dataset %s: sample %s: band %lld of %s has no file",
                     ds->format, s->id, (long long)b, m->name);
      break;
    }
    int32_t c = 0;
    while (c < n_cache && strcmp(cpath[c], src->path) != 0) c++;
    if (c == n_cache) {
      msc_status rs = msci_raster_read(src->path, &cache[c]);
      if (rs != MSC_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", msc_last_error());
        msci_raster_free(&cache[c]);
        st = msci_fail(rs, "dataset %s: sample %s: %s", ds->format, s->id, msg);
        break;
      }
      cpath[c] = src->path;
      n_cache++;
    }
    msci_raster *r = &cache[c];
    if (src->band >= r->bands) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset %s: sample %s: %s has %lld bands, band %d "
                     "wanted",
                     ds->format, s->id, src->path, (long long)r->bands, (int)src->band + 1);
      break;
    }
    if (ds->exact_size && (r->height != size || r->width != size)) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset %s: sample %s: %s is %lldx%lld, the sample's files are %lldx%lld",
                     ds->format, s->id, src->path, (long long)r->width, (long long)r->height,
                     (long long)size, (long long)size);
      break;
    }
    const int64_t fpx = m->file_px[b];
    if (fpx > 0 && (r->height != fpx || r->width != fpx)) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset %s: sample %s: %s is %lldx%lld; band %s files are %lldx%lld in "
                     "this format",
                     ds->format, s->id, src->path, (long long)r->width, (long long)r->height,
                     m->band_names ? m->band_names[b] : "?", (long long)fpx, (long long)fpx);
      break;
    }
    const size_t px = (size_t)(r->width * r->height);
    float *out = dst + (size_t)b * (size_t)(size * size);
    const int same = r->height == size && r->width == size;
    /* The fix-ups in one pass, into the output when no resampling follows, else in
     * place in the decoded band (they are idempotent: a band read twice is the same). */
    float *band = r->data + (size_t)src->band * px, *fixed = same ? out : band;
    if (mask && m->nan_to_zero && m->nan_ignores_mask && ds->mask_classes > 0)
      ignore_nan_pixels(ds, band, r->height, r->width, mask);
    for (size_t p = 0; p < px; ++p) {
      float v = band[p];
      if (!isfinite(v)) {
        if (isnan(v) && m->nan_to_zero) {
          v = 0.0f;
        } else if (!m->clip || isnan(v)) {
          st = msci_fail(MSC_E_NUMERICAL,
                         "dataset %s: sample %s: %s band %d has a %s at "
                         "pixel (%lld, %lld)",
                         ds->format, s->id, src->path, (int)src->band + 1,
                         isnan(v) ? "NaN" : "infinity", (long long)(p / (size_t)r->width),
                         (long long)(p % (size_t)r->width));
          break;
        }
      }
      if (m->clip) v = v < m->clip_lo ? m->clip_lo : v > m->clip_hi ? m->clip_hi : v;
      fixed[p] = v;
    }
    if (st != MSC_OK) break;
    if (!same) msci_resample(band, r->height, r->width, out, size, size, ds->resample);
  }
done:
  if (cache)
    for (int32_t c = 0; c < n_cache; ++c) msci_raster_free(&cache[c]);
  if (cache != cache_stack) free(cache);
  if (cpath != cpath_stack) free(cpath);
  return st;
}

/* The class of a mask file's raw value v. */
static int32_t mask_class(const msc_dataset *ds, float v) {
  if (!isfinite(v) || v != floorf(v)) return ds->mask_ignore;
  const double idx = (double)v - (double)ds->mask_lut_lo;
  if (idx < 0 || idx >= (double)ds->mask_lut_n) return ds->mask_ignore;
  return ds->mask_lut[(int64_t)idx];
}

msc_status msci_dataset_read_mask(const msc_dataset *ds, int64_t i, int32_t *dst) {
  if (!ds || !dst || i < 0 || i >= ds->n_samples || ds->mask_classes <= 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "dataset: bad mask read request");
  if (ds->reader) {
    if (!ds->reader->read_mask)
      return msci_fail(MSC_E_INTERNAL, "dataset %s: masks without a mask reader", ds->format);
    return ds->reader->read_mask(ds, i, dst);
  }
  const msci_sample *s = &ds->samples[i];
  if (!s->mask.path)
    return msci_fail(MSC_E_INTERNAL, "dataset %s: sample %s has no mask file", ds->format,
                     s->id);
  msci_raster r;
  msc_status st = msci_raster_read(s->mask.path, &r);
  if (st != MSC_OK) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    msci_raster_free(&r);
    return msci_fail(st, "dataset %s: sample %s: %s", ds->format, s->id, msg);
  }
  if (s->mask.band >= r.bands) {
    st = msci_fail(MSC_E_BAD_FORMAT, "dataset %s: sample %s: %s has %lld bands, band %d wanted",
                   ds->format, s->id, s->mask.path, (long long)r.bands, (int)s->mask.band + 1);
    msci_raster_free(&r);
    return st;
  }
  /* Class labels are never interpolated: another size is resampled by nearest
   * neighbour, the rule of msci_resample. */
  const int64_t ms = ds->mask_size, sh = r.height, sw = r.width;
  if (ds->exact_size && (sh != ms || sw != ms)) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "dataset %s: sample %s: %s is %lldx%lld, the sample's files are %lldx%lld",
                   ds->format, s->id, s->mask.path, (long long)sw, (long long)sh, (long long)ms,
                   (long long)ms);
    msci_raster_free(&r);
    return st;
  }
  const float *band = r.data + (size_t)s->mask.band * (size_t)(sh * sw);
  for (int64_t y = 0; y < ms; ++y) {
    int64_t sy = sh == ms ? y : (int64_t)floor((double)y * (double)sh / (double)ms);
    sy = sy < sh ? sy : sh - 1;
    for (int64_t x = 0; x < ms; ++x) {
      int64_t sx = sw == ms ? x : (int64_t)floor((double)x * (double)sw / (double)ms);
      sx = sx < sw ? sx : sw - 1;
      dst[y * ms + x] = mask_class(ds, band[sy * sw + sx]);
    }
  }
  msci_raster_free(&r);
  return MSC_OK;
}

/* ---- opening ------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  msci_dataset_opener fn;
} format_entry;

static const format_entry formats[] = {
    {"bigearthnet-v2", msci_open_bigearthnet_v2},
    {"bigearthnet-v1", msci_open_bigearthnet_v1},
    {"sen12ms", msci_open_sen12ms},
    {"eurosat", msci_open_eurosat},
    {"manifest", msci_open_manifest},
    {"pastis", msci_open_pastis},
    {"series", msci_open_series},
    {"sen1floods11", msci_open_sen1floods11},
};
#define N_FORMATS ((int)(sizeof formats / sizeof formats[0]))

MSC_API void msc_dataset_free(msc_dataset *ds) {
  if (!ds) return;
  for (int64_t i = 0; i < ds->n_samples; ++i) free_sample(ds, &ds->samples[i]);
  free(ds->samples);
  for (int32_t k = 0; k < MSCI_MAX_MODALITIES; ++k) {
    free_names(ds->mod[k].band_names, ds->mod[k].bands);
    free(ds->mod[k].mean);
    free(ds->mod[k].std);
  }
  free_names(ds->class_names, ds->classes);
  free_names(ds->mask_class_names, ds->mask_classes);
  free(ds->mask_lut);
  if (ds->reader && ds->reader->free) ds->reader->free(ds->reader_state);
  if (ds->skipped_ids) {
    int64_t kept = ds->n_skipped < MAX_SKIPPED_IDS ? ds->n_skipped : MAX_SKIPPED_IDS;
    for (int64_t i = 0; i < kept; ++i) free(ds->skipped_ids[i]);
    free(ds->skipped_ids);
  }
  free(ds->root);
  free(ds->root_real);
  free(ds);
}

static int split_code(const char *s) {
  if (strcmp(s, "train") == 0) return MSCI_SPLIT_TRAIN;
  if (strcmp(s, "validation") == 0) return MSCI_SPLIT_VALIDATION;
  if (strcmp(s, "test") == 0) return MSCI_SPLIT_TEST;
  return -1; /* "all" */
}

/* Keeps the samples with keep[i] != 0, in order. */
static void compact(msc_dataset *ds, const uint8_t *keep) {
  int64_t w = 0;
  for (int64_t i = 0; i < ds->n_samples; ++i) {
    if (keep[i])
      ds->samples[w++] = ds->samples[i];
    else
      free_sample(ds, &ds->samples[i]);
  }
  ds->n_samples = w;
}

static msc_status check_table(const msc_dataset *ds) {
  if (ds->n_mod <= 0)
    return msci_fail(MSC_E_INTERNAL, "dataset %s: the opener set no modality", ds->format);
  for (int32_t k = 0; k < ds->n_mod; ++k)
    if (ds->mod[k].bands <= 0)
      return msci_fail(MSC_E_INTERNAL, "dataset %s: modality %d is not set", ds->format,
                       (int)k);
  for (int64_t i = 0; i < ds->n_samples; ++i) {
    const msci_sample *s = &ds->samples[i];
    for (int32_t k = 0; k < ds->n_mod && !ds->reader; ++k)
      for (int64_t b = 0; b < ds->mod[k].bands; ++b)
        if (!s->bands[k] || !s->bands[k][b].path)
          return msci_fail(MSC_E_INTERNAL, "dataset %s: sample %s lacks band %lld of %s",
                           ds->format, s->id, (long long)b, ds->mod[k].name);
    if (ds->classes > 0 && !s->labels)
      return msci_fail(MSC_E_INTERNAL, "dataset %s: sample %s has no labels", ds->format,
                       s->id);
    if (ds->mask_classes > 0 && !ds->reader && !s->mask.path)
      return msci_fail(MSC_E_INTERNAL, "dataset %s: sample %s has no mask", ds->format, s->id);
  }
  return MSC_OK;
}

/* keep[i] (n bytes, new, the caller frees it) for a stratified share of the samples,
 * drawn over their labels with seed (msci_stratified_subset). */
static msc_status stratified_keep(const msc_dataset *ds, double share, uint64_t seed,
                                  uint8_t **keep) {
  const int64_t n = ds->n_samples, c = ds->classes;
  uint8_t *k = malloc((size_t)n), *y = calloc((size_t)(n * (c > 0 ? c : 1)), 1);
  msc_status st = MSC_OK;
  if (!k || !y) st = msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dataset_open: out of memory");
  for (int64_t i = 0; st == MSC_OK && i < n && c > 0; ++i)
    memcpy(y + i * c, ds->samples[i].labels, (size_t)c);
  if (st == MSC_OK) st = msci_stratified_subset(y, n, c, share, seed, k);
  free(y);
  if (st != MSC_OK) {
    free(k);
    return st;
  }
  *keep = k;
  return MSC_OK;
}

MSC_API msc_status msc_dataset_open(const char *root, const char *format,
                                    const msc_options *opts, msc_dataset **out) {
  if (!root || !format || !out)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_open: NULL argument");
  int f = 0;
  while (f < N_FORMATS && strcmp(formats[f].name, format) != 0) f++;
  if (f == N_FORMATS) {
    char list[256] = "";
    size_t len = 0;
    for (int j = 0; j < N_FORMATS; ++j)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "",
                              formats[j].name);
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_open: unknown format '%s' (formats: %s)",
                     format, list);
  }
  struct stat sb;
  if (stat(root, &sb) != 0)
    return msci_fail(MSC_E_IO, "msc_dataset_open: %s: %s", root, strerror(errno));
  if (!S_ISDIR(sb.st_mode))
    return msci_fail(MSC_E_IO, "msc_dataset_open: %s is not a directory", root);

  msc_options *own = NULL;
  if (!opts) {
    MSCI_TRY(msc_options_create(&own));
    opts = own;
  }
  msc_status st = MSC_OK;
  msc_dataset *ds = calloc(1, sizeof *ds);
  char *split = NULL, *resample = NULL;
  uint8_t *keep = NULL;
  if (!ds || !(ds->root = dup_str(root))) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dataset_open: out of memory");
    goto fail;
  }
  if (!(ds->root_real = realpath(root, NULL))) {
    st = errno == ENOMEM
             ? msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dataset_open: out of memory")
             : msci_fail(MSC_E_IO, "msc_dataset_open: %s: %s", root, strerror(errno));
    goto fail;
  }
  int64_t allow_outside = 0;
  if ((st = msc_options_get_int(opts, "data.allow_outside_root", &allow_outside)) != MSC_OK)
    goto fail;
  ds->allow_outside = allow_outside != 0;
  snprintf(ds->format, sizeof ds->format, "%s", format);
  double fraction = 1.0, labeled_fraction = 1.0;
  int64_t seed = 0;
  if ((st = msci_options_get_string_alloc(opts, "data.split", &split)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.resample", &resample)) != MSC_OK ||
      (st = msc_options_get_float(opts, "data.fraction", &fraction)) != MSC_OK ||
      (st = msc_options_get_float(opts, "data.labeled_fraction", &labeled_fraction)) !=
          MSC_OK ||
      (st = msc_options_get_int(opts, "seed", &seed)) != MSC_OK)
    goto fail;
  ds->resample =
      strcmp(resample, "nearest") == 0 ? MSCI_RESAMPLE_NEAREST : MSCI_RESAMPLE_BILINEAR;
  if ((st = formats[f].fn(ds, root, opts)) != MSC_OK) goto fail;
  if ((st = check_table(ds)) != MSC_OK) goto fail;

  /* The split (openers may have filtered already; this is then a no-op). */
  const int want = split_code(split);
  if (want >= 0 && ds->n_samples > 0) {
    int64_t with_split = 0;
    for (int64_t i = 0; i < ds->n_samples; ++i)
      with_split += ds->samples[i].split != MSCI_SPLIT_NONE;
    if (with_split == 0) {
      st = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_dataset_open: format %s has no splits: set "
                     "data.split to \"all\" (it is \"%s\")",
                     format, split);
      goto fail;
    }
    if (!(keep = malloc((size_t)ds->n_samples))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dataset_open: out of memory");
      goto fail;
    }
    for (int64_t i = 0; i < ds->n_samples; ++i) keep[i] = ds->samples[i].split == want;
    compact(ds, keep);
    free(keep);
    keep = NULL;
  }
  /* The low-label subset, stratified over the labels. */
  if (fraction < 1.0 && ds->n_samples > 0) {
    if ((st = stratified_keep(ds, fraction, (uint64_t)seed, &keep)) != MSC_OK) goto fail;
    compact(ds, keep);
  }
  /* The labelled share: every sample stays, a stratified share keeps its labels for the
   * supervised terms, the others are marked unlabelled (a draw of its own: the seed's
   * bits reversed, so that it does not repeat the data.fraction draw). */
  if (labeled_fraction < 1.0 && ds->n_samples > 0 && ds->classes > 0) {
    uint64_t s2 = 0;
    for (int b = 0; b < 64; ++b) s2 |= (((uint64_t)seed >> b) & 1u) << (63 - b);
    free(keep);
    keep = NULL;
    if ((st = stratified_keep(ds, labeled_fraction, s2 ^ 0x9e3779b97f4a7c15u, &keep)) != MSC_OK)
      goto fail;
    for (int64_t i = 0; i < ds->n_samples; ++i) {
      ds->samples[i].unlabeled = !keep[i];
      ds->n_unlabeled += !keep[i];
    }
  }
  msci_log(MSC_LOG_INFO,
           "dataset %s at %s: %lld samples (split %s, fraction %g), %lld labelled, %lld "
           "skipped",
           format, root, (long long)ds->n_samples, split, fraction,
           (long long)msc_dataset_labeled_count(ds), (long long)ds->n_skipped);
  free(split);
  free(resample);
  free(keep);
  msc_options_free(own);
  *out = ds;
  return MSC_OK;
fail:
  free(split);
  free(resample);
  free(keep);
  msc_options_free(own);
  msc_dataset_free(ds);
  return st;
}

msc_status msci_dataset_check_path(const msc_dataset *ds, const char *path) {
  if (ds->allow_outside) return MSC_OK;
  const int in = msci_path_inside(ds->root_real, path);
  if (in < 0) return MSC_E_OUT_OF_MEMORY;
  if (in) return MSC_OK;
  return msci_fail(MSC_E_BAD_FORMAT,
                   "%s is outside the dataset root %s (symbolic links resolved; "
                   "data.allow_outside_root = 1 allows it)",
                   path, ds->root_real);
}

/* ---- getters ------------------------------------------------------------------------- */

MSC_API int64_t msc_dataset_size(const msc_dataset *ds) {
  return ds ? ds->n_samples : 0;
}

MSC_API int64_t msc_dataset_labeled_count(const msc_dataset *ds) {
  return ds && ds->classes > 0 ? ds->n_samples - ds->n_unlabeled : 0;
}

MSC_API int64_t msc_dataset_skipped(const msc_dataset *ds) {
  return ds ? ds->n_skipped : 0;
}

MSC_API int64_t msc_dataset_class_count(const msc_dataset *ds) {
  return ds ? ds->classes : 0;
}

MSC_API int32_t msc_dataset_single_label(const msc_dataset *ds) {
  return ds ? ds->single_label : 0;
}

MSC_API const char *msc_dataset_class_name(const msc_dataset *ds, int64_t i) {
  if (!ds || i < 0 || i >= ds->classes) return NULL;
  return ds->class_names[i];
}

MSC_API msc_status msc_dataset_mask_info(const msc_dataset *ds, int64_t *classes,
                                         int32_t *ignore_index, int64_t *size) {
  if (!ds) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_mask_info: ds is NULL");
  if (ds->mask_classes <= 0)
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_mask_info: %s samples carry no mask%s",
                     ds->format,
                     !strcmp(ds->format, "bigearthnet-v2") || !strcmp(ds->format, "sen12ms")
                         ? " (set data.masks = 1)"
                         : "");
  if (classes) *classes = ds->mask_classes;
  if (ignore_index) *ignore_index = ds->mask_ignore;
  if (size) *size = ds->mask_size;
  return MSC_OK;
}

MSC_API const char *msc_dataset_mask_class_name(const msc_dataset *ds, int64_t i) {
  if (!ds || i < 0 || i >= ds->mask_classes) return NULL;
  return ds->mask_class_names[i];
}

MSC_API int32_t msc_dataset_modality_count(const msc_dataset *ds) {
  return ds ? ds->n_mod : 0;
}

MSC_API const char *msc_dataset_modality_name(const msc_dataset *ds, int32_t i) {
  if (!ds || i < 0 || i >= ds->n_mod) return NULL;
  return ds->mod[i].name;
}

MSC_API msc_status msc_dataset_modality_shape(const msc_dataset *ds, int32_t i, int64_t *bands,
                                              int64_t *size) {
  if (!ds || !bands || !size)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_modality_shape: NULL argument");
  if (i < 0 || i >= ds->n_mod)
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_modality_shape: modality %d of %d", (int)i,
                     (int)ds->n_mod);
  *bands = ds->mod[i].bands;
  *size = ds->mod[i].size;
  return MSC_OK;
}

MSC_API const char *msc_dataset_band_name(const msc_dataset *ds, int32_t i, int64_t b) {
  if (!ds || i < 0 || i >= ds->n_mod) return NULL;
  const msci_ds_modality *m = &ds->mod[i];
  return (m->band_names && b >= 0 && b < m->bands) ? m->band_names[b] : NULL;
}

MSC_API msc_status msc_dataset_band_scale(const msc_dataset *ds, int32_t i, int64_t b,
                                          double *scale, double *offset) {
  if (!ds || !scale || !offset)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_band_scale: NULL argument");
  if (i < 0 || i >= ds->n_mod)
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_band_scale: modality %d of %d", (int)i,
                     (int)ds->n_mod);
  if (b < 0 || b >= ds->mod[i].bands)
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_band_scale: band %lld of %lld", (long long)b,
                     (long long)ds->mod[i].bands);
  *scale = ds->mod[i].scale;
  *offset = ds->mod[i].offset;
  return MSC_OK;
}

MSC_API msc_status msc_dataset_sample_id(const msc_dataset *ds, int64_t i, char *buf,
                                         size_t cap, size_t *len) {
  if (!ds || (!buf && cap > 0))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_sample_id: NULL argument");
  if (i < 0 || i >= ds->n_samples)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_dataset_sample_id: index %lld outside "
                     "0..%lld",
                     (long long)i, (long long)ds->n_samples - 1);
  const char *id = ds->samples[i].id;
  size_t n = strlen(id);
  if (len) *len = n;
  if (cap > 0) {
    size_t m = n < cap - 1 ? n : cap - 1;
    memcpy(buf, id, m);
    buf[m] = '\0';
  }
  if (cap <= n)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_dataset_sample_id: %zu bytes needed", n + 1);
  return MSC_OK;
}

MSC_API msc_status msc_dataset_stats(const msc_dataset *ds, int32_t modality, float *mean,
                                     float *std, size_t cap) {
  if (!ds || !mean || !std)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_stats: NULL argument");
  if (modality < 0 || modality >= ds->n_mod)
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_stats: modality %d of %d", (int)modality,
                     (int)ds->n_mod);
  const msci_ds_modality *m = &ds->mod[modality];
  if (!m->has_stats || !m->mean || !m->std)
    return msci_fail(MSC_E_NOT_FOUND,
                     "msc_dataset_stats: %s has no published statistics "
                     "for the selected %s bands (use msc_dataset_compute_stats)",
                     ds->format, m->name);
  if (cap < (size_t)m->bands)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_dataset_stats: %lld values, room for %zu",
                     (long long)m->bands, cap);
  memcpy(mean, m->mean, (size_t)m->bands * sizeof *mean);
  memcpy(std, m->std, (size_t)m->bands * sizeof *std);
  return MSC_OK;
}

/* Runs msci_dataset_read_masked (k >= 0; masks, the samples' masks or NULL) or
 * msci_dataset_read_mask (k < 0, into masks) for several samples on OpenMP threads; the
 * error of the lowest failing position wins (deterministic), its message moved to the
 * calling thread. */
static msc_status read_many(const msc_dataset *ds, const int64_t *idx, int64_t n, int32_t k,
                            float *dst, int32_t *masks) {
  const size_t per = k < 0 ? 0 : (size_t)(ds->mod[k].bands * ds->mod[k].size * ds->mod[k].size);
  const size_t per_mask = (size_t)(ds->mask_size * ds->mask_size);
  int64_t err_at = n;
  msc_status err = MSC_OK;
  char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t j = 0; j < n; ++j) {
    int64_t seen;
#pragma omp atomic read
    seen = err_at;
    if (j > seen) continue;
    int32_t *mask = masks ? masks + (size_t)j * per_mask : NULL;
    msc_status st = k < 0
                        ? msci_dataset_read_mask(ds, idx[j], mask)
                        : msci_dataset_read_masked(ds, idx[j], k, dst + (size_t)j * per, mask);
    if (st != MSC_OK) {
#pragma omp critical(msci_dataset_err)
      {
        if (j < err_at) {
          err_at = j;
          err = st;
          snprintf(msg, sizeof msg, "%s", msc_last_error());
        }
      }
    }
  }
  if (err != MSC_OK) return msci_fail(err, "%s", msg);
  return MSC_OK;
}

MSC_API msc_status msc_dataset_fill_batch(const msc_dataset *ds, const int64_t *indices,
                                          int64_t n, msc_batch *batch) {
  if (!ds || !indices || !batch)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_fill_batch: NULL argument");
  if (n <= 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_fill_batch: n = %lld", (long long)n);
  for (int64_t j = 0; j < n; ++j)
    if (indices[j] < 0 || indices[j] >= ds->n_samples)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "msc_dataset_fill_batch: indices[%lld] = %lld "
                       "is outside 0..%lld",
                       (long long)j, (long long)indices[j], (long long)ds->n_samples - 1);
  /* A batch of another size (the last, shorter one of an epoch) starts afresh, its
   * storage kept; the samples are read straight into the batch's own arrays. */
  if (batch->n != 0 && batch->n != n) msci_batch_reset(batch);
  batch->labeled = NULL; /* every sample labelled, unless data.labeled_fraction < 1 */
  msc_status st = MSC_OK;
  /* The mask first: reading a modality may mark pixels of it as ignored (NaN). A batch
   * filled from a dataset without masks has none. */
  int32_t *masks = NULL;
  batch->mask = NULL;
  batch->mask_h = batch->mask_w = 0;
  if (ds->mask_classes > 0) {
    st = msci_batch_reserve_mask(batch, n, ds->mask_size, ds->mask_size, &masks);
    if (st == MSC_OK) st = read_many(ds, indices, n, -1, NULL, masks);
  }
  for (int32_t k = 0; k < ds->n_mod && st == MSC_OK; ++k) {
    const msci_ds_modality *m = &ds->mod[k];
    float *dst = NULL;
    st = msci_batch_reserve(batch, m->name, n, m->bands, m->size, m->size, &dst);
    if (st == MSC_OK) st = read_many(ds, indices, n, k, dst, masks);
  }
  if (st == MSC_OK && ds->classes > 0) {
    uint8_t *labels = NULL;
    st = msci_batch_reserve_labels(batch, n, ds->classes, &labels);
    for (int64_t j = 0; st == MSC_OK && j < n; ++j)
      memcpy(labels + j * ds->classes, ds->samples[indices[j]].labels, (size_t)ds->classes);
    uint8_t *flags = NULL;
    if (st == MSC_OK && ds->n_unlabeled > 0) st = msci_batch_reserve_labeled(batch, n, &flags);
    for (int64_t j = 0; flags && st == MSC_OK && j < n; ++j)
      flags[j] = !ds->samples[indices[j]].unlabeled;
  }
  /* Half-read arrays are no batch: a failed fill leaves it empty (storage kept). */
  if (st != MSC_OK) msci_batch_reset(batch);
  return st;
}

MSC_API msc_status msc_dataset_compute_stats(const msc_dataset *ds, int32_t modality,
                                             int64_t max_samples, float *mean, float *std,
                                             size_t cap) {
  if (!ds || !mean || !std)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_compute_stats: NULL argument");
  if (modality < 0 || modality >= ds->n_mod)
    return msci_fail(MSC_E_NOT_FOUND, "msc_dataset_compute_stats: modality %d of %d",
                     (int)modality, (int)ds->n_mod);
  const msci_ds_modality *m = &ds->mod[modality];
  if (cap < (size_t)m->bands)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "msc_dataset_compute_stats: %lld values, room "
                     "for %zu",
                     (long long)m->bands, cap);
  if (ds->n_samples == 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_compute_stats: the dataset is empty");
  const int64_t total = ds->n_samples;
  const int64_t use = max_samples <= 0 || max_samples > total ? total : max_samples;
  const int64_t nb = m->bands, px = m->size * m->size;
  enum { CHUNK = 32 };
  int64_t idx[CHUNK];
  float *buf = malloc((size_t)(CHUNK * nb * px) * sizeof *buf);
  double *acc_n = calloc((size_t)nb, sizeof(double)),
         *acc_mean = calloc((size_t)nb, sizeof(double));
  double *acc_m2 = calloc((size_t)nb, sizeof(double));
  msc_status st = MSC_OK;
  if (!buf || !acc_n || !acc_mean || !acc_m2) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dataset_compute_stats: out of memory");
    goto done;
  }
  /* Samples evenly spread over the dataset (all of them when use == total), read in
   * chunks on threads; per sample and band a mean and M2 in double, combined in sample
   * order (Chan et al.), so the result does not depend on the thread count. */
  for (int64_t first = 0; first < use && st == MSC_OK; first += CHUNK) {
    int64_t cnt = use - first < CHUNK ? use - first : CHUNK;
    for (int64_t j = 0; j < cnt; ++j) idx[j] = (first + j) * total / use;
    if ((st = read_many(ds, idx, cnt, modality, buf, NULL)) != MSC_OK) break;
    for (int64_t j = 0; j < cnt; ++j)
      for (int64_t b = 0; b < nb; ++b) {
        const float *p = buf + (size_t)((j * nb + b) * px);
        double s = 0.0;
        for (int64_t q = 0; q < px; ++q) s += p[q];
        double mu = s / (double)px, m2 = 0.0;
        for (int64_t q = 0; q < px; ++q) m2 += ((double)p[q] - mu) * ((double)p[q] - mu);
        double na = acc_n[b], nbv = (double)px, nn = na + nbv;
        double d = mu - acc_mean[b];
        acc_mean[b] += d * nbv / nn;
        acc_m2[b] += m2 + d * d * na * nbv / nn;
        acc_n[b] = nn;
      }
  }
  if (st == MSC_OK)
    for (int64_t b = 0; b < nb; ++b) {
      mean[b] = (float)acc_mean[b];
      std[b] = (float)sqrt(acc_m2[b] / acc_n[b]);
    }
done:
  free(buf);
  free(acc_n);
  free(acc_mean);
  free(acc_m2);
  return st;
}
