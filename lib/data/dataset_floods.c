/*
 * dataset_floods.c — Sen1Floods11 hand-labelled chips (format "sen1floods11"; docs/data.md,
 * "Sen1Floods11"): in the root S1Hand/<chip>_S1Hand.tif (VV, VH float32 dB),
 * S2Hand/<chip>_S2Hand.tif (13 bands uint16, B1..B8, B8A, B9..B12) and
 * LabelHand/<chip>_LabelHand.tif (int16: −1 no data, 0 not water, 1 water), where <chip>
 * is <region>_<id>; optional split lists flood_train_data.csv, flood_valid_data.csv and
 * flood_test_data.csv (no header; per line the S1 file name and the label file name).
 *
 * A sample is a chip: modalities "s1" and "s2" (data.s1_bands / data.s2_bands), a mask of
 * two classes (not water, water; −1 ignored) and no patch labels. S1 NaN pixels are set
 * to 0 and their mask pixels to −1, so that a loss never learns from a made-up value.
 * Chips are 512 × 512 in the real dataset; the chip size is the first chip's, every file
 * of every chip must have it (exact_size: nothing is resampled).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_files.h"
#include "common/internal.h"
#include "data/lines.h"
#include "options/options.h"
#include "data/raster.h"

static const msci_band_info k_s1[2] = {{"VV", 0, 0, 0, 0}, {"VH", 0, 0, 0, 0}};
static const msci_band_info k_s2[13] = {
    {"B01", 0, 0, 0, 0}, {"B02", 0, 0, 0, 0}, {"B03", 0, 0, 0, 0}, {"B04", 0, 0, 0, 0},
    {"B05", 0, 0, 0, 0}, {"B06", 0, 0, 0, 0}, {"B07", 0, 0, 0, 0}, {"B08", 0, 0, 0, 0},
    {"B8A", 0, 0, 0, 0}, {"B09", 0, 0, 0, 0}, {"B10", 0, 0, 0, 0}, {"B11", 0, 0, 0, 0},
    {"B12", 0, 0, 0, 0}};
static const char *const k_mask_classes[2] = {"not water", "water"};
/* LabelHand values −1, 0, 1 → ignore, 0, 1 (anything else is ignored too). */
static const int32_t k_label_lut[3] = {-1, 0, 1};

/* One chip found in the lists (or the S1 folder). */
typedef struct chip {
  char *id, *label; /* owned; label: the label file name */
  int32_t split;
} chip;

typedef struct chips {
  chip *v;
  int64_t n, cap;
} chips;

static void chips_free(chips *c) {
  for (int64_t i = 0; i < c->n; ++i) {
    free(c->v[i].id);
    free(c->v[i].label);
  }
  free(c->v);
}

static msc_status chips_add(chips *c, const char *id, size_t id_len, const char *label,
                            int32_t split) {
  if (c->n == c->cap) {
    int64_t cap = c->cap ? 2 * c->cap : 64;
    chip *p = realloc(c->v, (size_t)cap * sizeof *p);
    if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "sen1floods11: out of memory");
    c->v = p;
    c->cap = cap;
  }
  chip *k = &c->v[c->n];
  k->id = strndup(id, id_len);
  k->label = strdup(label);
  k->split = split;
  if (!k->id || !k->label) {
    free(k->id);
    free(k->label);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "sen1floods11: out of memory");
  }
  c->n++;
  return MSC_OK;
}

/* The chip of an S1 file name "<chip>_S1Hand.tif": its length, 0 if not of that form. */
static size_t chip_len(const char *s1) {
  static const char suffix[] = "_S1Hand.tif";
  size_t n = strlen(s1), k = sizeof suffix - 1;
  if (n <= k || strcmp(s1 + n - k, suffix) != 0) return 0;
  return n - k;
}

/* Reads one split list into c. */
static msc_status read_list(const char *path, int32_t split, chips *c) {
  msci_lines rd;
  MSCI_TRY(msci_lines_open(&rd, path));
  msc_status st = MSC_OK;
  int64_t line_no = 0;
  int r = 0;
  while (st == MSC_OK && (r = msci_lines_next(&rd)) > 0) {
    line_no++;
    char *s = rd.line;
    while (*s == ' ') s++;
    if (!*s) continue;
    char *comma = strchr(s, ',');
    if (comma) *comma = '\0';
    char *label = comma ? comma + 1 : NULL;
    while (label && *label == ' ') label++;
    const size_t len = chip_len(s);
    if (!len || !label || !*label || strchr(s, '/') || strchr(label, '/')) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "sen1floods11: %s line %lld: expected \"<chip>_S1Hand.tif,"
                     "<chip>_LabelHand.tif\"",
                     path, (long long)line_no);
      break;
    }
    st = chips_add(c, s, len, label, split);
  }
  if (st == MSC_OK && r < 0) st = rd.st;
  msci_lines_close(&rd);
  return st;
}

/* Every chip: from the split lists when there are any, else every S1 file (no split). */
static msc_status find_chips(const char *root, chips *c, char **path, size_t *cap) {
  static const char *const lists[3] = {"flood_train_data.csv", "flood_valid_data.csv",
                                       "flood_test_data.csv"};
  static const int32_t codes[3] = {MSCI_SPLIT_TRAIN, MSCI_SPLIT_VALIDATION, MSCI_SPLIT_TEST};
  int found = 0;
  for (int i = 0; i < 3; ++i) {
    if (!msci_path_printf(path, cap, "%s/%s", root, lists[i])) return MSC_E_OUT_OF_MEMORY;
    if (!msci_is_file(*path)) continue;
    found = 1;
    MSCI_TRY(read_list(*path, codes[i], c));
  }
  if (found) return MSC_OK;
  if (!msci_path_printf(path, cap, "%s/S1Hand", root)) return MSC_E_OUT_OF_MEMORY;
  char **names = NULL;
  int64_t n = 0;
  MSCI_TRY(msci_list_dir(*path, 'f', &names, &n));
  msc_status st = MSC_OK;
  char label[512];
  for (int64_t i = 0; i < n && st == MSC_OK; ++i) {
    const size_t len = chip_len(names[i]);
    if (!len || len + 16 > sizeof label) continue;
    snprintf(label, sizeof label, "%.*s_LabelHand.tif", (int)len, names[i]);
    st = chips_add(c, names[i], len, label, MSCI_SPLIT_NONE);
  }
  msci_names_free(names, n);
  return st;
}

msc_status msci_open_sen1floods11(msc_dataset *ds, const char *root, const msc_options *opts) {
  char *on_missing = NULL, *s1b = NULL, *s2b = NULL, *path = NULL;
  size_t cap = 0;
  chips c = {0};
  msc_status st;
  int s1_idx[2], s2_idx[13];
  if ((st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s1_bands", &s1b)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s2_bands", &s2b)) != MSC_OK)
    goto done;
  const int n1 = msci_parse_bands("data.s1_bands", s1b, k_s1, 2, NULL, 2, s1_idx);
  const int n2 =
      n1 < 0 ? -1 : msci_parse_bands("data.s2_bands", s2b, k_s2, 13, NULL, 13, s2_idx);
  if (n1 < 0 || n2 < 0) {
    st = MSC_E_INVALID_ARGUMENT;
    goto done;
  }
  if (n1 == 0 && n2 == 0) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "sen1floods11: data.s1_bands and data.s2_bands are both \"none\"");
    goto done;
  }
  if (!msci_path_printf(&path, &cap, "%s/S1Hand", root)) {
    st = MSC_E_OUT_OF_MEMORY;
    goto done;
  }
  if (!msci_is_dir(path)) {
    st = msci_fail(MSC_E_IO, "sen1floods11: no folder %s (the hand-labelled chips' S1Hand)",
                   path);
    goto done;
  }
  if ((st = find_chips(root, &c, &path, &cap)) != MSC_OK) goto done;

  /* The chip size: the S1 file of the first chip that has one (every file of every chip
   * must have it; chips listed before it are missing, and left out or refused below). */
  int64_t size = 512;
  for (int64_t i = 0; i < c.n; ++i) {
    msci_raster_info info;
    if (!msci_path_printf(&path, &cap, "%s/S1Hand/%s_S1Hand.tif", root, c.v[i].id)) {
      st = MSC_E_OUT_OF_MEMORY;
      goto done;
    }
    if (!msci_is_file(path)) continue;
    if ((st = msci_raster_info_read(path, &info)) != MSC_OK) {
      msci_raster_info_free(&info);
      goto done;
    }
    size = info.width;
    msci_raster_info_free(&info);
    break;
  }
  const int32_t k1 = n1 > 0 ? 0 : -1, k2 = n2 > 0 ? (n1 > 0 ? 1 : 0) : -1;
  if ((k1 >= 0 &&
       (st = msci_dataset_set_bands(ds, k1, "s1", size, k_s1, s1_idx, n1)) != MSC_OK) ||
      (k2 >= 0 &&
       (st = msci_dataset_set_bands(ds, k2, "s2", size, k_s2, s2_idx, n2)) != MSC_OK) ||
      (st = msci_dataset_set_mask(ds, k_mask_classes, 2, -1, size, -1, k_label_lut, 3)) !=
          MSC_OK)
    goto done;
  if (k1 >= 0) ds->mod[k1].nan_to_zero = ds->mod[k1].nan_ignores_mask = 1;
  ds->exact_size = 1;

  const int skip = strcmp(on_missing, "skip") == 0;
  for (int64_t i = 0; i < c.n && st == MSC_OK; ++i) {
    const chip *k = &c.v[i];
    /* Every file must exist before the sample is added. */
    static const char *const folders[3] = {"S1Hand", "S2Hand", "LabelHand"};
    const char *missing = NULL;
    for (int f = 0; f < 3 && !missing; ++f) {
      if ((f == 0 && k1 < 0) || (f == 1 && k2 < 0)) continue;
      int ok = f == 2 ? !!msci_path_printf(&path, &cap, "%s/LabelHand/%s", root, k->label)
                      : !!msci_path_printf(&path, &cap, "%s/%s/%s_%s.tif", root, folders[f],
                                           k->id, folders[f]);
      if (!ok) {
        st = MSC_E_OUT_OF_MEMORY;
        break;
      }
      if (!msci_is_file(path)) missing = path;
    }
    if (st != MSC_OK) break;
    if (missing) {
      if (!skip) {
        st = msci_fail(MSC_E_NOT_FOUND,
                       "sen1floods11: chip %s: missing file %s "
                       "(data.on_missing = \"skip\" leaves such chips out)",
                       k->id, missing);
        break;
      }
      msci_dataset_note_skipped(ds, k->id);
      continue;
    }
    msci_sample *s = msci_dataset_add(ds, k->id);
    if (!s) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "sen1floods11: out of memory");
      break;
    }
    s->split = k->split;
    for (int b = 0; b < n1 && st == MSC_OK; ++b) {
      if (!msci_path_printf(&path, &cap, "%s/S1Hand/%s_S1Hand.tif", root, k->id))
        st = MSC_E_OUT_OF_MEMORY;
      else
        st = msci_sample_set_band(s, ds, k1, b, path, s1_idx[b]);
    }
    for (int b = 0; b < n2 && st == MSC_OK; ++b) {
      if (!msci_path_printf(&path, &cap, "%s/S2Hand/%s_S2Hand.tif", root, k->id))
        st = MSC_E_OUT_OF_MEMORY;
      else
        st = msci_sample_set_band(s, ds, k2, b, path, s2_idx[b]);
    }
    if (st == MSC_OK) {
      if (!msci_path_printf(&path, &cap, "%s/LabelHand/%s", root, k->label))
        st = MSC_E_OUT_OF_MEMORY;
      else
        st = msci_sample_set_mask(s, path, 0);
    }
  }
done:
  chips_free(&c);
  free(path);
  free(on_missing);
  free(s1b);
  free(s2b);
  return st;
}
