/*
 * fuzz_table.h — writing a fuzzed table as it is or zstd-compressed (one frame, level 1),
 * for the targets whose tables go through lib/data/lines.c (ben2_metadata, manifest,
 * series, sen12ms, floods). Included after fuzz_common.h.
 */
#ifndef MOSAIC_FUZZ_TABLE_H
#define MOSAIC_FUZZ_TABLE_H

#include <zstd.h>

/* The most bytes a table that is itself zstd may decode to (see fuzz_table_huge): 8 times
 * the longest plain input of the long runs (-max_len=8192, scripts/fuzz-long.sh). */
#define FUZZ_TABLE_MAX ((size_t)1 << 16)

/* Whether data, written as it is, is a zstd stream (lib/data/lines.c reads any file that
 * starts with zstd's magic number as one) that decodes to more than FUZZ_TABLE_MAX bytes.
 * A few hundred bytes can decode to a hundred megabytes of empty lines: the dataset
 * targets then spent each input scanning them (2026-12-05: fuzz_floods fell from 1,500 to
 * about 20 inputs/s) without reaching their parsers' logic; lines.c's own target,
 * fuzz_lines, keeps reading such streams. A stream that fails to decode is not huge: the
 * reader's refusal is part of what the targets test. */
static inline int fuzz_table_huge(const uint8_t *data, size_t size) {
  if (size < 4 || data[0] != 0x28 || data[1] != 0xB5 || data[2] != 0x2F || data[3] != 0xFD)
    return 0;
  static ZSTD_DCtx *d;
  static char out[1 << 16];
  if (!d) {
    d = ZSTD_createDCtx();
    FUZZ_CHECK(d != NULL);
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27); /* (as lines.c) */
  }
  ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
  ZSTD_inBuffer in = {data, size, 0};
  size_t total = 0;
  for (;;) {
    ZSTD_outBuffer o = {out, sizeof out, 0};
    size_t ret = ZSTD_decompressStream(d, &o, &in);
    if (ZSTD_isError(ret)) return 0;
    total += o.pos;
    if (total > FUZZ_TABLE_MAX) return 1;
    if (o.pos == 0 && in.pos == in.size) return 0; /* (no progress: all given) */
  }
}

/* Writes the table to path, as it is or zstd-compressed; returns 0, or 1 without writing
 * when fuzz_table_huge says it is too large to be worth an input's time (the target then
 * returns: nothing of it is tested). */
static inline int fuzz_write_table(const char *path, const uint8_t *data, size_t size,
                                   int compress) {
  if (!compress) {
    if (fuzz_table_huge(data, size)) return 1;
    fuzz_write(path, data, size);
    return 0;
  }
  size_t cap = ZSTD_compressBound(size);
  void *z = malloc(cap ? cap : 1);
  FUZZ_CHECK(z != NULL);
  size_t zn = ZSTD_compress(z, cap, data, size, 1);
  FUZZ_CHECK(!ZSTD_isError(zn));
  fuzz_write(path, z, zn);
  free(z);
  return 0;
}

#endif
