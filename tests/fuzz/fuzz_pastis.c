/*
 * fuzz_pastis.c — fuzz target for PASTIS's metadata.geojson (lib/data/dataset_pastis.c:
 * the features' ID_PATCH, Fold and dates-S2), through msc_dataset_open.
 *
 * Each input is the GeoJSON, given as data.metadata; the dataset's root is a folder of
 * the scratch folder (fuzz_common.h) whose DATA_S2 and ANNOTATIONS are links to the real
 * small PASTIS-layout series of tests/data/pastis-layout (patches 0-4), so features
 * naming those patches become samples (4 pixel samples a patch, split "all", missing
 * patches skipped). msc_dataset_open must accept the table or refuse it with a documented
 * status and a message, leaving *out untouched; an opened dataset keeps the promises
 * fuzz_check_dataset lists, and its first samples are read (recurrence plots and image
 * patches computed from the series) or refused with a documented read error.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/pastis) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_pastis (docs/testing.md).
 */
#include "fuzz_common.h"

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  fuzz_mkdirs("p");
  fuzz_link("tests/data/pastis-layout/DATA_S2", "p/DATA_S2");
  fuzz_link("tests/data/pastis-layout/ANNOTATIONS", "p/ANNOTATIONS");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  char path[256], root[256];
  fuzz_path(path, sizeof path, "p/metadata.geojson");
  fuzz_path(root, sizeof root, "p");
  fuzz_write(path, data, size);
  const char *const kv[] = {
      "data.metadata",    path, "data.split", "all", "data.on_missing", "skip",
      "data.sits.pixels", "#4", NULL};
  msc_dataset *ds = fuzz_open_dataset(root, "pastis", kv, MSC_OK);
  if (ds) fuzz_check_dataset(ds, 2, 0);
  msc_dataset_free(ds);
  return 0;
}
