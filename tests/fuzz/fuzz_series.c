/*
 * fuzz_series.c — fuzz target for the series manifest (format "series",
 * lib/data/dataset_series.c: users' own time series listed in a TSV table of series,
 * dates and files, read by lib/data/lines.c), through msc_dataset_open.
 *
 * The first byte of an input holds flags, the rest is the table: bit 0 writes it
 * zstd-compressed (series.tsv.zst), bit 1 sets data.split = "train" (else "all"), bit 2
 * data.series.classes = "a,b,c", bit 3 data.series.bands = "B4,B8" and data.sits.indices =
 * "ndvi" (two bands a date, else the default ten), bit 4 data.sits.sample = "patch" (else "pixel"), bit 5
 * data.series.ignore = 0, bit 6 data.sits.modalities = "series" (else "rp,s2"), bit 7
 * data.allow_outside_root = 1. The table lies in a folder of the scratch folder
 * (fuzz_common.h) holding copies of the two dates of the real SSL4EO-S12 series in
 * tests/data (d0, d1: a file per band, B1 … B12 at 10, 20 and 60 m, and metadata.json)
 * and of a small single-band raster (t.tif, d0's B1) that a target column may name, and
 * o.tif, a link to a band outside the root (refused unless bit 7). A table may name
 * any path: msc_dataset_open must accept it or refuse it with a documented status and a
 * message, leaving *out untouched (a table the options do not fit, such as data.split
 * "train" without a split column, is MSC_E_INVALID_ARGUMENT naming the option). An opened
 * dataset keeps the promises fuzz_check_dataset lists; its first samples are read, which
 * may fail with a documented read error only.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/series) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_series (docs/testing.md).
 */
#include "fuzz_common.h"

#include "fuzz_table.h"

#define S2A "tests/data/ssl4eo-s12/s2a/0000200/"

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  static const char *const dates[2] = {"20200604T054639_20200604T054831_T43RCP",
                                       "20200813T054639_20200813T054952_T43RCP"};
  static const char *const files[13] = {
      "B1.tif", "B2.tif",  "B3.tif", "B4.tif",  "B5.tif",  "B6.tif",       "B7.tif",
      "B8.tif", "B8A.tif", "B9.tif", "B11.tif", "B12.tif", "metadata.json"};
  char from[256], to[64];
  for (int d = 0; d < 2; ++d) {
    snprintf(to, sizeof to, "s/d%d", d);
    fuzz_mkdirs(to);
    for (int f = 0; f < 13; ++f) {
      snprintf(from, sizeof from, S2A "%s/%s", dates[d], files[f]);
      snprintf(to, sizeof to, "s/d%d/%s", d, files[f]);
      fuzz_copy(from, to);
    }
  }
  fuzz_copy(S2A "20200604T054639_20200604T054831_T43RCP/B1.tif", "s/t.tif");
  fuzz_link(S2A "20200604T054639_20200604T054831_T43RCP/B4.tif", "s/o.tif");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  const int flags = data[0];
  data++;
  size--;
  char path[256], other[256];
  fuzz_path(path, sizeof path, (flags & 1) ? "s/series.tsv.zst" : "s/series.tsv");
  fuzz_path(other, sizeof other, (flags & 1) ? "s/series.tsv" : "s/series.tsv.zst");
  unlink(other);
  if (fuzz_write_table(path, data, size, flags & 1)) return 0;
  char root[256];
  fuzz_path(root, sizeof root, "s");
  const char *kv[32];
  int k = 0;
  kv[k++] = "data.split", kv[k++] = (flags & 2) ? "train" : "all";
  if (flags & 4) kv[k++] = "data.series.classes", kv[k++] = "a,b,c";
  if (flags & 8) /* (the one index these two bands make) */
    kv[k++] = "data.series.bands", kv[k++] = "B4,B8", kv[k++] = "data.sits.indices",
    kv[k++] = "ndvi";
  kv[k++] = "data.sits.sample", kv[k++] = (flags & 16) ? "patch" : "pixel";
  if (flags & 32) kv[k++] = "data.series.ignore", kv[k++] = "#0";
  if (flags & 64) kv[k++] = "data.sits.modalities", kv[k++] = "series";
  if (flags & 128) kv[k++] = "data.allow_outside_root", kv[k++] = "#1";
  kv[k++] = "data.sits.pixels", kv[k++] = "#2";
  /* (a short time axis and the smallest image patch: a patch sample resampled the whole
   * 264 x 264 patch onto 32 dates, most of an input's time, and the sample's size is not
   * this target's subject) */
  kv[k++] = "data.sits.length", kv[k++] = "#4", kv[k++] = "data.sits.patch", kv[k++] = "#8";
  kv[k] = NULL;
  msc_dataset *ds = fuzz_open_dataset(root, "series", kv, MSC_E_INVALID_ARGUMENT);
  if (fuzz_open_status == MSC_E_INVALID_ARGUMENT)
    FUZZ_CHECK(strstr(msc_last_error(), "data.") != NULL);
  if (ds) fuzz_check_dataset(ds, 2, 0);
  msc_dataset_free(ds);
  return 0;
}
