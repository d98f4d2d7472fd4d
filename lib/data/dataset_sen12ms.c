/*
 * dataset_sen12ms.c — SEN12MS: ROIsXXXX_<season>/{s1,s2,lc}_<scene>/
 * ROIsXXXX_<season>_{s1,s2,lc}_<scene>_p<n>.tif, 256×256. S1 is 2 bands float32 dB (NaN
 * becomes 0, then values are clipped to [-25, 0]); S2 is 13 bands uint16 (B01..B08, B8A,
 * B09..B12); lc is 4 bands, the first IGBP.
 *
 * Labels (docs/data.md): the patch's IGBP class fractions summed into the simplified 10 classes,
 * a class present when its fraction is >= 0.1. The fractions come from a table
 * (data.metadata: TSV with a column "id" — the sample id ROIsXXXX_<season>_<scene>_p<n> —
 * and columns igbp_1 .. igbp_17) or, without one, from the lc rasters, which are read at
 * open time (one read per patch: give a table for the full dataset). Fractions are over
 * the pixels whose IGBP value is 1..17; a patch without such a pixel is an error.
 * Splits: optional train_list.txt / val_list.txt / test_list.txt in the root (one file or
 * sample name per line, any of the s1/s2/lc names); without them there is no split.
 * With data.masks = 1 the mask of a patch is its lc band 1 mapped to the 10 classes per
 * pixel (IGBP values outside 1..17 ignored); the lc raster must then exist.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_files.h"
#include "common/internal.h"
#include "data/lines.h"
#include "options/options.h"
#include "data/raster.h"

static const char *const k_classes[10] = {"Forest",   "Shrubland", "Savanna", "Grassland",
                                          "Wetlands", "Croplands", "Urban",   "Snow/ice",
                                          "Barren",   "Water"};

/* Simplified class of IGBP code 1..17 (index 0 unused). */
static const int k_igbp_to10[18] = {-1, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 5, 7, 8, 9};

static const msci_band_info k_s1[2] = {{"VV", 1, -11.76858f, 4.525339f, 0},
                                       {"VH", 1, -18.294598f, 4.3586307f, 0}};
static const msci_band_info k_s2[13] = {
    {"B01", 0, 0, 0, 0},
    {"B02", 1, 1226.4215f, 741.6254f, 0},
    {"B03", 1, 1137.3799f, 740.883f, 0},
    {"B04", 1, 1139.6792f, 960.1045f, 0},
    {"B05", 1, 1350.9973f, 946.76056f, 0},
    {"B06", 1, 1932.9058f, 985.52747f, 0},
    {"B07", 1, 2211.1584f, 1082.4341f, 0},
    {"B08", 1, 2154.9846f, 1057.7628f, 0},
    {"B8A", 1, 2409.1128f, 1136.1942f, 0},
    {"B09", 0, 0, 0, 0},
    {"B10", 0, 0, 0, 0},
    {"B11", 1, 2001.8622f, 1132.7898f, 0},
    {"B12", 1, 1356.0801f, 991.48016f, 0},
};
/* The standard S2 subset: B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12. */
static const int k_s2_default[10] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12};

/* Labels from IGBP fractions (17 entries, codes 1..17). */
void msci_sen12ms_labels(const double *frac17, uint8_t *labels10) {
  double f[10] = {0};
  for (int g = 1; g <= 17; ++g) f[k_igbp_to10[g]] += frac17[g - 1];
  for (int k = 0; k < 10; ++k) labels10[k] = f[k] >= 0.1;
}

/* The sample id of a file or sample name: "ROIs1158_spring_s2_1_p30.tif" → 
 * "ROIs1158_spring_1_p30". Writes into out; 0 if the name does not have that form. */
static int sample_id(const char *name, char *out, size_t cap) {
  const char *m = strstr(name, "_s1_");
  if (!m) m = strstr(name, "_s2_");
  if (!m) m = strstr(name, "_lc_");
  size_t len = strlen(name);
  if (len > 4 && !strcmp(name + len - 4, ".tif")) len -= 4;
  if (!m) {
    if (len >= cap) return 0;
    snprintf(out, cap, "%.*s", (int)len, name);
    return 1;
  }
  size_t head = (size_t)(m - name);
  if (len - 3 >= cap) return 0;
  snprintf(out, cap, "%.*s%.*s", (int)head, name, (int)(len - head - 3), m + 3);
  return 1;
}

typedef struct table_row {
  char *id;
  double frac[17];
} table_row;

static int cmp_row(const void *a, const void *b) {
  return strcmp(((const table_row *)a)->id, ((const table_row *)b)->id);
}

static void free_table(table_row *t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) free(t[i].id);
  free(t);
}

/* Reads the fraction table. */
static msc_status load_table(const char *path, table_row **out, int64_t *out_n) {
  msci_lines rd;
  MSCI_TRY(msci_lines_open(&rd, path));
  table_row *t = NULL;
  int64_t n = 0, cap = 0, line_no = 1;
  int col_id = -1, col_f[17], ncols = 0;
  msc_status st = MSC_OK;
  for (int g = 0; g < 17; ++g) col_f[g] = -1;
  int r = msci_lines_next(&rd);
  if (r <= 0) {
    st = r < 0 ? rd.st : msci_fail(MSC_E_BAD_FORMAT, "sen12ms: %s is empty", path);
    goto done;
  }
  for (char *save = NULL, *tok = strtok_r(rd.line, "\t", &save); tok;
       tok = strtok_r(NULL, "\t", &save), ncols++) {
    int g;
    if (!strcmp(tok, "id"))
      col_id = ncols;
    else if (sscanf(tok, "igbp_%d", &g) == 1 && g >= 1 && g <= 17)
      col_f[g - 1] = ncols;
  }
  if (col_id < 0) {
    st = msci_fail(MSC_E_BAD_FORMAT, "sen12ms: %s has no column 'id'", path);
    goto done;
  }
  for (int g = 0; g < 17; ++g)
    if (col_f[g] < 0) {
      st = msci_fail(MSC_E_BAD_FORMAT, "sen12ms: %s has no column 'igbp_%d'", path, g + 1);
      goto done;
    }
  while ((r = msci_lines_next(&rd)) > 0) {
    line_no++;
    if (!rd.line[0]) continue;
    char *fields[64];
    int nf = 0;
    for (char *p = rd.line; nf < 64;) {
      fields[nf++] = p;
      char *tab = strchr(p, '\t');
      if (!tab) break;
      *tab = '\0';
      p = tab + 1;
    }
    if (nf < ncols) {
      st = msci_fail(MSC_E_BAD_FORMAT, "sen12ms: %s line %lld has %d columns, %d expected",
                     path, (long long)line_no, nf, ncols);
      goto done;
    }
    if (n == cap) {
      int64_t nc = cap ? cap * 2 : 1024;
      table_row *p = realloc(t, (size_t)nc * sizeof *p);
      if (!p) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "sen12ms: out of memory");
        goto done;
      }
      t = p;
      cap = nc;
    }
    table_row *row = &t[n];
    if (!(row->id = strdup(fields[col_id]))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "sen12ms: out of memory");
      goto done;
    }
    n++;
    for (int g = 0; g < 17; ++g) {
      char *end;
      double v = strtod(fields[col_f[g]], &end);
      if (end == fields[col_f[g]] || *end || !(v >= 0.0 && v <= 1.0)) {
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "sen12ms: %s line %lld: igbp_%d is '%s' (a fraction "
                       "in [0, 1] expected)",
                       path, (long long)line_no, g + 1, fields[col_f[g]]);
        goto done;
      }
      row->frac[g] = v;
    }
  }
  if (r < 0) st = rd.st;
done:
  msci_lines_close(&rd);
  if (st != MSC_OK) {
    free_table(t, n);
    return st;
  }
  if (n > 1) qsort(t, (size_t)n, sizeof *t, cmp_row);
  *out = t;
  *out_n = n;
  return MSC_OK;
}

/* IGBP fractions of an lc raster (band 1). */
static msc_status fractions_from_lc(const char *id, const char *path, double *frac) {
  msci_raster r;
  msc_status st = msci_raster_read(path, &r);
  if (st != MSC_OK) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    return msci_fail(st, "sen12ms: patch %s: %s", id, msg);
  }
  int64_t count[18] = {0}, valid = 0;
  const int64_t px = r.width * r.height;
  for (int64_t p = 0; p < px; ++p) {
    float v = r.data[p];
    if (v >= 1.0f && v <= 17.0f && v == floorf(v)) {
      count[(int)v]++;
      valid++;
    }
  }
  msci_raster_free(&r);
  if (valid == 0)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "sen12ms: patch %s: %s has no IGBP value in 1..17 in "
                     "its first band",
                     id, path);
  for (int g = 1; g <= 17; ++g) frac[g - 1] = (double)count[g] / (double)valid;
  return MSC_OK;
}

msc_status msci_open_sen12ms(msc_dataset *ds, const char *root, const msc_options *opts) {
  char *s1b = NULL, *s2b = NULL, *on_missing = NULL, *meta = NULL;
  char **rois = NULL, **scenes = NULL, **files = NULL;
  int64_t n_rois = 0, n_scenes = 0, n_files = 0, n_table = 0, masks = 0;
  table_row *table = NULL;
  msci_name_set split[3];
  memset(split, 0, sizeof split);
  char *path = NULL, *p1 = NULL, *plc = NULL;
  size_t cap = 0, cap1 = 0, caplc = 0;
  int have_splits = 0;
  int s1_idx[2], s2_idx[13];
  msc_status st;
  if ((st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s1_bands", &s1b)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s2_bands", &s2b)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.metadata", &meta)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.masks", &masks)) != MSC_OK)
    goto done;
  const int skip = !strcmp(on_missing, "skip");
  const int n1 = msci_parse_bands("data.s1_bands", s1b, k_s1, 2, NULL, 2, s1_idx);
  const int n2 =
      n1 < 0 ? -1 : msci_parse_bands("data.s2_bands", s2b, k_s2, 13, k_s2_default, 10, s2_idx);
  if (n1 < 0 || n2 < 0) {
    st = MSC_E_INVALID_ARGUMENT;
    goto done;
  }
  if (n1 == 0 && n2 == 0) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT, "sen12ms: no band selected");
    goto done;
  }
  const int k1 = n1 > 0 ? 0 : -1, k2 = n2 > 0 ? (n1 > 0 ? 1 : 0) : -1;
  if ((k1 >= 0 &&
       (st = msci_dataset_set_bands(ds, k1, "s1", 256, k_s1, s1_idx, n1)) != MSC_OK) ||
      (k2 >= 0 &&
       (st = msci_dataset_set_bands(ds, k2, "s2", 256, k_s2, s2_idx, n2)) != MSC_OK) ||
      (st = msci_dataset_set_classes(ds, k_classes, 10)) != MSC_OK)
    goto done;
  if (masks) {
    /* lc band 1, IGBP 1..17 → the 10 classes; 0 and any other value are ignored. */
    int32_t lut[17];
    for (int g = 1; g <= 17; ++g) lut[g - 1] = k_igbp_to10[g];
    if ((st = msci_dataset_set_mask(ds, k_classes, 10, -1, 256, 1, lut, 17)) != MSC_OK)
      goto done;
  }
  if (k1 >= 0) {
    ds->mod[k1].nan_to_zero = 1;
    ds->mod[k1].clip = 1;
    ds->mod[k1].clip_lo = -25.0f;
    ds->mod[k1].clip_hi = 0.0f;
  }
  if (meta[0] && (st = load_table(meta, &table, &n_table)) != MSC_OK) goto done;
  static const char *const split_files[3] = {"train_list.txt", "val_list.txt", "test_list.txt"};
  for (int i = 0; i < 3; ++i) {
    if (!msci_path_printf(&path, &cap, "%s/%s", root, split_files[i])) {
      st = MSC_E_OUT_OF_MEMORY;
      goto done;
    }
    if (!msci_is_file(path)) continue;
    msci_name_set raw = {0};
    if ((st = msci_name_set_load(&raw, path, 0)) != MSC_OK) {
      msci_name_set_free(&raw);
      goto done;
    }
    for (int64_t j = 0; j < raw.n && st == MSC_OK; ++j) {
      char id[512];
      if (sample_id(raw.names[j], id, sizeof id)) st = msci_name_set_add(&split[i], id);
    }
    msci_name_set_free(&raw);
    if (st != MSC_OK) goto done;
    msci_name_set_seal(&split[i]);
    have_splits = 1;
  }

  if ((st = msci_list_dir(root, 'd', &rois, &n_rois)) != MSC_OK) goto done;
  int64_t n_roi_dirs = 0;
  for (int64_t a = 0; a < n_rois && st == MSC_OK; ++a) {
    if (strncmp(rois[a], "ROIs", 4) != 0) continue;
    n_roi_dirs++;
    if (!msci_path_printf(&path, &cap, "%s/%s", root, rois[a]) ||
        (st = msci_list_dir(path, 'd', &scenes, &n_scenes)) != MSC_OK) {
      if (st == MSC_OK) st = MSC_E_OUT_OF_MEMORY;
      break;
    }
    for (int64_t b = 0; b < n_scenes && st == MSC_OK; ++b) {
      if (strncmp(scenes[b], "s2_", 3) != 0) continue;
      const char *scene = scenes[b] + 3;
      if (!msci_path_printf(&path, &cap, "%s/%s/%s", root, rois[a], scenes[b]) ||
          (st = msci_list_dir(path, 'f', &files, &n_files)) != MSC_OK) {
        if (st == MSC_OK) st = MSC_E_OUT_OF_MEMORY;
        break;
      }
      for (int64_t f = 0; f < n_files && st == MSC_OK; ++f) {
        const char *name = files[f];
        const size_t len = strlen(name);
        const char *m = strstr(name, "_s2_");
        char id[512];
        if (len < 5 || strcmp(name + len - 4, ".tif") != 0 || !m ||
            !sample_id(name, id, sizeof id))
          continue;
        const int sp = msci_split_lists_find(split, have_splits, id);
        if (sp < 0) continue;
        const int head = (int)(m - name);
        if (!msci_path_printf(&path, &cap, "%s/%s/%s/%s", root, rois[a], scenes[b], name) ||
            !msci_path_printf(&p1, &cap1, "%s/%s/s1_%s/%.*s_s1_%s", root, rois[a], scene, head,
                              name, m + 4) ||
            !msci_path_printf(&plc, &caplc, "%s/%s/lc_%s/%.*s_lc_%s", root, rois[a], scene,
                              head, name, m + 4)) {
          st = MSC_E_OUT_OF_MEMORY;
          break;
        }
        const table_row *row = NULL;
        if (table) {
          table_row key = {.id = id};
          row = bsearch(&key, table, (size_t)n_table, sizeof *table, cmp_row);
        }
        const char *missing = (k1 >= 0 && !msci_is_file(p1))            ? p1
                              : ((!row || masks) && !msci_is_file(plc)) ? plc
                                                                        : NULL;
        if (missing) {
          if (!skip) {
            st = msci_fail(MSC_E_NOT_FOUND,
                           "sen12ms: patch %s: missing file %s "
                           "(data.on_missing = \"skip\" leaves such patches out)%s",
                           id, missing,
                           missing == plc && table ? " and no row in data.metadata" : "");
            break;
          }
          msci_dataset_note_skipped(ds, id);
          continue;
        }
        double frac[17];
        if (row)
          memcpy(frac, row->frac, sizeof frac);
        else if ((st = fractions_from_lc(id, plc, frac)) != MSC_OK)
          break;
        msci_sample *s = msci_dataset_add(ds, id);
        if (!s || !(s->labels = calloc(10, 1))) {
          st = msci_fail(MSC_E_OUT_OF_MEMORY, "sen12ms: out of memory");
          break;
        }
        s->split = sp;
        msci_sen12ms_labels(frac, s->labels);
        for (int i = 0; i < n1 && st == MSC_OK; ++i)
          st = msci_sample_set_band(s, ds, k1, i, p1, s1_idx[i]);
        for (int i = 0; i < n2 && st == MSC_OK; ++i)
          st = msci_sample_set_band(s, ds, k2, i, path, s2_idx[i]);
        if (masks && st == MSC_OK) st = msci_sample_set_mask(s, plc, 0);
      }
      msci_names_free(files, n_files);
      files = NULL;
      n_files = 0;
    }
    msci_names_free(scenes, n_scenes);
    scenes = NULL;
    n_scenes = 0;
  }
  if (st == MSC_OK && n_roi_dirs == 0)
    st = msci_fail(MSC_E_IO,
                   "sen12ms: %s has no ROIs* folder (SEN12MS layout: "
                   "ROIsXXXX_<season>/s2_<scene>/...)",
                   root);
done:
  msci_names_free(files, n_files);
  msci_names_free(scenes, n_scenes);
  msci_names_free(rois, n_rois);
  free_table(table, n_table);
  for (int i = 0; i < 3; ++i) msci_name_set_free(&split[i]);
  free(path);
  free(p1);
  free(plc);
  free(s1b);
  free(s2b);
  free(on_missing);
  free(meta);
  return st;
}
