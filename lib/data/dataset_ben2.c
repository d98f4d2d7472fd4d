/*
 * dataset_ben2.c — BigEarthNet v2.0 (reBEN): metadata.tsv (or metadata.tsv.zst, or the
 * table named by data.metadata) with one row per patch, S1 and S2 band files in the
 * layout of docs/data.md, 19 classes. Rows of other splits are passed over before any file is
 * looked at; rows with snow, cloud or shadow are left out unless
 * data.include_snow_cloud = 1; every file of a kept row must exist (data.on_missing).
 * With data.masks = 1 each patch's mask is its CORINE reference map,
 * Reference_Maps/<S2 product>/<patch>/<patch>_reference_map.tif, mapped to the 19 classes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "common/internal.h"
#include "data/lines.h"
#include "options/options.h"

const char *const msci_ben_classes[19] = {
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
};

const msci_band_info msci_ben_s1_bands[2] = {{"VV", 1, -12.620f, 5.116f, 120},
                                             {"VH", 1, -19.290f, 5.464f, 120}};
const msci_band_info msci_ben_s2_bands[12] = {
    {"B01", 0, 0, 0, 20},
    {"B02", 1, 429.94f, 572.42f, 120},
    {"B03", 1, 614.22f, 582.88f, 120},
    {"B04", 1, 590.24f, 675.89f, 120},
    {"B05", 1, 950.68f, 729.90f, 60},
    {"B06", 1, 1792.46f, 1096.01f, 60},
    {"B07", 1, 2075.47f, 1273.45f, 60},
    {"B08", 1, 2218.95f, 1365.46f, 120},
    {"B8A", 1, 2266.46f, 1356.14f, 60},
    {"B09", 0, 0, 0, 20},
    {"B11", 1, 1594.43f, 1079.19f, 60},
    {"B12", 1, 1009.33f, 818.87f, 60},
};

/* ---- rows ---------------------------------------------------------------------------- */

enum { COL_PATCH, COL_S1, COL_SPLIT, COL_SNOW, COL_CLOUD, COL_LABELS, N_COLS };
static const char *const k_cols[N_COLS] = {
    "patch_id", "s1_name", "split", "contains_seasonal_snow", "contains_cloud_or_shadow",
    "labels"};

/* A contains_* value: 1 true, 0 false, -1 neither (refused: a damaged table must not
 * read as "false" and let flagged patches in). */
static int parse_flag(const char *s) {
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "1"))
    return 1;
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE") || !strcmp(s, "0"))
    return 0;
  return -1;
}

static int strip_parts(const char *name, int drop, char *out, size_t cap) {
  size_t len = strlen(name);
  for (int d = 0; d < drop; ++d) {
    while (len > 0 && name[len - 1] != '_') len--;
    if (len == 0) return 0;
    len--; /* the '_' */
  }
  if (len == 0 || len >= cap) return 0;
  memcpy(out, name, len);
  out[len] = '\0';
  return 1;
}

/* The CORINE codes of the reference maps: 111 .. 523. */
#define MASK_LO    111
#define MASK_CODES (523 - 111 + 1)

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The official metadata.parquet of the whole dataset converted to TSV (480,038 rows; the
 * README's pandas command), installed with the library: $MSC_DATA_DIR/BEN2_TABLE when
 * MSC_DATA_DIR is set (only there), else <datadir>/mosaic/BEN2_TABLE of the install
 * prefix. A malloc'd path, or NULL when it is not there (or out of memory: then the
 * caller's message about converting the parquet file still holds). */
#define BEN2_TABLE "bigearthnet-v2-metadata.tsv.zst"
#ifndef MSC_DATADIR
#define MSC_DATADIR "/usr/local/share"
#endif
static char *installed_table(void) {
  const char *env = secure_getenv("MSC_DATA_DIR");
  const char *dir = env ? env : MSC_DATADIR "/mosaic";
  size_t n = strlen(dir) + sizeof BEN2_TABLE + 2;
  char *p = malloc(n);
  if (!p) return NULL;
  snprintf(p, n, "%s/%s", dir, BEN2_TABLE);
  if (exists(p)) return p;
  free(p);
  return NULL;
}

msc_status msci_open_bigearthnet_v2(msc_dataset *ds, const char *root,
                                    const msc_options *opts) {
  char *meta = NULL, *split = NULL, *on_missing = NULL, *s1b = NULL, *s2b = NULL;
  char *path = NULL;
  int64_t include_sc = 0, ref_maps = 0;
  msci_lines rd;
  int rd_open = 0;
  msci_name_set ids = {0};
  msc_status st;
  int s1_idx[2], s2_idx[12];
  if ((st = msci_options_get_string_alloc(opts, "data.metadata", &meta)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.split", &split)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s1_bands", &s1b)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s2_bands", &s2b)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.include_snow_cloud", &include_sc)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.masks", &ref_maps)) != MSC_OK)
    goto done;
  const int n1 = msci_parse_bands("data.s1_bands", s1b, msci_ben_s1_bands, 2, NULL, 2, s1_idx);
  const int n2 =
      n1 < 0 ? -1
             : msci_parse_bands("data.s2_bands", s2b, msci_ben_s2_bands, 12, NULL, 12, s2_idx);
  if (n1 < 0 || n2 < 0) {
    st = MSC_E_INVALID_ARGUMENT;
    goto done;
  }
  if (n1 == 0 && n2 == 0) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "bigearthnet-v2: data.s1_bands and data.s2_bands are both \"none\"");
    goto done;
  }
  const int32_t k1 = n1 > 0 ? 0 : -1, k2 = n2 > 0 ? (n1 > 0 ? 1 : 0) : -1;
  if ((k1 >= 0 && (st = msci_dataset_set_bands(ds, k1, "s1", 120, msci_ben_s1_bands, s1_idx,
                                               n1)) != MSC_OK) ||
      (k2 >= 0 && (st = msci_dataset_set_bands(ds, k2, "s2", 120, msci_ben_s2_bands, s2_idx,
                                               n2)) != MSC_OK) ||
      (st = msci_dataset_set_classes(ds, msci_ben_classes, 19)) != MSC_OK)
    goto done;
  if (ref_maps) {
    /* CORINE codes 111..523 → the 19 classes (the mapping of the patch labels); the
     * dropped codes and every other value are ignored (-1). */
    int32_t lut[MASK_CODES];
    for (int v = 0; v < MASK_CODES; ++v) {
      int c = msci_ben_corine_class(MASK_LO + v);
      lut[v] = c >= 0 ? c : -1;
    }
    if ((st = msci_dataset_set_mask(ds, msci_ben_classes, 19, -1, 120, MASK_LO, lut,
                                    MASK_CODES)) != MSC_OK)
      goto done;
  }
  const int skip = strcmp(on_missing, "skip") == 0;
  const int want = !strcmp(split, "train")        ? MSCI_SPLIT_TRAIN
                   : !strcmp(split, "validation") ? MSCI_SPLIT_VALIDATION
                   : !strcmp(split, "test")       ? MSCI_SPLIT_TEST
                                                  : -1;

  /* The metadata table. */
  size_t cap = strlen(root) + 64;
  char *mpath = malloc(cap);
  if (!mpath) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "bigearthnet-v2");
    goto done;
  }
  if (meta[0]) {
    free(mpath);
    mpath = meta;
    meta = NULL;
  } else {
    snprintf(mpath, cap, "%s/metadata.tsv", root);
    if (!exists(mpath)) {
      snprintf(mpath, cap, "%s/metadata.tsv.zst", root);
      snprintf(mpath, cap, "%s/metadata.parquet", root);
      const int parquet = exists(mpath);
      char *table = parquet ? installed_table() : NULL;
      if (table) {
        /* The official release ships metadata.parquet, which no Debian package reads;
         * the same table converted to TSV is installed with the library. */
        free(mpath);
        mpath = table;
      } else {
        /* Say how to convert it (README.md, "Training on the real BigEarthNet v2") rather
         * than only what is missing, for callers of the library as for the tool
         * (tools/data.c). */
        st = msci_fail(MSC_E_IO,
                       parquet
                           ? "bigearthnet-v2: %s holds metadata.parquet but no metadata.tsv, "
                             "and the converted table " BEN2_TABLE " is not installed: "
                             "convert it once with pandas (README.md, \"Training on the "
                             "real BigEarthNet v2\"), or set data.metadata"
                           : "bigearthnet-v2: no %s/metadata.tsv or metadata.tsv.zst "
                             "(or set data.metadata)",
                       root);
        free(mpath);
        goto done;
      }
    }
  }
  st = msci_lines_open(&rd, mpath);
  path = mpath; /* freed at the end; rd.path points into it */
  if (st != MSC_OK) goto done;
  rd_open = 1;

  int r = msci_lines_next(&rd);
  if (r <= 0) {
    st = r < 0 ? rd.st : msci_fail(MSC_E_BAD_FORMAT, "bigearthnet-v2: %s is empty", path);
    goto done;
  }
  int col[N_COLS];
  int ncols = 0;
  for (int c = 0; c < N_COLS; ++c) col[c] = -1;
  {
    char *save = NULL;
    for (char *tok = strtok_r(rd.line, "\t", &save); tok; tok = strtok_r(NULL, "\t", &save)) {
      for (int c = 0; c < N_COLS; ++c)
        if (!strcmp(tok, k_cols[c])) col[c] = ncols;
      ncols++;
    }
  }
  for (int c = 0; c < N_COLS; ++c) {
    if (col[c] >= 0 || c == COL_SNOW || c == COL_CLOUD || (c == COL_S1 && k1 < 0)) continue;
    st = msci_fail(MSC_E_BAD_FORMAT, "bigearthnet-v2: %s has no column '%s'", path, k_cols[c]);
    goto done;
  }

  const size_t root_len = strlen(root);
  char *fpath = NULL;
  size_t fcap = 0;
  const char *fields[64];
  const char *labels[64];
  int64_t line_no = 1;
  while ((r = msci_lines_next(&rd)) > 0) {
    line_no++;
    if (rd.line[0] == '\0') continue;
    int nf = 0;
    for (char *p = rd.line;;) {
      if (nf < 64) fields[nf++] = p;
      char *t = strchr(p, '\t');
      if (!t) break;
      *t = '\0';
      p = t + 1;
    }
    int need = 0;
    for (int c = 0; c < N_COLS; ++c) need = col[c] + 1 > need ? col[c] + 1 : need;
    if (nf < need) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "bigearthnet-v2: %s line %lld has %d columns, %d "
                     "expected",
                     path, (long long)line_no, nf, ncols);
      break;
    }
    const char *pid = fields[col[COL_PATCH]];
    const char *sp = fields[col[COL_SPLIT]];
    int split_v = !strcmp(sp, "train")        ? MSCI_SPLIT_TRAIN
                  : !strcmp(sp, "validation") ? MSCI_SPLIT_VALIDATION
                  : !strcmp(sp, "test")       ? MSCI_SPLIT_TEST
                                              : -1;
    if (split_v < 0) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "bigearthnet-v2: %s line %lld (patch %s): unknown "
                     "split '%s'",
                     path, (long long)line_no, pid, sp);
      break;
    }
    int flagged = 0;
    for (int c = COL_SNOW; c <= COL_CLOUD && st == MSC_OK; ++c) {
      if (col[c] < 0) continue;
      const int f = parse_flag(fields[col[c]]);
      if (f < 0)
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "bigearthnet-v2: %s line %lld (patch %s): %s is '%s', not true or false",
                       path, (long long)line_no, pid, k_cols[c], fields[col[c]]);
      flagged |= f > 0;
    }
    if (st != MSC_OK) break;
    /* Every row's id, whatever its split: a patch listed twice (in one split or two) is
     * a damaged table, not two samples. */
    if ((st = msci_name_set_add(&ids, pid)) != MSC_OK) break;
    if (want >= 0 && split_v != want) continue;
    if (!include_sc && flagged) continue;
    const char *s1n = k1 >= 0 ? fields[col[COL_S1]] : "";
    char s2prod[256], s1prod[256];
    /* A name with '/' could lead out of the root ("../../x"): names are file names. */
    if (!strip_parts(pid, 2, s2prod, sizeof s2prod) || strchr(pid, '/') ||
        (k1 >= 0 && (!strip_parts(s1n, 3, s1prod, sizeof s1prod) || strchr(s1n, '/')))) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "bigearthnet-v2: %s line %lld: patch '%s' / S1 '%s' "
                     "is not a BigEarthNet name",
                     path, (long long)line_no, pid, s1n);
      break;
    }
    size_t need_cap = root_len + 3 * (strlen(pid) + strlen(s1n)) + 64;
    if (need_cap > fcap) {
      char *p = realloc(fpath, need_cap);
      if (!p) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "bigearthnet-v2");
        break;
      }
      fpath = p;
      fcap = need_cap;
    }
    /* Every file must exist before the sample is added. */
    const char *missing = NULL;
    for (int b = 0; b < n1 && !missing; ++b) {
      snprintf(fpath, fcap, "%s/BigEarthNet-S1/%s/%s/%s_%s.tif", root, s1prod, s1n, s1n,
               msci_ben_s1_bands[s1_idx[b]].name);
      if (!exists(fpath)) missing = fpath;
    }
    for (int b = 0; b < n2 && !missing; ++b) {
      snprintf(fpath, fcap, "%s/BigEarthNet-S2/%s/%s/%s_%s.tif", root, s2prod, pid, pid,
               msci_ben_s2_bands[s2_idx[b]].name);
      if (!exists(fpath)) missing = fpath;
    }
    if (ref_maps && !missing) {
      snprintf(fpath, fcap, "%s/Reference_Maps/%s/%s/%s_reference_map.tif", root, s2prod, pid,
               pid);
      if (!exists(fpath)) missing = fpath;
    }
    if (missing) {
      if (!skip) {
        st = msci_fail(MSC_E_NOT_FOUND,
                       "bigearthnet-v2: patch %s: missing file %s "
                       "(data.on_missing = \"skip\" leaves such patches out)",
                       pid, missing);
        break;
      }
      msci_dataset_note_skipped(ds, pid);
      continue;
    }
    msci_sample *s = msci_dataset_add(ds, pid);
    if (!s) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "bigearthnet-v2");
      break;
    }
    s->split = split_v;
    for (int b = 0; b < n1 && st == MSC_OK; ++b) {
      snprintf(fpath, fcap, "%s/BigEarthNet-S1/%s/%s/%s_%s.tif", root, s1prod, s1n, s1n,
               msci_ben_s1_bands[s1_idx[b]].name);
      st = msci_sample_set_band(s, ds, k1, b, fpath, 0);
    }
    for (int b = 0; b < n2 && st == MSC_OK; ++b) {
      snprintf(fpath, fcap, "%s/BigEarthNet-S2/%s/%s/%s_%s.tif", root, s2prod, pid, pid,
               msci_ben_s2_bands[s2_idx[b]].name);
      st = msci_sample_set_band(s, ds, k2, b, fpath, 0);
    }
    if (ref_maps && st == MSC_OK) {
      snprintf(fpath, fcap, "%s/Reference_Maps/%s/%s/%s_reference_map.tif", root, s2prod, pid,
               pid);
      st = msci_sample_set_mask(s, fpath, 0);
    }
    if (st != MSC_OK) break;
    char *lab = (char *)fields[col[COL_LABELS]];
    int nl = 0;
    if (*lab) {
      for (char *p = lab;;) {
        if (nl == 64) {
          st = msci_fail(MSC_E_BAD_FORMAT, "bigearthnet-v2: patch %s has too many labels", pid);
          break;
        }
        labels[nl++] = p;
        char *t = strchr(p, ';');
        if (!t) break;
        *t = '\0';
        p = t + 1;
      }
    }
    if (st == MSC_OK) st = msci_sample_set_label_names(s, ds, labels, nl);
    if (st != MSC_OK) break;
  }
  if (r < 0 && st == MSC_OK) st = rd.st; /* the reader set the message */
  if (st == MSC_OK) {
    msci_name_set_seal(&ids);
    const char *dup = msci_name_set_duplicate(&ids);
    if (dup)
      st = msci_fail(MSC_E_BAD_FORMAT, "bigearthnet-v2: %s lists patch %s on more than one row",
                     path, dup);
  }
  free(fpath);
done:
  msci_name_set_free(&ids);
  if (rd_open) msci_lines_close(&rd);
  free(path);
  free(meta);
  free(split);
  free(on_missing);
  free(s1b);
  free(s2b);
  return st;
}
