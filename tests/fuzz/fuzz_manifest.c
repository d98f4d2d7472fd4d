/*
 * fuzz_manifest.c — fuzz target for the TSV manifest of the "manifest" format
 * (lib/data/dataset_manifest.c, read by lib/data/lines.c), through msc_dataset_open.
 *
 * The first byte of an input holds flags, the rest is the manifest: bit 0 writes it
 * zstd-compressed (manifest.tsv.zst), bit 1 sets data.on_missing = "fail" (else "skip"),
 * bit 2 data.split = "train" (else "all"), bit 3 data.mask_classes = "a,b" (a "mask"
 * column then needs it), bit 4 data.allow_outside_root = 1. The manifest lies in a
 * folder of the scratch folder (fuzz_common.h) that also holds copies of real rasters
 * under short names the relative paths of a table can name: a.tif (EuroSAT, 13 bands,
 * 64 × 64), b.tif and c.tif (BigEarthNet v2 S2 bands B04, 120 × 120, and B05, 60 × 60),
 * d.tif (EuroSAT); and e.tif, a link to a.tif's original, which lies outside the root
 * (refused unless bit 4). Copies, not links: a table's paths are confined to the root
 * with links resolved, and links made every table refused until 2026-12-04. A
 * table may name any path: msc_dataset_open must accept it or refuse it with a documented
 * status and a message, leaving *out untouched. An opened dataset keeps the promises
 * fuzz_check_dataset lists; its first samples are read into a batch, which may fail
 * with a documented read error only (a later row may name a file of fewer bands, or the
 * manifest itself).
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/manifest) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_manifest (docs/testing.md).
 */
#include "fuzz_common.h"

#include "fuzz_table.h"

#define S2DIR                                                                                  \
  "examples/data/bigearthnet-v2/BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/"  \
  "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48/"                                        \
  "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  fuzz_mkdirs("m");
  fuzz_copy("tests/data/eurosat-ms/Pasture/Pasture_300.tif", "m/a.tif");
  fuzz_copy(S2DIR "_B04.tif", "m/b.tif");
  fuzz_copy(S2DIR "_B05.tif", "m/c.tif");
  fuzz_copy("tests/data/eurosat-ms/SeaLake/SeaLake_3000.tif", "m/d.tif");
  fuzz_link("tests/data/eurosat-ms/Pasture/Pasture_300.tif", "m/e.tif");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  const int flags = data[0];
  data++;
  size--;
  char path[256], other[256];
  fuzz_path(path, sizeof path, (flags & 1) ? "m/manifest.tsv.zst" : "m/manifest.tsv");
  fuzz_path(other, sizeof other, (flags & 1) ? "m/manifest.tsv" : "m/manifest.tsv.zst");
  unlink(other);
  if (fuzz_write_table(path, data, size, flags & 1)) return 0;
  char root[256];
  fuzz_path(root, sizeof root, "m");
  const char *const kv[] = {"data.on_missing",
                            (flags & 2) ? "fail" : "skip",
                            "data.split",
                            (flags & 4) ? "train" : "all",
                            "data.mask_classes",
                            (flags & 8) ? "a,b" : "",
                            "data.allow_outside_root",
                            (flags & 16) ? "#1" : "#0",
                            NULL};
  /* A table the options do not fit (data.split "train" without a split column, a mask
   * column without data.mask_classes) is MSC_E_INVALID_ARGUMENT naming the option. */
  msc_dataset *ds = fuzz_open_dataset(root, "manifest", kv, MSC_E_INVALID_ARGUMENT);
  if (fuzz_open_status == MSC_E_INVALID_ARGUMENT)
    FUZZ_CHECK(strstr(msc_last_error(), "data.split") != NULL ||
               strstr(msc_last_error(), "data.mask_classes") != NULL);
  if (ds) fuzz_check_dataset(ds, 2, 0);
  msc_dataset_free(ds);
  return 0;
}
