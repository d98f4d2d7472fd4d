/*
 * fuzz_table.h — writing a fuzzed table as it is or zstd-compressed (one frame, level 1),
 * for the targets whose tables go through lib/data/lines.c (ben2_metadata, manifest,
 * series, sen12ms, floods). Included after fuzz_common.h.
 */
#ifndef MOSAIC_FUZZ_TABLE_H
#define MOSAIC_FUZZ_TABLE_H

#include <zstd.h>

static inline void fuzz_write_table(const char *path, const uint8_t *data, size_t size,
                                    int compress) {
  if (!compress) {
    fuzz_write(path, data, size);
    return;
  }
  size_t cap = ZSTD_compressBound(size);
  void *z = malloc(cap ? cap : 1);
  FUZZ_CHECK(z != NULL);
  size_t zn = ZSTD_compress(z, cap, data, size, 1);
  FUZZ_CHECK(!ZSTD_isError(zn));
  fuzz_write(path, z, zn);
  free(z);
}

#endif
