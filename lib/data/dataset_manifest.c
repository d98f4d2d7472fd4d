/*
 * dataset_manifest.c — any co-registered data, described by a TSV manifest with a header
 * (docs/data.md): one column per modality holding a file path (a multi-band GeoTIFF, or a
 * ','-separated list of single-band files, one per band),
 * "labels" (class names joined with ';', may be empty), "split" (train, validation or
 * val, test; optional) and "id" (optional; otherwise the first file's name without its
 * extension). A "mask" column (optional) names a single-band class raster per row: value i
 * is class i of data.mask_classes, any other value the ignore index -1 (docs/data.md
 * "Masks"); the mask has the size of the largest modality. Every other column is a
 * modality, named by its header ("s1", "s2", "optical", ...), in column order.
 *
 * The manifest is data.metadata, or <root>/manifest.tsv (or .tsv.zst); relative paths
 * are relative to the manifest's directory, and every path must lie inside the dataset
 * root unless data.allow_outside_root (checked before the file is looked at). A repeated
 * column, more than 64 files in a cell or more than 256 labels in a row are refused. The
 * first row fixes each modality's band count and patch size (the largest width of its
 * files): smaller bands are resampled, and a later file with fewer bands is an error when
 * it is read. Classes are every name
 * found in the labels column of the whole table (all splits), sorted byte-wise, so their
 * indices do not depend on the row order or the split.
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

/* Limits of the table: columns, files in a modality cell (MSCI_MAX_BANDS, one per band),
 * labels in a labels cell, class names in data.mask_classes. More is refused with a
 * message naming the limit, never cut silently (docs/data.md, "Limits"). */
#define MAX_COLS   64
#define MAX_LABELS 256

typedef struct row {
  char *text; /* the line, fields separated by '\0' */
  const char *field[MAX_COLS];
  int64_t line_no;
} row;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Splits list (modifiable) at sep into parts; returns the count, or -1 when there are
 * more than max parts (parts then holds the first max). */
static int split_list(char *list, char sep, char **parts, int max) {
  int n = 0;
  if (!*list) return 0;
  for (char *p = list;;) {
    if (n == max) return -1;
    parts[n++] = p;
    char *e = strchr(p, sep);
    if (!e) break;
    *e = '\0';
    p = e + 1;
  }
  return n;
}

/* path of a table cell: absolute, or relative to the manifest's folder; checked against
 * the dataset root before anything opens it (msci_dataset_check_path). */
static msc_status cell_path(const msc_dataset *ds, char **buf, size_t *cap, const char *base,
                            const char *cell, int64_t line_no, const char *column) {
  if (!(cell[0] == '/' ? msci_path_printf(buf, cap, "%s", cell)
                       : msci_path_printf(buf, cap, "%s/%s", base, cell)))
    return MSC_E_OUT_OF_MEMORY;
  msc_status st = msci_dataset_check_path(ds, *buf);
  if (st == MSC_E_BAD_FORMAT) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    st = msci_fail(st, "manifest: line %lld, column %s: %s", (long long)line_no, column, msg);
  }
  return st;
}

msc_status msci_open_manifest(msc_dataset *ds, const char *root, const msc_options *opts) {
  char *meta = NULL, *on_missing = NULL, *path = NULL, *base = NULL;
  size_t cap = 0;
  row *rows = NULL;
  int64_t n_rows = 0, cap_rows = 0;
  char **classes = NULL;
  int64_t n_classes = 0;
  msci_lines rd;
  int rd_open = 0;
  msc_status st;
  if ((st = msci_options_get_string_alloc(opts, "data.metadata", &meta)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK)
    goto done;
  const int skip = !strcmp(on_missing, "skip");
  if (meta[0]) {
    path = meta;
    meta = NULL;
  } else {
    if (!msci_path_printf(&path, &cap, "%s/manifest.tsv", root)) {
      st = MSC_E_OUT_OF_MEMORY;
      goto done;
    }
    if (!msci_is_file(path)) {
      if (!msci_path_printf(&path, &cap, "%s/manifest.tsv.zst", root)) {
        st = MSC_E_OUT_OF_MEMORY;
        goto done;
      }
      if (!msci_is_file(path)) {
        st = msci_fail(MSC_E_IO,
                       "manifest: no %s/manifest.tsv or manifest.tsv.zst (or set "
                       "data.metadata)",
                       root);
        goto done;
      }
    }
  }
  /* Relative file paths are relative to the manifest's folder. */
  const char *slash = strrchr(path, '/');
  if (!(base = slash ? strndup(path, (size_t)(slash - path)) : strdup("."))) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
    goto done;
  }
  if ((st = msci_lines_open(&rd, path)) != MSC_OK) goto done;
  rd_open = 1;

  /* Header. */
  int r = msci_lines_next(&rd);
  if (r <= 0) {
    st = r < 0 ? rd.st : msci_fail(MSC_E_BAD_FORMAT, "manifest: %s is empty", path);
    goto done;
  }
  char *head[MAX_COLS];
  int ncols = split_list(rd.line, '\t', head, MAX_COLS);
  if (ncols < 0) {
    st = msci_fail(MSC_E_BAD_FORMAT, "manifest: %s: more than %d columns", path, MAX_COLS);
    goto done;
  }
  for (int c = 0; c < ncols; ++c)
    for (int d = 0; d < c; ++d)
      if (!strcmp(head[c], head[d])) {
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "manifest: %s: column '%s' appears twice (columns %d and %d)", path,
                       head[c], d + 1, c + 1);
        goto done;
      }
  int col_labels = -1, col_split = -1, col_id = -1, col_mask = -1, n_mod = 0;
  int mod_col[MSCI_MAX_MODALITIES];
  char mod_name[MSCI_MAX_MODALITIES][MSCI_NAME_LEN];
  for (int c = 0; c < ncols; ++c) {
    if (!strcmp(head[c], "labels"))
      col_labels = c;
    else if (!strcmp(head[c], "split"))
      col_split = c;
    else if (!strcmp(head[c], "id"))
      col_id = c;
    else if (!strcmp(head[c], "mask"))
      col_mask = c;
    else {
      if (n_mod == MSCI_MAX_MODALITIES || !head[c][0] || strlen(head[c]) >= MSCI_NAME_LEN) {
        st = msci_fail(MSC_E_BAD_FORMAT, "manifest: %s: column '%s': %s", path, head[c],
                       n_mod == MSCI_MAX_MODALITIES ? "too many modality columns"
                                                    : "a modality name must have 1 to 31 "
                                                      "characters");
        goto done;
      }
      mod_col[n_mod] = c;
      snprintf(mod_name[n_mod], MSCI_NAME_LEN, "%s", head[c]);
      n_mod++;
    }
  }
  if (n_mod == 0) {
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "manifest: %s has no modality column (columns other "
                   "than id, labels and split hold the files)",
                   path);
    goto done;
  }

  /* Rows, kept in memory: the classes come from all of them. */
  int64_t line_no = 1;
  while ((r = msci_lines_next(&rd)) > 0) {
    line_no++;
    if (!rd.line[0]) continue;
    if (n_rows == cap_rows) {
      int64_t nc = cap_rows ? cap_rows * 2 : 256;
      row *p = realloc(rows, (size_t)nc * sizeof *p);
      if (!p) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
        goto done;
      }
      rows = p;
      cap_rows = nc;
    }
    row *w = &rows[n_rows];
    memset(w, 0, sizeof *w);
    if (!(w->text = strdup(rd.line))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
      goto done;
    }
    n_rows++;
    w->line_no = line_no;
    char *f[MAX_COLS];
    int nf = split_list(w->text, '\t', f, MAX_COLS);
    if (nf != ncols) {
      st = msci_fail(MSC_E_BAD_FORMAT, "manifest: %s line %lld has %s columns, %d expected",
                     path, (long long)line_no,
                     nf < 0       ? "too many"
                     : nf < ncols ? "fewer"
                                  : "more",
                     ncols);
      goto done;
    }
    for (int c = 0; c < nf; ++c) w->field[c] = f[c];
    if (col_labels >= 0 && f[col_labels][0]) {
      char *tmp = strdup(f[col_labels]), *parts[MAX_LABELS];
      if (!tmp) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
        goto done;
      }
      int np = split_list(tmp, ';', parts, MAX_LABELS);
      if (np < 0)
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "manifest: %s line %lld: more than %d labels in column labels", path,
                       (long long)line_no, MAX_LABELS);
      for (int i = 0; i < np && st == MSC_OK; ++i) {
        int64_t k = 0;
        while (k < n_classes && strcmp(classes[k], parts[i]) != 0) k++;
        if (k < n_classes || !parts[i][0]) continue;
        char **p = realloc(classes, (size_t)(n_classes + 1) * sizeof *p);
        if (!p || !(p[n_classes] = strdup(parts[i]))) {
          if (p) classes = p;
          st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
          break;
        }
        classes = p;
        n_classes++;
      }
      free(tmp);
      if (st != MSC_OK) goto done;
    }
  }
  if (r < 0) {
    st = rd.st;
    goto done;
  }
  if (n_rows == 0) {
    st = msci_fail(MSC_E_BAD_FORMAT, "manifest: %s has no row", path);
    goto done;
  }
  if (n_classes > 1) qsort(classes, (size_t)n_classes, sizeof *classes, cmp_str);
  if (n_classes > 0 &&
      (st = msci_dataset_set_classes(ds, (const char *const *)classes, n_classes)) != MSC_OK)
    goto done;

  /* Modalities from the first row's files. */
  for (int k = 0; k < n_mod; ++k) {
    char *list = strdup(rows[0].field[mod_col[k]]), *parts[MSCI_MAX_BANDS];
    if (!list) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
      goto done;
    }
    int np = split_list(list, ',', parts, MSCI_MAX_BANDS);
    if (np < 0)
      st = msci_fail(MSC_E_BAD_FORMAT, "manifest: line %lld, column %s: more than %d files",
                     (long long)rows[0].line_no, mod_name[k], MSCI_MAX_BANDS);
    int64_t bands = 0, size = 0;
    for (int i = 0; i < np && st == MSC_OK; ++i) {
      if ((st = cell_path(ds, &path, &cap, base, parts[i], rows[0].line_no, mod_name[k])) !=
          MSC_OK)
        break;
      /* The layout only: a scene-sized first row is not decoded to learn its shape. */
      msci_raster_info ras;
      if ((st = msci_raster_info_read(path, &ras)) != MSC_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", msc_last_error());
        st = msci_fail(st,
                       "manifest: line %lld, column %s (it fixes the modality's bands "
                       "and size): %s",
                       (long long)rows[0].line_no, mod_name[k], msg);
        break;
      }
      if (np > 1 && ras.bands != 1) {
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "manifest: line %lld, column %s: %s has %lld bands "
                       "(a list of files must hold single-band files)",
                       (long long)rows[0].line_no, mod_name[k], path, (long long)ras.bands);
        msci_raster_info_free(&ras);
        break;
      }
      bands += ras.bands;
      if (ras.width > size) size = ras.width;
      if (ras.height > size) size = ras.height;
      msci_raster_info_free(&ras);
    }
    free(list);
    if (st != MSC_OK) goto done;
    if (np == 0 || bands > MSCI_MAX_BANDS) {
      st = msci_fail(MSC_E_BAD_FORMAT, "manifest: line %lld, column %s: %s",
                     (long long)rows[0].line_no, mod_name[k],
                     np == 0 ? "no file" : "more than 64 bands");
      goto done;
    }
    if ((st = msci_dataset_set_modality(ds, k, mod_name[k], size, NULL, bands)) != MSC_OK)
      goto done;
  }

  /* The mask: classes 0..K-1 named by data.mask_classes, the size of the largest
   * modality. */
  if (col_mask >= 0) {
    char *names_opt = NULL, *parts[MAX_LABELS];
    if ((st = msci_options_get_string_alloc(opts, "data.mask_classes", &names_opt)) != MSC_OK)
      goto done;
    int nk = names_opt[0] ? split_list(names_opt, ',', parts, MAX_LABELS) : 0;
    int64_t msize = 0;
    for (int k = 0; k < n_mod; ++k) msize = ds->mod[k].size > msize ? ds->mod[k].size : msize;
    if (nk < 0)
      st = msci_fail(MSC_E_INVALID_ARGUMENT, "data.mask_classes: more than %d classes",
                     MAX_LABELS);
    else if (nk == 0)
      st = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "manifest: the table has a mask column: name its classes with "
                     "data.mask_classes (\"background,water,...\": value i is class i)");
    else
      st = msci_dataset_set_mask(ds, (const char *const *)parts, nk, -1, msize, 0, NULL, nk);
    free(names_opt);
    if (st != MSC_OK) goto done;
  }

  /* Samples. */
  for (int64_t i = 0; i < n_rows && st == MSC_OK; ++i) {
    const row *w = &rows[i];
    int sp = MSCI_SPLIT_NONE;
    if (col_split >= 0) {
      const char *v = w->field[col_split];
      sp = !strcmp(v, "train")                               ? MSCI_SPLIT_TRAIN
           : (!strcmp(v, "validation") || !strcmp(v, "val")) ? MSCI_SPLIT_VALIDATION
           : !strcmp(v, "test")                              ? MSCI_SPLIT_TEST
                                                             : -1;
      if (sp < 0) {
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "manifest: line %lld: unknown split '%s' (train, "
                       "validation, test)",
                       (long long)w->line_no, v);
        break;
      }
    }
    /* The id: the column, else the first file's name without extension. */
    char id[512];
    if (col_id >= 0 && w->field[col_id][0]) {
      snprintf(id, sizeof id, "%s", w->field[col_id]);
    } else {
      const char *first = w->field[mod_col[0]];
      size_t len = strcspn(first, ",");
      const char *s = first;
      for (size_t j = 0; j < len; ++j)
        if (first[j] == '/') s = first + j + 1;
      len -= (size_t)(s - first);
      const char *dot = memchr(s, '.', len);
      if (dot) len = (size_t)(dot - s);
      snprintf(id, sizeof id, "%.*s", (int)len, s);
    }
    /* Files, each checked before the sample is added. */
    const char *missing = NULL;
    char *lists[MSCI_MAX_MODALITIES] = {0};
    char *parts[MSCI_MAX_MODALITIES][MSCI_MAX_BANDS];
    int np[MSCI_MAX_MODALITIES] = {0};
    for (int k = 0; k < n_mod && st == MSC_OK && !missing; ++k) {
      if (!(lists[k] = strdup(w->field[mod_col[k]]))) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
        break;
      }
      np[k] = split_list(lists[k], ',', parts[k], MSCI_MAX_BANDS);
      if (np[k] < 0) {
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "manifest: line %lld (sample %s): column %s has more than %d files",
                       (long long)w->line_no, id, mod_name[k], MSCI_MAX_BANDS);
        break;
      }
      for (int j = 0; j < np[k] && !missing; ++j) {
        if ((st = cell_path(ds, &path, &cap, base, parts[k][j], w->line_no, mod_name[k])) !=
            MSC_OK)
          break;
        if (!msci_is_file(path)) missing = path;
      }
      if (st == MSC_OK && !missing && (np[k] == 0 || (np[k] > 1 && np[k] != ds->mod[k].bands)))
        st = msci_fail(MSC_E_BAD_FORMAT,
                       "manifest: line %lld (sample %s): column %s has %d "
                       "files, the first row %lld bands",
                       (long long)w->line_no, id, mod_name[k], np[k],
                       (long long)ds->mod[k].bands);
    }
    if (st == MSC_OK && !missing && col_mask >= 0) {
      const char *m = w->field[col_mask];
      if (!m[0])
        st = msci_fail(MSC_E_BAD_FORMAT, "manifest: line %lld (sample %s): empty mask cell",
                       (long long)w->line_no, id);
      else if ((st = cell_path(ds, &path, &cap, base, m, w->line_no, "mask")) == MSC_OK &&
               !msci_is_file(path))
        missing = path;
    }
    if (st == MSC_OK && missing) {
      if (!skip)
        st = msci_fail(MSC_E_NOT_FOUND,
                       "manifest: line %lld (sample %s): missing file %s "
                       "(data.on_missing = \"skip\" leaves such samples out)",
                       (long long)w->line_no, id, missing);
      else
        msci_dataset_note_skipped(ds, id);
    }
    if (st == MSC_OK && !missing) {
      msci_sample *s = msci_dataset_add(ds, id);
      if (!s) st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
      if (s) s->split = sp;
      /* Band b: band b of the single file, or the b-th single-band file. */
      for (int k = 0; k < n_mod && st == MSC_OK; ++k) {
        const int64_t nb = ds->mod[k].bands;
        for (int64_t b = 0; b < nb && st == MSC_OK; ++b) {
          const int j = np[k] == 1 ? 0 : (int)b;
          const int32_t in_file = np[k] == 1 ? (int32_t)b : 0;
          if (!msci_path_printf(&path, &cap, parts[k][j][0] == '/' ? "%s%s" : "%s/%s",
                                parts[k][j][0] == '/' ? "" : base, parts[k][j])) {
            st = MSC_E_OUT_OF_MEMORY;
            break;
          }
          st = msci_sample_set_band(s, ds, k, (int32_t)b, path, in_file);
        }
      }
      if (st == MSC_OK && col_mask >= 0) {
        const char *m = w->field[col_mask];
        if (!msci_path_printf(&path, &cap, m[0] == '/' ? "%s%s" : "%s/%s",
                              m[0] == '/' ? "" : base, m))
          st = MSC_E_OUT_OF_MEMORY;
        else
          st = msci_sample_set_mask(s, path, 0);
      }
      if (st == MSC_OK && n_classes > 0) {
        const char *names[MAX_LABELS];
        char *tmp = col_labels >= 0 ? strdup(w->field[col_labels]) : strdup("");
        if (!tmp) {
          st = msci_fail(MSC_E_OUT_OF_MEMORY, "manifest: out of memory");
        } else {
          char *lp[MAX_LABELS];
          int nl = split_list(tmp, ';', lp, MAX_LABELS), m = 0; /* counted when read */
          for (int q = 0; q < nl; ++q)
            if (lp[q][0]) names[m++] = lp[q];
          st = msci_sample_set_label_names(s, ds, names, m);
          free(tmp);
        }
      }
    }
    for (int k = 0; k < n_mod; ++k) free(lists[k]);
  }
done:
  if (rd_open) msci_lines_close(&rd);
  for (int64_t i = 0; i < n_rows; ++i) free(rows[i].text);
  free(rows);
  msci_names_free(classes, n_classes);
  free(path);
  free(base);
  free(meta);
  free(on_missing);
  return st;
}
