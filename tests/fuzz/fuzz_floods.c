/*
 * fuzz_floods.c — fuzz target for Sen1Floods11's split lists (lib/data/dataset_floods.c:
 * flood_{train,valid,test}_data.csv, "<chip>_S1Hand.tif,<chip>_LabelHand.tif" a line,
 * read by lib/data/lines.c), through msc_dataset_open.
 *
 * The first byte of an input holds flags, the rest is a list: bit 0 writes it
 * zstd-compressed, bits 1-2 pick the list it becomes (0 train, 1 valid, 2 test, 3 train
 * with a fixed valid list beside it), bit 3 sets data.on_missing = "fail" (else "skip"),
 * bit 4 data.split = "train" (else "all"), bit 5 data.s2_bands = "" (S1 only). The root
 * is a folder of the scratch folder (fuzz_common.h) with four synthetic 16 × 16 chips
 * (msc_synth_write, "sen1floods11": Bolivia_100000, Ghana_100001, India_100002,
 * Mekong_100003; S1Hand, S2Hand, LabelHand), written once. msc_dataset_open must accept
 * the list or refuse it with a documented status and a message, leaving *out untouched;
 * an opened dataset keeps the promises fuzz_check_dataset lists, and its first samples
 * are read or refused with a documented read error.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/floods) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_floods (docs/testing.md).
 */
#include "fuzz_common.h"

#include "fuzz_table.h"

static const char *const k_lists[3] = {"f/flood_train_data.csv", "f/flood_valid_data.csv",
                                       "f/flood_test_data.csv"};

static void setup(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  char root[256];
  fuzz_path(root, sizeof root, "f");
  msc_options *o = NULL;
  FUZZ_CHECK(msc_options_create(&o) == MSC_OK);
  FUZZ_CHECK(msc_options_set_int(o, "synth.size", 16) == MSC_OK);
  FUZZ_CHECK(msc_synth_write(root, "sen1floods11", 4, 1, o) == MSC_OK);
  msc_options_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  const int flags = data[0];
  data++;
  size--;
  const int which = (flags >> 1) & 3;
  char path[256];
  for (int i = 0; i < 3; ++i) { /* only this input's list (and, for 3, the fixed valid) */
    fuzz_path(path, sizeof path, k_lists[i]);
    unlink(path);
  }
  if (which == 3) {
    static const char valid[] = "Ghana_100001_S1Hand.tif,Ghana_100001_LabelHand.tif\n";
    fuzz_path(path, sizeof path, k_lists[1]);
    fuzz_write(path, valid, sizeof valid - 1);
  }
  fuzz_path(path, sizeof path, k_lists[which == 3 ? 0 : which]);
  if (fuzz_write_table(path, data, size, flags & 1)) return 0;
  char root[256];
  fuzz_path(root, sizeof root, "f");
  const char *const kv[] = {"data.on_missing",
                            (flags & 8) ? "fail" : "skip",
                            "data.split",
                            (flags & 16) ? "train" : "all",
                            "data.s2_bands",
                            (flags & 32) ? "" : "default",
                            NULL};
  msc_dataset *ds = fuzz_open_dataset(root, "sen1floods11", kv, MSC_E_INVALID_ARGUMENT);
  if (fuzz_open_status == MSC_E_INVALID_ARGUMENT)
    FUZZ_CHECK(strstr(msc_last_error(), "split") != NULL);
  if (ds) fuzz_check_dataset(ds, 2, 0);
  msc_dataset_free(ds);
  return 0;
}
