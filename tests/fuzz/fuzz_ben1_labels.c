/*
 * fuzz_ben1_labels.c — fuzz target for BigEarthNet v1's *_labels_metadata.json
 * (lib/data/dataset_ben1.c), through msc_dataset_open.
 *
 * Each input is the JSON file of one patch in two layouts built once in the scratch
 * folder (fuzz_common.h) from links to the real files of tests/data/bigearthnet-v1: S2
 * only (BigEarthNet-v1.0/<S2 patch>/<S2 patch>_labels_metadata.json: its "labels"), and
 * S1 with S2 (BigEarthNet-S1-v1.0/<S1 patch>/..._labels_metadata.json: its
 * "corresponding_s2_patch", then its "labels"). msc_dataset_open must accept the file or
 * refuse it with a documented status and a message, leaving *out untouched; an opened
 * dataset keeps the promises fuzz_check_dataset lists and its sample, real files, is read
 * into a batch without error.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/ben1_labels) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_ben1_labels (docs/testing.md).
 */
#include "fuzz_common.h"

#define S2     "S2A_MSIL2A_20170613T101031_87_48"
#define S1     "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"
#define V1DATA "tests/data/bigearthnet-v1"

static const char *const k_s2_bands[] = {"B04", "B03"};

/* scratch/<root>/BigEarthNet-v1.0/S2 with links to the S2 bands read (data.s2_bands). */
static void make_s2(const char *root) {
  char rel[512], src[512];
  snprintf(rel, sizeof rel, "%s/BigEarthNet-v1.0/" S2, root);
  fuzz_mkdirs(rel);
  for (int b = 0; b < 2; ++b) {
    snprintf(src, sizeof src, V1DATA "/BigEarthNet-v1.0/" S2 "/" S2 "_%s.tif", k_s2_bands[b]);
    snprintf(rel, sizeof rel, "%s/BigEarthNet-v1.0/" S2 "/" S2 "_%s.tif", root, k_s2_bands[b]);
    fuzz_link(src, rel);
  }
}

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  make_s2("s2only");
  make_s2("s1s2");
  fuzz_mkdirs("s1s2/BigEarthNet-S1-v1.0/" S1);
  fuzz_link(V1DATA "/BigEarthNet-S1-v1.0/" S1 "/" S1 "_VV.tif",
            "s1s2/BigEarthNet-S1-v1.0/" S1 "/" S1 "_VV.tif");
  fuzz_link(V1DATA "/BigEarthNet-S1-v1.0/" S1 "/" S1 "_VH.tif",
            "s1s2/BigEarthNet-S1-v1.0/" S1 "/" S1 "_VH.tif");
}

static void run(const char *root_rel, const char *json_rel, const uint8_t *data, size_t size) {
  char root[512], json[512];
  fuzz_path(root, sizeof root, root_rel);
  fuzz_path(json, sizeof json, json_rel);
  fuzz_write(json, data, size);
  const char *const kv[] = {"data.split", "all", "data.s2_bands", "B04,B03", NULL};
  msc_dataset *ds = fuzz_open_dataset(root, "bigearthnet-v1", kv, MSC_OK);
  if (ds) {
    FUZZ_CHECK(msc_dataset_size(ds) <= 1 && msc_dataset_class_count(ds) == 19);
    fuzz_check_dataset(ds, 1, 1);
  }
  msc_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  run("s2only", "s2only/BigEarthNet-v1.0/" S2 "/" S2 "_labels_metadata.json", data, size);
  run("s1s2", "s1s2/BigEarthNet-S1-v1.0/" S1 "/" S1 "_labels_metadata.json", data, size);
  return 0;
}
