/*
 * dataset_ben1.c — BigEarthNet v1.0 (S2) with its S1 companion (BigEarthNet-MM):
 *   <root>/BigEarthNet-v1.0/<S2 name>/<S2 name>_<band>.tif and _labels_metadata.json
 *   <root>/BigEarthNet-S1-v1.0/<S1 name>/<S1 name>_{VV,VH}.tif and _labels_metadata.json
 * Labels are the JSON's 43 CORINE names mapped to the 19 classes of v2 (11 names drop
 * out). With S1, samples are the S1 folders and each names its S2 partner
 * (corresponding_s2_patch); S2 alone, samples are the S2 folders. Labels come from the S2
 * JSON; with S1, the S1 JSON must hold the same ones (a mismatch is refused). The sample id is the
 * S2 name. Optional lists in the root, as distributed with the dataset: train.csv,
 * val.csv, test.csv (the split; first field of each line is the S2 name) and
 * patches_with_seasonal_snow.csv, patches_with_cloud_and_shadow.csv (left out unless
 * data.include_snow_cloud = 1). Without split lists every sample has no split.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_files.h"
#include "common/internal.h"
#include "options/options.h"

/* The 43 v1 names with their CORINE codes (CLC level 3; 335 "Glaciers and perpetual
 * snow" is not among BigEarthNet's labels) and the v2 class (index into the 19 of
 * dataset_ben2.c) each maps to; -1: dropped (BigEarthNet-19's label_conversion). */
static const struct {
  int code; /* CORINE Land Cover level-3 code (the reference maps' pixel values) */
  const char *name;
  int to19;
} k_v1[43] = {
    {111, "Continuous urban fabric", 0},
    {112, "Discontinuous urban fabric", 0},
    {121, "Industrial or commercial units", 1},
    {122, "Road and rail networks and associated land", -1},
    {123, "Port areas", -1},
    {124, "Airports", -1},
    {131, "Mineral extraction sites", -1},
    {132, "Dump sites", -1},
    {133, "Construction sites", -1},
    {141, "Green urban areas", -1},
    {142, "Sport and leisure facilities", -1},
    {211, "Non-irrigated arable land", 2},
    {212, "Permanently irrigated land", 2},
    {213, "Rice fields", 2},
    {221, "Vineyards", 3},
    {222, "Fruit trees and berry plantations", 3},
    {223, "Olive groves", 3},
    {231, "Pastures", 4},
    {241, "Annual crops associated with permanent crops", 3},
    {242, "Complex cultivation patterns", 5},
    {243,
     "Land principally occupied by agriculture, with significant areas of natural "
     "vegetation",
     6},
    {244, "Agro-forestry areas", 7},
    {311, "Broad-leaved forest", 8},
    {312, "Coniferous forest", 9},
    {313, "Mixed forest", 10},
    {321, "Natural grassland", 11},
    {322, "Moors and heathland", 12},
    {323, "Sclerophyllous vegetation", 12},
    {324, "Transitional woodland/shrub", 13},
    {331, "Beaches, dunes, sands", 14},
    {332, "Bare rock", -1},
    {333, "Sparsely vegetated areas", 11},
    {334, "Burnt areas", -1},
    {411, "Inland marshes", 15},
    {412, "Peatbogs", 15},
    {421, "Salt marshes", 16},
    {422, "Salines", 16},
    {423, "Intertidal flats", -1},
    {511, "Water courses", 17},
    {512, "Water bodies", 17},
    {521, "Coastal lagoons", 18},
    {522, "Estuaries", 18},
    {523, "Sea and ocean", 18},
};

int msci_ben1_map_label(const char *name) {
  for (int i = 0; i < 43; ++i)
    if (!strcmp(k_v1[i].name, name)) return k_v1[i].to19;
  return -2;
}

int msci_ben_corine_class(int code) {
  for (int i = 0; i < 43; ++i)
    if (k_v1[i].code == code) return k_v1[i].to19;
  return -2;
}

typedef struct ctx {
  msc_dataset *ds;
  const char *root;
  int n1, n2, k1, k2;
  int s1_idx[2], s2_idx[12];
  int skip, include_sc, have_splits;
  msci_name_set split[3], excluded;
  char *path, *p2;
  size_t cap, cap2;
} ctx;

/* Reads the labels of a JSON file into labels (19-class multi-hot, zeroed first); id names
 * the patch in messages. */
static msc_status read_labels(const char *id, const char *json_path, uint8_t *labels,
                              int64_t classes) {
  json_error_t err;
  json_t *j = json_load_file(json_path, 0, &err);
  if (!j)
    return msci_fail(msci_is_file(json_path) ? MSC_E_BAD_FORMAT : MSC_E_IO,
                     "bigearthnet-v1: patch %s: %s: %s (line %d)", id, json_path, err.text,
                     err.line);
  msc_status st = MSC_OK;
  json_t *list = json_object_get(j, "labels");
  if (!json_is_array(list)) {
    st = msci_fail(MSC_E_BAD_FORMAT, "bigearthnet-v1: patch %s: %s has no \"labels\" list", id,
                   json_path);
    goto done;
  }
  memset(labels, 0, (size_t)classes);
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    const char *name = json_string_value(v);
    int k = name ? msci_ben1_map_label(name) : -2;
    if (k == -2) {
      st = msci_fail(MSC_E_BAD_FORMAT, "bigearthnet-v1: patch %s: %s: unknown label '%s'", id,
                     json_path, name ? name : "(not a string)");
      goto done;
    }
    if (k >= 0) labels[k] = 1;
  }
done:
  json_decref(j);
  return st;
}

/* The sample's labels: from the S2 JSON s2_json; with an S1 partner, its JSON s1_json is
 * read too and must hold the same labels (BigEarthNet-MM copies them from S2), so that a
 * damaged file on either side is found rather than one of them being ignored. */
static msc_status sample_labels(ctx *c, msci_sample *s, const char *s2_json,
                                const char *s1_json) {
  const int64_t n = c->ds->classes;
  if (!(s->labels = calloc((size_t)n, 1)))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "bigearthnet-v1: out of memory");
  MSCI_TRY(read_labels(s->id, s2_json, s->labels, n));
  if (!s1_json) return MSC_OK;
  uint8_t other[64];
  if (n > (int64_t)sizeof other) return msci_fail(MSC_E_INTERNAL, "bigearthnet-v1: classes");
  MSCI_TRY(read_labels(s->id, s1_json, other, n));
  if (memcmp(other, s->labels, (size_t)n) != 0)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "bigearthnet-v1: patch %s: the labels of %s differ from those of %s",
                     s->id, s1_json, s2_json);
  return MSC_OK;
}

/* Some S2 names lost the leading zero of the acquisition time (T93020 for T093020); the
 * folder may use either form. Rewrites name in place into the form that exists, if any. */
static void fix_s2_name(ctx *c, char *name, size_t cap) {
  if (!msci_path_printf(&c->p2, &c->cap2, "%s/BigEarthNet-v1.0/%s", c->root, name)) return;
  if (msci_is_dir(c->p2)) return;
  char *t = strchr(name, 'T'); /* first 'T' after the date: S2A_MSIL2A_20170717T93020_... */
  char *u = strchr(name, '_');
  u = u ? strchr(u + 1, '_') : NULL;
  if (!u || !(t = strchr(u, 'T'))) return;
  size_t digits = strspn(t + 1, "0123456789");
  char alt[512];
  if (digits == 5 && strlen(name) + 2 <= sizeof alt) {
    snprintf(alt, sizeof alt, "%.*s0%s", (int)(t + 1 - name), name, t + 1);
  } else if (digits == 6 && t[1] == '0') {
    snprintf(alt, sizeof alt, "%.*s%s", (int)(t + 1 - name), name, t + 2);
  } else {
    return;
  }
  if (!msci_path_printf(&c->p2, &c->cap2, "%s/BigEarthNet-v1.0/%s", c->root, alt)) return;
  if (msci_is_dir(c->p2) && strlen(alt) < cap) snprintf(name, cap, "%s", alt);
}

/* One patch: S2 name s2 (and S1 name s1 with its JSON s1_json, or NULL); labels from the S2
 * JSON, checked against the S1 one. */
static msc_status add_patch(ctx *c, const char *s2, const char *s1, const char *s1_json) {
  if (!c->include_sc && msci_name_set_has(&c->excluded, s2)) return MSC_OK;
  const int split = msci_split_lists_find(c->split, c->have_splits, s2);
  if (split < 0) return MSC_OK; /* in no list: not part of any split */
  /* Every file must exist before the sample is added. */
  const char *missing = NULL;
  for (int b = 0; b < c->n1 && !missing; ++b) {
    if (!msci_path_printf(&c->path, &c->cap, "%s/BigEarthNet-S1-v1.0/%s/%s_%s.tif", c->root, s1,
                          s1, msci_ben_s1_bands[c->s1_idx[b]].name))
      return MSC_E_OUT_OF_MEMORY;
    if (!msci_is_file(c->path)) missing = c->path;
  }
  for (int b = 0; b < c->n2 && !missing; ++b) {
    if (!msci_path_printf(&c->path, &c->cap, "%s/BigEarthNet-v1.0/%s/%s_%s.tif", c->root, s2,
                          s2, msci_ben_s2_bands[c->s2_idx[b]].name))
      return MSC_E_OUT_OF_MEMORY;
    if (!msci_is_file(c->path)) missing = c->path;
  }
  if (!missing) {
    if (!msci_path_printf(&c->p2, &c->cap2, "%s/BigEarthNet-v1.0/%s/%s_labels_metadata.json",
                          c->root, s2, s2))
      return MSC_E_OUT_OF_MEMORY;
    if (!msci_is_file(c->p2)) missing = c->p2;
  }
  if (missing) {
    if (!c->skip)
      return msci_fail(MSC_E_NOT_FOUND,
                       "bigearthnet-v1: patch %s: missing file %s "
                       "(data.on_missing = \"skip\" leaves such patches out)",
                       s2, missing);
    msci_dataset_note_skipped(c->ds, s2);
    return MSC_OK;
  }
  msci_sample *s = msci_dataset_add(c->ds, s2);
  if (!s) return msci_fail(MSC_E_OUT_OF_MEMORY, "bigearthnet-v1: out of memory");
  s->split = split;
  msc_status st = sample_labels(c, s, c->p2, s1_json);
  for (int b = 0; b < c->n1 && st == MSC_OK; ++b) {
    if (!msci_path_printf(&c->path, &c->cap, "%s/BigEarthNet-S1-v1.0/%s/%s_%s.tif", c->root, s1,
                          s1, msci_ben_s1_bands[c->s1_idx[b]].name))
      return MSC_E_OUT_OF_MEMORY;
    st = msci_sample_set_band(s, c->ds, c->k1, b, c->path, 0);
  }
  for (int b = 0; b < c->n2 && st == MSC_OK; ++b) {
    if (!msci_path_printf(&c->path, &c->cap, "%s/BigEarthNet-v1.0/%s/%s_%s.tif", c->root, s2,
                          s2, msci_ben_s2_bands[c->s2_idx[b]].name))
      return MSC_E_OUT_OF_MEMORY;
    st = msci_sample_set_band(s, c->ds, c->k2, b, c->path, 0);
  }
  return st;
}

static msc_status load_lists(ctx *c) {
  static const char *const split_files[3] = {"train.csv", "val.csv", "test.csv"};
  static const char *const excl_files[2] = {"patches_with_seasonal_snow.csv",
                                            "patches_with_cloud_and_shadow.csv"};
  MSCI_TRY(msci_split_lists_load(c->root, split_files, 0, c->split, &c->have_splits));
  for (int i = 0; i < 2; ++i) {
    if (!msci_path_printf(&c->path, &c->cap, "%s/%s", c->root, excl_files[i]))
      return MSC_E_OUT_OF_MEMORY;
    if (msci_is_file(c->path)) MSCI_TRY(msci_name_set_load(&c->excluded, c->path, 0));
  }
  msci_name_set_seal(&c->excluded);
  return MSC_OK;
}

msc_status msci_open_bigearthnet_v1(msc_dataset *ds, const char *root,
                                    const msc_options *opts) {
  ctx c;
  memset(&c, 0, sizeof c);
  c.ds = ds;
  c.root = root;
  char *s1b = NULL, *s2b = NULL, *on_missing = NULL;
  char **names = NULL;
  int64_t n_names = 0, include_sc = 0;
  msc_status st;
  if ((st = msci_options_get_string_alloc(opts, "data.on_missing", &on_missing)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s1_bands", &s1b)) != MSC_OK ||
      (st = msci_options_get_string_alloc(opts, "data.s2_bands", &s2b)) != MSC_OK ||
      (st = msc_options_get_int(opts, "data.include_snow_cloud", &include_sc)) != MSC_OK)
    goto done;
  c.skip = !strcmp(on_missing, "skip");
  c.include_sc = (int)include_sc;
  if (!msci_path_printf(&c.path, &c.cap, "%s/BigEarthNet-S1-v1.0", root)) {
    st = MSC_E_OUT_OF_MEMORY;
    goto done;
  }
  const int have_s1 = msci_is_dir(c.path);
  /* Without the S1 folder, "default" S1 bands mean none; asking for bands is an error. */
  if (!have_s1 && strcmp(s1b, "default") != 0 && strcmp(s1b, "none") != 0 && s1b[0]) {
    st = msci_fail(MSC_E_NOT_FOUND,
                   "bigearthnet-v1: data.s1_bands is \"%s\" but %s does not "
                   "exist",
                   s1b, c.path);
    goto done;
  }
  c.n1 = have_s1
             ? msci_parse_bands("data.s1_bands", s1b, msci_ben_s1_bands, 2, NULL, 2, c.s1_idx)
             : 0;
  c.n2 = c.n1 < 0 ? -1
                  : msci_parse_bands("data.s2_bands", s2b, msci_ben_s2_bands, 12, NULL, 12,
                                     c.s2_idx);
  if (c.n1 < 0 || c.n2 < 0) {
    st = MSC_E_INVALID_ARGUMENT;
    goto done;
  }
  if (c.n1 == 0 && c.n2 == 0) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT, "bigearthnet-v1: no band selected");
    goto done;
  }
  c.k1 = c.n1 > 0 ? 0 : -1;
  c.k2 = c.n2 > 0 ? (c.n1 > 0 ? 1 : 0) : -1;
  if ((c.k1 >= 0 && (st = msci_dataset_set_bands(ds, c.k1, "s1", 120, msci_ben_s1_bands,
                                                 c.s1_idx, c.n1)) != MSC_OK) ||
      (c.k2 >= 0 && (st = msci_dataset_set_bands(ds, c.k2, "s2", 120, msci_ben_s2_bands,
                                                 c.s2_idx, c.n2)) != MSC_OK) ||
      (st = msci_dataset_set_classes(ds, msci_ben_classes, 19)) != MSC_OK ||
      (st = load_lists(&c)) != MSC_OK)
    goto done;

  if (have_s1) {
    if (!msci_path_printf(&c.path, &c.cap, "%s/BigEarthNet-S1-v1.0", root)) {
      st = MSC_E_OUT_OF_MEMORY;
      goto done;
    }
    if ((st = msci_list_dir(c.path, 'd', &names, &n_names)) != MSC_OK) goto done;
    for (int64_t i = 0; i < n_names && st == MSC_OK; ++i) {
      char s2[512], *json = NULL;
      size_t jcap = 0;
      if (!msci_path_printf(&json, &jcap, "%s/BigEarthNet-S1-v1.0/%s/%s_labels_metadata.json",
                            root, names[i], names[i])) {
        st = MSC_E_OUT_OF_MEMORY;
        break;
      }
      /* The partner's name comes from the JSON; a throw-away sample carries the id for
       * the messages. */
      msci_sample probe = {.id = names[i]};
      json_error_t err;
      json_t *j = json_load_file(json, 0, &err);
      const char *p =
          j ? json_string_value(json_object_get(j, "corresponding_s2_patch")) : NULL;
      if (!p || strlen(p) >= sizeof s2 || strchr(p, '/')) {
        if (!j && !msci_is_file(json) && c.skip) {
          msci_dataset_note_skipped(ds, names[i]);
        } else {
          st = msci_fail(j || msci_is_file(json) ? MSC_E_BAD_FORMAT : MSC_E_NOT_FOUND,
                         "bigearthnet-v1: patch %s: %s: %s", probe.id, json,
                         j ? "no valid \"corresponding_s2_patch\"" : err.text);
        }
        json_decref(j);
        free(json);
        continue;
      }
      snprintf(s2, sizeof s2, "%s", p);
      json_decref(j);
      fix_s2_name(&c, s2, sizeof s2);
      st = add_patch(&c, s2, names[i], json);
      free(json);
    }
  } else {
    if (!msci_path_printf(&c.path, &c.cap, "%s/BigEarthNet-v1.0", root)) {
      st = MSC_E_OUT_OF_MEMORY;
      goto done;
    }
    if ((st = msci_list_dir(c.path, 'd', &names, &n_names)) != MSC_OK) goto done;
    for (int64_t i = 0; i < n_names && st == MSC_OK; ++i) {
      char *json = NULL;
      size_t jcap = 0;
      if (!msci_path_printf(&json, &jcap, "%s/BigEarthNet-v1.0/%s/%s_labels_metadata.json",
                            root, names[i], names[i])) {
        st = MSC_E_OUT_OF_MEMORY;
        break;
      }
      if (!msci_is_file(json)) {
        if (c.skip) {
          msci_dataset_note_skipped(ds, names[i]);
        } else {
          st = msci_fail(MSC_E_NOT_FOUND,
                         "bigearthnet-v1: patch %s: missing file %s "
                         "(data.on_missing = \"skip\" leaves such patches out)",
                         names[i], json);
        }
      } else {
        st = add_patch(&c, names[i], NULL, NULL);
      }
      free(json);
    }
  }
done:
  msci_names_free(names, n_names);
  for (int i = 0; i < 3; ++i) msci_name_set_free(&c.split[i]);
  msci_name_set_free(&c.excluded);
  free(c.path);
  free(c.p2);
  free(s1b);
  free(s2b);
  free(on_missing);
  return st;
}
