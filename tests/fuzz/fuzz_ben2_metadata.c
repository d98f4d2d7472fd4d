/*
 * fuzz_ben2_metadata.c — fuzz target for BigEarthNet v2's metadata table
 * (lib/data/dataset_ben2.c, read by lib/data/lines.c), through msc_dataset_open.
 *
 * The first byte of an input holds flags, the rest is the table: bit 0 writes it
 * zstd-compressed (metadata.tsv.zst: the table's grammar through the zstd reader; raw
 * corrupt zstd is fuzz_lines' part), bit 1 sets data.include_snow_cloud, bit 2 data.masks
 * (the bundled samples have no reference maps: those rows are skipped). The table is
 * given as data.metadata and the dataset's root is the real samples of
 * examples/data/bigearthnet-v2, so rows naming a real patch become samples; the split is
 * "all" and missing files are skipped. msc_dataset_open must accept the table or refuse
 * it with a documented status and a message, leaving *out untouched; an opened dataset
 * keeps the promises fuzz_check_dataset lists, and its first samples, real files, must be
 * read into a batch without error.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/ben2_metadata) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_ben2_metadata (docs/testing.md).
 */
#include "fuzz_common.h"

#include "fuzz_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const int flags = data[0];
  data++;
  size--;
  char path[256];
  fuzz_path(path, sizeof path, (flags & 1) ? "metadata.tsv.zst" : "metadata.tsv");
  if (fuzz_write_table(path, data, size, flags & 1)) return 0;
  const char *const kv[] = {"data.metadata",
                            path,
                            "data.split",
                            "all",
                            "data.on_missing",
                            "skip",
                            "data.include_snow_cloud",
                            (flags & 2) ? "#1" : "#0",
                            "data.masks",
                            (flags & 4) ? "#1" : "#0",
                            NULL};
  msc_dataset *ds = fuzz_open_dataset(MSC_FUZZ_SOURCE_DIR "/examples/data/bigearthnet-v2",
                                      "bigearthnet-v2", kv, MSC_OK);
  if (ds) {
    FUZZ_CHECK(msc_dataset_class_count(ds) == 19);
    fuzz_check_dataset(ds, 1, 1);
  }
  msc_dataset_free(ds);
  return 0;
}
