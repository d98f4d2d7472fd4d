/*
 * dataset_pastis.c — PASTIS (Garnot & Landrieu, ICCV 2021): Sentinel-2 time series of
 * 128 × 128 patches for crop-type mapping, as samples for PIMC (docs/data.md, "PASTIS";
 * docs/pimc.md).
 *
 * The root holds metadata.geojson (one feature a patch: ID_PATCH, Fold 1–5 and, when
 * present, dates-S2 {"0": YYYYMMDD, ...}), DATA_S2/S2_<id>.npy (T × 10 × H × W, bands B2,
 * B3, B4, B5, B6, B7, B8, B8A, B11, B12) and, optionally, ANNOTATIONS/TARGET_<id>.npy
 * (channel 0: class 0 background, 1–18 crops, 19 void). The official folds map to splits by
 * data.pastis.folds. A patch without dates-S2 has days 0, 1, ..., T − 1.
 *
 * Samples (data.sits.sample): "pixel" draws data.sits.pixels distinct pixels per patch
 * (seeded by seed and the patch id; void pixels are never drawn, so void is ignored in
 * training and in every metric), each labelled with its one class (single-label);
 * "patch" gives one sample a patch labelled with every non-void class present in it. The
 * modalities are computed from the series when read (sits_reader.h).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "common/internal.h"
#include "data/dataset.h"
#include "data/dataset_files.h"
#include "data/npy.h"
#include "data/series.h"
#include "data/sits_reader.h"
#include "options/options.h"

#define PASTIS_BANDS   10
#define PASTIS_CLASSES 19 /* 0 background, 1..18 crops */
#define PASTIS_VOID    19
#define PASTIS_MAX_T   4096

static const char *const k_classes[PASTIS_CLASSES] = {"background",
                                                      "meadow",
                                                      "soft winter wheat",
                                                      "corn",
                                                      "winter barley",
                                                      "winter rapeseed",
                                                      "spring barley",
                                                      "sunflower",
                                                      "grapevine",
                                                      "beet",
                                                      "winter triticale",
                                                      "winter durum wheat",
                                                      "fruits, vegetables, flowers",
                                                      "potatoes",
                                                      "leguminous fodder",
                                                      "soybeans",
                                                      "orchard",
                                                      "mixed cereal",
                                                      "sorghum"};

static const char *const k_bands[PASTIS_BANDS] = {"B2", "B3", "B4",  "B5",  "B6",
                                                  "B7", "B8", "B8A", "B11", "B12"};

static msc_status pastis_read_box(const msci_sits *s, int64_t p, int64_t y0, int64_t x0,
                                  int64_t h, int64_t w, float *out) {
  const msci_sits_patch *pt = &s->patches[p];
  msci_npy_file *f = NULL;
  MSCI_TRY(msci_npy_file_open(pt->path, &f));
  const int64_t lo[4] = {0, 0, y0, x0}, cnt[4] = {pt->t, s->c, h, w};
  msc_status st = MSC_OK;
  const int64_t *dims = msci_npy_file_dims(f);
  /* The file may have been replaced since the open: its shape is checked again. */
  if (msci_npy_file_ndim(f) != 4 || dims[0] != pt->t || dims[1] != s->c || dims[2] != pt->h ||
      dims[3] != pt->w) {
    st = msci_fail(MSC_E_BAD_FORMAT, "%s changed shape since the dataset was opened", pt->path);
  } else {
    st = msci_npy_file_read_box(f, lo, cnt, out, NULL, 0);
  }
  msci_npy_file_close(f);
  return st;
}

/* data.pastis.folds "1,2,3;4;5" into split[fold] (folds 1..5; -1 where unlisted). */
static msc_status parse_folds(const char *text, int split[6]) {
  static const int codes[3] = {MSCI_SPLIT_TRAIN, MSCI_SPLIT_VALIDATION, MSCI_SPLIT_TEST};
  for (int f = 0; f < 6; ++f) split[f] = -1;
  int part = 0;
  for (const char *p = text; *p; ++p) {
    if (*p == ';') {
      if (++part > 2) break;
    } else if (*p >= '1' && *p <= '5' && (p[1] == ',' || p[1] == ';' || p[1] == '\0')) {
      if (split[*p - '0'] != -1)
        return msci_fail(MSC_E_INVALID_ARGUMENT, "data.pastis.folds: fold %c listed twice", *p);
      split[*p - '0'] = codes[part];
    } else if (*p != ',' && *p != ' ') {
      part = 3;
      break;
    }
  }
  if (part > 2)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "data.pastis.folds: '%s' is not three ';'-separated lists of folds 1-5 "
                     "(train;validation;test, e.g. \"1,2,3;4;5\")",
                     text);
  return MSC_OK;
}

/* An integer property (a JSON integer, or a string of digits as some exports write it). */
static int prop_int(json_t *props, const char *key, int64_t *v) {
  json_t *j = json_object_get(props, key);
  if (json_is_integer(j)) {
    *v = (int64_t)json_integer_value(j);
    return 1;
  }
  if (json_is_string(j)) {
    const char *s = json_string_value(j);
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (end != s && *end == '\0') {
      *v = x;
      return 1;
    }
  }
  return 0;
}

/* dates-S2 of a feature: an object {"0": YYYYMMDD, ...} (or that object as a JSON string,
 * as GeoPandas writes nested properties) into *days (t values, increasing). Returns 0
 * with *t = 0 when the property is absent. */
static msc_status parse_dates(json_t *props, int64_t id, double **days, int64_t *t) {
  *days = NULL;
  *t = 0;
  json_t *j = json_object_get(props, "dates-S2"), *own = NULL;
  if (!j || json_is_null(j)) return MSC_OK;
  if (json_is_string(j)) {
    json_error_t err;
    j = own = json_loads(json_string_value(j), JSON_REJECT_DUPLICATES, &err);
  }
  msc_status st = MSC_OK;
  size_t n = json_is_object(j) ? json_object_size(j) : 0;
  if (n == 0 || n > PASTIS_MAX_T) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "dataset pastis: patch %lld: dates-S2 is not an object of 1..%d dates",
                   (long long)id, PASTIS_MAX_T);
    goto done;
  }
  double *d = malloc(n * sizeof *d);
  uint8_t *seen = calloc(n, 1);
  if (!d || !seen) {
    free(d);
    free(seen);
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset pastis: out of memory");
    goto done;
  }
  const char *key;
  json_t *val;
  json_object_foreach(j, key, val) {
    char *end = NULL;
    long k = strtol(key, &end, 10);
    int64_t ymd = 0, day = 0;
    if (end == key || *end != '\0' || k < 0 || (size_t)k >= n || seen[k]) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset pastis: patch %lld: dates-S2 key '%s' is not one of 0..%zu",
                     (long long)id, key, n - 1);
      break;
    }
    if (json_is_integer(val))
      ymd = (int64_t)json_integer_value(val);
    else if (json_is_string(val))
      ymd = strtoll(json_string_value(val), NULL, 10);
    if ((st = msci_date_days(ymd, &day)) != MSC_OK) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", msc_last_error());
      st = msci_fail(st, "dataset pastis: patch %lld: dates-S2[%s]: %s", (long long)id, key,
                     msg);
      break;
    }
    seen[k] = 1;
    d[k] = (double)day;
  }
  for (size_t k = 1; st == MSC_OK && k < n; ++k)
    if (d[k] <= d[k - 1])
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset pastis: patch %lld: dates-S2 are not strictly increasing at %zu",
                     (long long)id, k);
  free(seen);
  if (st != MSC_OK) {
    free(d);
    goto done;
  }
  *days = d;
  *t = (int64_t)n;
done:
  json_decref(own);
  return st;
}

/* The shape of DATA_S2 (T × 10 × H × W), checked. */
static msc_status data_shape(const char *path, int64_t dims_out[4]) {
  msci_npy_file *f = NULL;
  MSCI_TRY(msci_npy_file_open(path, &f));
  msc_status st = MSC_OK;
  const int64_t *d = msci_npy_file_dims(f);
  if (msci_npy_file_ndim(f) != 4 || d[1] != PASTIS_BANDS || d[0] < 1 || d[0] > PASTIS_MAX_T ||
      d[2] < 1 || d[3] < 1)
    st = msci_fail(MSC_E_BAD_FORMAT, "%s is not a T x %d x H x W array (T 1..%d)", path,
                   PASTIS_BANDS, PASTIS_MAX_T);
  else
    memcpy(dims_out, d, 4 * sizeof *d);
  msci_npy_file_close(f);
  return st;
}

/* Channel 0 of TARGET (3 × H × W or H × W) as classes, checked against H × W; void
 * (19) becomes -1, a pixel never drawn nor counted. */
static msc_status read_target(const char *path, int64_t h, int64_t w, int32_t *cls) {
  msci_npy_file *f = NULL;
  MSCI_TRY(msci_npy_file_open(path, &f));
  msc_status st = MSC_OK;
  const int32_t nd = msci_npy_file_ndim(f);
  const int64_t *d = msci_npy_file_dims(f);
  float *v = NULL;
  if (!((nd == 3 && d[0] >= 1 && d[1] == h && d[2] == w) ||
        (nd == 2 && d[0] == h && d[1] == w))) {
    st = msci_fail(MSC_E_BAD_FORMAT, "%s is not a [3 x] %lld x %lld array", path, (long long)h,
                   (long long)w);
    goto done;
  }
  const int64_t lo[3] = {0, 0, 0}, cnt3[3] = {1, h, w};
  const int64_t *cnt = nd == 3 ? cnt3 : cnt3 + 1;
  if (!(v = malloc((size_t)(h * w) * sizeof *v))) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset pastis: out of memory");
    goto done;
  }
  if ((st = msci_npy_file_read_box(f, lo, cnt, v, NULL, 0)) != MSC_OK) goto done;
  for (int64_t q = 0; q < h * w; ++q) {
    float c = v[q];
    if (!(c >= 0 && c <= PASTIS_VOID && c == (float)(int)c)) {
      st = msci_fail(MSC_E_BAD_FORMAT, "%s: pixel (%lld, %lld) has class %g (0..19 expected)",
                     path, (long long)(q / w), (long long)(q % w), (double)c);
      goto done;
    }
    cls[q] = c == PASTIS_VOID ? -1 : (int32_t)c;
  }
done:
  free(v);
  msci_npy_file_close(f);
  return st;
}

msc_status msci_open_pastis(msc_dataset *ds, const char *root, const msc_options *opts) {
  char *meta_opt = NULL, *folds = NULL, *on_missing = NULL, *want_split = NULL;
  char *path = NULL, *tpath = NULL;
  size_t cap = 0, tcap = 0;
  unsigned char *text = NULL;
  size_t len = 0;
  json_t *rootj = NULL;
  int64_t *ids = NULL, *cand = NULL;
  int *splits = NULL;
  int32_t *cls = NULL;
  int64_t pixels = 16, seed = 0;
  int fold_split[6];
  msc_status st = MSC_OK;
  msci_sits *s = calloc(1, sizeof *s);
  if (!s) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset pastis: out of memory");
  snprintf(s->format, sizeof s->format, "pastis");
  s->c = PASTIS_BANDS;
  s->band_names = k_bands;
  s->bands = msci_vi_bands_pastis();
  s->read_box = pastis_read_box;
  ds->reader = &msci_sits_reader; /* from here msc_dataset_free releases s */
  ds->reader_state = s;

  if ((st = msci_options_get_string_alloc(opts, "data.metadata", &meta_opt)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.pastis.folds", &folds)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.split", &want_split)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.sits.pixels", &pixels)) != MSC_OK ||
      (st = msc_options_get_int(opts, "seed", &seed)) != MSC_OK)
    goto done;
  if ((st = parse_folds(folds, fold_split)) != MSC_OK) goto done;
  const int skip = strcmp(on_missing, "skip") == 0;
  if (meta_opt[0] ? !msci_path_printf(&path, &cap, "%s", meta_opt)
                  : !msci_path_printf(&path, &cap, "%s/metadata.geojson", root))
    goto oom;
  if ((st = msci_file_read_all(path, &text, &len)) != MSC_OK) goto done;
  json_error_t err;
  rootj = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err);
  json_t *feats = rootj ? json_object_get(rootj, "features") : NULL;
  if (!json_is_array(feats)) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   rootj ? "dataset pastis: %s has no \"features\" array"
                         : "dataset pastis: %s: not JSON (line %d: %s)",
                   path, err.line, err.text);
    goto done;
  }
  const size_t nf = json_array_size(feats);
  ids = malloc((nf ? nf : 1) * sizeof *ids);
  splits = malloc((nf ? nf : 1) * sizeof *splits);
  if (!ids || !splits) goto oom;

  /* Every patch of the table (all splits: they share the time grid). */
  int labelled = -1; /* whether ANNOTATIONS exists, decided on the first patch */
  int64_t max_hw = 1;
  for (size_t f = 0; f < nf; ++f) {
    json_t *props = json_object_get(json_array_get(feats, f), "properties");
    int64_t id = 0, fold = 0, t = 0;
    if (!json_is_object(props) || !prop_int(props, "ID_PATCH", &id) || id < 0 ||
        !prop_int(props, "Fold", &fold) || fold < 1 || fold > 5) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset pastis: %s: feature %zu lacks an integer ID_PATCH >= 0 or a Fold "
                     "1-5",
                     path, f);
      goto done;
    }
    double *days = NULL;
    if ((st = parse_dates(props, id, &days, &t)) != MSC_OK) goto done;
    int64_t dims[4];
    if (!msci_path_printf(&tpath, &tcap, "%s/DATA_S2/S2_%lld.npy", root, (long long)id)) {
      free(days);
      goto oom;
    }
    st = data_shape(tpath, dims);
    if (st == MSC_OK && days && dims[0] != t)
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "dataset pastis: patch %lld: %s has %lld dates, dates-S2 %lld",
                     (long long)id, tpath, (long long)dims[0], (long long)t);
    if (st != MSC_OK) {
      free(days);
      if (!skip) goto done;
      char sid[32];
      snprintf(sid, sizeof sid, "%lld", (long long)id);
      msci_dataset_note_skipped(ds, sid);
      msc_clear_error();
      st = MSC_OK;
      continue;
    }
    if (!days) { /* no dates: positions */
      if (!(days = malloc((size_t)dims[0] * sizeof *days))) goto oom;
      for (int64_t k = 0; k < dims[0]; ++k) days[k] = (double)k;
    }
    if ((st = msci_sits_add_patch(s, tpath, dims[0], dims[2], dims[3], days)) != MSC_OK)
      goto done;
    ids[s->n_patches - 1] = id;
    splits[s->n_patches - 1] = fold_split[fold];
    if (dims[2] * dims[3] > max_hw) max_hw = dims[2] * dims[3];
    if (labelled < 0) {
      if (!msci_path_printf(&tpath, &tcap, "%s/ANNOTATIONS", root)) goto oom;
      labelled = msci_is_dir(tpath);
    }
  }
  if ((st = msci_sits_setup(s, ds, opts)) != MSC_OK) goto done;
  if (labelled > 0) {
    if ((st = msci_dataset_set_classes(ds, k_classes, PASTIS_CLASSES)) != MSC_OK) goto done;
    ds->single_label = !s->patch_samples;
  }

  /* The samples, for the patches of the wanted split only (the generic filter then keeps
   * them all): their annotations are read here. */
  const int want = strcmp(want_split, "train") == 0        ? MSCI_SPLIT_TRAIN
                   : strcmp(want_split, "validation") == 0 ? MSCI_SPLIT_VALIDATION
                   : strcmp(want_split, "test") == 0       ? MSCI_SPLIT_TEST
                                                           : -2;
  cls = malloc((size_t)max_hw * sizeof *cls);
  cand = malloc((size_t)max_hw * sizeof *cand);
  if (!cls || !cand) goto oom;
  for (int64_t pi = 0; pi < s->n_patches; ++pi) {
    if (want != -2 && splits[pi] != want) continue;
    const msci_sits_patch *p = &s->patches[pi];
    if (labelled > 0) {
      if (!msci_path_printf(&tpath, &tcap, "%s/ANNOTATIONS/TARGET_%lld.npy", root,
                            (long long)ids[pi]))
        goto oom;
      if ((st = read_target(tpath, p->h, p->w, cls)) != MSC_OK) {
        if (!skip) goto done;
        char sid[32];
        snprintf(sid, sizeof sid, "%lld", (long long)ids[pi]);
        msci_dataset_note_skipped(ds, sid);
        msc_clear_error();
        st = MSC_OK;
        continue;
      }
    }
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", (long long)ids[pi]);
    if ((st = msci_sits_add_samples(ds, s, pi, sid, splits[pi], labelled > 0 ? cls : NULL,
                                    pixels, seed, cand, NULL, 0)) != MSC_OK)
      goto done;
  }
  goto done;
oom:
  st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset pastis: out of memory");
done:
  free(meta_opt);
  free(folds);
  free(on_missing);
  free(want_split);
  free(path);
  free(tpath);
  free(text);
  json_decref(rootj);
  free(ids);
  free(splits);
  free(cls);
  free(cand);
  return st;
}
