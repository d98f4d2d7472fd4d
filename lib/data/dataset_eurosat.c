/*
 * dataset_eurosat.c — EuroSAT (multispectral): <root>/<Class>/<Class>_<n>.tif, 64×64, 13
 * bands uint16 in one file in the order B01..B12 then B8A last; the class is the folder
 * (single label, one of the 10 EuroSAT classes, whose order fixes the class indices).
 * Bands are presented in the canonical order B01..B08, B8A, B09..B12 unless
 * data.s2_bands says otherwise; the band index inside the file is mapped by name, so B8A
 * is read from the 13th band. Splits: optional eurosat-train.txt, eurosat-val.txt,
 * eurosat-test.txt in the root (file names, any extension: the lists of torchgeo);
 * without them there is no split.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_files.h"
#include "common/internal.h"
#include "options/options.h"

static const char *const k_classes[10] = {
    "AnnualCrop", "Forest",        "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture",    "PermanentCrop", "Residential",          "River",   "SeaLake"};

static const msci_band_info k_s2[13] = {
    {"B01", 0, 0, 0, 0}, {"B02", 0, 0, 0, 0}, {"B03", 0, 0, 0, 0}, {"B04", 0, 0, 0, 0},
    {"B05", 0, 0, 0, 0}, {"B06", 0, 0, 0, 0}, {"B07", 0, 0, 0, 0}, {"B08", 0, 0, 0, 0},
    {"B8A", 0, 0, 0, 0}, {"B09", 0, 0, 0, 0}, {"B10", 0, 0, 0, 0}, {"B11", 0, 0, 0, 0},
    {"B12", 0, 0, 0, 0},
};
/* Band of the file holding k_s2[i]: B8A is stored last. */
static const int k_file_band[13] = {0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 9, 10, 11};

msc_status msci_open_eurosat(msc_dataset *ds, const char *root, const msc_options *opts) {
  char *s1b = NULL, *s2b = NULL;
  char **dirs = NULL, **files = NULL;
  int64_t n_dirs = 0, n_files = 0;
  char *path = NULL;
  size_t cap = 0;
  msci_name_set split[3];
  memset(split, 0, sizeof split);
  int have_splits = 0, idx[13];
  msc_status st;
  if ((st = msci_options_get_string_alloc(opts, "data.s1_bands", &s1b)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s2_bands", &s2b)) != MSC_OK)
    goto done;
  if (strcmp(s1b, "default") != 0 && strcmp(s1b, "none") != 0 && s1b[0]) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "eurosat: the dataset has no S1 bands "
                   "(data.s1_bands is \"%s\")",
                   s1b);
    goto done;
  }
  const int n = msci_parse_bands("data.s2_bands", s2b, k_s2, 13, NULL, 13, idx);
  if (n <= 0) {
    st = n < 0 ? MSC_E_INVALID_ARGUMENT
               : msci_fail(MSC_E_INVALID_ARGUMENT, "eurosat: data.s2_bands selects no band");
    goto done;
  }
  if ((st = msci_dataset_set_bands(ds, 0, "s2", 64, k_s2, idx, n)) != MSC_OK ||
      (st = msci_dataset_set_classes(ds, k_classes, 10)) != MSC_OK)
    goto done;
  ds->single_label = 1; /* one class directory per image */
  static const char *const split_files[3] = {"eurosat-train.txt", "eurosat-val.txt",
                                             "eurosat-test.txt"};
  if ((st = msci_split_lists_load(root, split_files, 1, split, &have_splits)) != MSC_OK)
    goto done;
  if ((st = msci_list_dir(root, 'd', &dirs, &n_dirs)) != MSC_OK) goto done;
  int64_t n_class_dirs = 0;
  for (int64_t d = 0; d < n_dirs && st == MSC_OK; ++d) {
    int c = 0;
    while (c < 10 && strcmp(k_classes[c], dirs[d]) != 0) c++;
    if (c == 10) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "eurosat: %s/%s is not a EuroSAT class folder "
                     "(classes: AnnualCrop, Forest, HerbaceousVegetation, Highway, "
                     "Industrial, Pasture, PermanentCrop, Residential, River, SeaLake)",
                     root, dirs[d]);
      break;
    }
    n_class_dirs++;
    if (!msci_path_printf(&path, &cap, "%s/%s", root, dirs[d]) ||
        (st = msci_list_dir(path, 'f', &files, &n_files)) != MSC_OK) {
      if (st == MSC_OK) st = MSC_E_OUT_OF_MEMORY;
      break;
    }
    for (int64_t f = 0; f < n_files && st == MSC_OK; ++f) {
      const size_t len = strlen(files[f]);
      if (len < 5 || strcmp(files[f] + len - 4, ".tif") != 0) continue;
      char id[512];
      snprintf(id, sizeof id, "%.*s", (int)(len - 4), files[f]);
      const int sp = msci_split_lists_find(split, have_splits, id);
      if (sp < 0) continue;
      if (!msci_path_printf(&path, &cap, "%s/%s/%s", root, dirs[d], files[f])) {
        st = MSC_E_OUT_OF_MEMORY;
        break;
      }
      msci_sample *s = msci_dataset_add(ds, id);
      if (!s || !(s->labels = calloc(10, 1))) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "eurosat: out of memory");
        break;
      }
      s->labels[c] = 1;
      s->split = sp;
      for (int b = 0; b < n && st == MSC_OK; ++b)
        st = msci_sample_set_band(s, ds, 0, b, path, k_file_band[idx[b]]);
    }
    msci_names_free(files, n_files);
    files = NULL;
    n_files = 0;
  }
  if (st == MSC_OK && n_class_dirs == 0)
    st = msci_fail(MSC_E_IO,
                   "eurosat: %s has no class folder (EuroSAT layout: "
                   "<Class>/<Class>_<n>.tif)",
                   root);
done:
  msci_names_free(files, n_files);
  msci_names_free(dirs, n_dirs);
  for (int i = 0; i < 3; ++i) msci_name_set_free(&split[i]);
  free(path);
  free(s1b);
  free(s2b);
  return st;
}
