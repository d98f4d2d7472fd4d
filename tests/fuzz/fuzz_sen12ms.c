/*
 * fuzz_sen12ms.c — fuzz target for SEN12MS's tables (lib/data/dataset_sen12ms.c): the
 * IGBP fraction table (data.metadata: a TSV with "id" and igbp_1 .. igbp_17) and the
 * split lists (train_list.txt: a file or sample name a line, lib/data/dataset_files.c),
 * read by lib/data/lines.c, through msc_dataset_open.
 *
 * The first byte of an input holds flags, the rest is the text: bit 0 writes it
 * zstd-compressed, bit 1 makes it train_list.txt in the root instead of the fraction
 * table (the table is then a fixed valid one, so that the lc rasters are not read), bit 2 sets data.masks = 1, bit 3
 * data.on_missing = "fail" (else "skip"), bit 4 data.split = "train" (else "all"). The
 * root is a folder of the scratch folder (fuzz_common.h) with links to the two ROI
 * folders of tests/data/sen12ms-layout (four patches: ROIs1970_fall_1_p1, _p2,
 * ROIs2017_winter_1_p1, _p2; s1, s2 and lc). msc_dataset_open must accept the text or
 * refuse it with a documented status and a message, leaving *out untouched (data.split
 * "train" without a split list is MSC_E_INVALID_ARGUMENT naming the option); an opened
 * dataset keeps the promises fuzz_check_dataset lists (with one S1 and one S2 band), and
 * its first samples are read or refused with a documented read error.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/sen12ms) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_sen12ms (docs/testing.md).
 */
#include "fuzz_common.h"

#include "fuzz_table.h"

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  fuzz_mkdirs("z/root");
  fuzz_link("tests/data/sen12ms-layout/ROIs1970_fall", "z/root/ROIs1970_fall");
  fuzz_link("tests/data/sen12ms-layout/ROIs2017_winter", "z/root/ROIs2017_winter");
  /* the fraction table of a split-list input: the lc rasters are then not read */
  char fixed[256], text[1024];
  size_t n = (size_t)snprintf(text, sizeof text, "id");
  for (int g = 1; g <= 17; ++g)
    n += (size_t)snprintf(text + n, sizeof text - n, "\tigbp_%d", g);
  static const char *const ids[4] = {"ROIs1970_fall_1_p1", "ROIs1970_fall_1_p2",
                                     "ROIs2017_winter_1_p1", "ROIs2017_winter_1_p2"};
  for (int i = 0; i < 4; ++i) {
    n += (size_t)snprintf(text + n, sizeof text - n, "\n%s", ids[i]);
    for (int g = 1; g <= 17; ++g)
      n += (size_t)snprintf(text + n, sizeof text - n, "\t%s", g == 1 + 3 * i ? "1" : "0");
  }
  n += (size_t)snprintf(text + n, sizeof text - n, "\n");
  fuzz_path(fixed, sizeof fixed, "z/fixed.tsv");
  fuzz_write(fixed, text, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  const int flags = data[0];
  data++;
  size--;
  char table[256], list[256], root[256], fixed[256];
  fuzz_path(table, sizeof table, "z/fractions.tsv");
  fuzz_path(fixed, sizeof fixed, "z/fixed.tsv");
  fuzz_path(list, sizeof list, "z/root/train_list.txt");
  fuzz_path(root, sizeof root, "z/root");
  const char *path = (flags & 2) ? list : table;
  unlink((flags & 2) ? table : list);
  if (fuzz_write_table(path, data, size, flags & 1)) return 0;
  const char *const kv[] = {"data.metadata", (flags & 2) ? fixed : table, "data.masks",
                            (flags & 4) ? "#1" : "#0", "data.on_missing",
                            (flags & 8) ? "fail" : "skip", "data.split",
                            (flags & 16) ? "train" : "all",
                            /* (one band each: reading 15 of 256 x 256 took most of an
                             * input's time, and band choice is not this target's subject) */
                            "data.s1_bands", "VV", "data.s2_bands", "B04", NULL};
  msc_dataset *ds = fuzz_open_dataset(root, "sen12ms", kv, MSC_E_INVALID_ARGUMENT);
  if (fuzz_open_status == MSC_E_INVALID_ARGUMENT)
    FUZZ_CHECK(strstr(msc_last_error(), "data.split") != NULL ||
               strstr(msc_last_error(), "split") != NULL);
  if (ds) fuzz_check_dataset(ds, 2, 0);
  msc_dataset_free(ds);
  return 0;
}
