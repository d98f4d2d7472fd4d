/*
 * fuzz_lines.c — fuzz target for the line reader of metadata tables, plain or
 * zstd-compressed (lib/data/lines.c: BigEarthNet v2's metadata.tsv[.zst], manifests,
 * split lists).
 *
 * Each input is read twice from a file in the scratch folder (fuzz_common.h): as given,
 * and compressed with ZSTD_compress (one frame) — the zstd path must give exactly the
 * lines of the plain one. The lines of plain text are checked against a plain split of
 * the bytes at '\n', one trailing '\r' removed per line, no empty line after a final
 * '\n' (a line with a NUL byte is compared up to it: readers see C strings). An input
 * that is itself zstd (its magic number) is compared with ZSTD_decompress of it when that
 * succeeds with a known size; otherwise it may be refused, with MSC_E_BAD_FORMAT or
 * MSC_E_IO and a message; it must be refused (MSC_E_BAD_FORMAT) when its first frame
 * announces a window of more than 128 MiB (lines.h). Any other status, a crash or a sanitizer report is a bug.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/lines) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_lines (docs/testing.md).
 */
#include "fuzz_common.h"

#include <zstd.h>

#include "data/lines.h"

/* Reads path and compares its lines with the plain split of text[0..n) (text NULL: no
 * reference, only the promises of the reader). Returns the reader's final status. */
static msc_status read_and_compare(const char *path, const char *text, size_t n) {
  msci_lines rd;
  msc_status st = msci_lines_open(&rd, path);
  FUZZ_CHECK(st == MSC_OK); /* the file was just written */
  size_t pos = 0;
  int r;
  while ((r = msci_lines_next(&rd)) > 0) {
    FUZZ_CHECK(strchr(rd.line, '\n') == NULL);
    if (!text) continue;
    FUZZ_CHECK(pos < n); /* a line beyond the text */
    const char *nl = memchr(text + pos, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - (text + pos)) : n - pos;
    size_t want = len;
    if (want > 0 && text[pos + want - 1] == '\r') want--;
    const char *nul = memchr(text + pos, '\0', want);
    if (nul) want = (size_t)(nul - (text + pos));
    FUZZ_CHECK(strlen(rd.line) == want && memcmp(rd.line, text + pos, want) == 0);
    pos += len + (nl ? 1 : 0);
  }
  if (r < 0) {
    st = rd.st;
    FUZZ_CHECK((st == MSC_E_BAD_FORMAT || st == MSC_E_IO) && msc_last_error()[0] != '\0');
  } else if (text) {
    FUZZ_CHECK(pos == n); /* every line was given */
  }
  msci_lines_close(&rd);
  return r < 0 ? st : MSC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[256];
  fuzz_path(path, sizeof path, "in.tsv");
  fuzz_write(path, data, size);
  const int is_zstd =
      size >= 4 && data[0] == 0x28 && data[1] == 0xB5 && data[2] == 0x2F && data[3] == 0xFD;
  if (!is_zstd) {
    FUZZ_CHECK(read_and_compare(path, (const char *)data, size) == MSC_OK);
    /* the same text compressed */
    size_t cap = ZSTD_compressBound(size);
    void *z = malloc(cap ? cap : 1);
    FUZZ_CHECK(z != NULL);
    size_t zn = ZSTD_compress(z, cap, data, size, 1);
    FUZZ_CHECK(!ZSTD_isError(zn));
    fuzz_write(path, z, zn);
    free(z);
    FUZZ_CHECK(read_and_compare(path, (const char *)data, size) == MSC_OK);
    return 0;
  }
  /* zstd input: the reference is a one-shot decompression of a frame whose size is known, when it succeeds */
  unsigned long long n = ZSTD_getFrameContentSize(data, size);
  char *plain = NULL;
  size_t pn = 0;
  if (n != ZSTD_CONTENTSIZE_ERROR && n != ZSTD_CONTENTSIZE_UNKNOWN && n <= (1u << 24)) {
    plain = malloc(n ? n : 1);
    FUZZ_CHECK(plain != NULL);
    size_t got = ZSTD_decompress(plain, n, data, size);
    if (ZSTD_isError(got) || got != n) {
      free(plain);
      plain = NULL;
    } else {
      pn = got;
    }
  }
  msc_status st = read_and_compare(path, plain, pn);
  /* The first frame's window, from its header (RFC 8878, 3.1.1.1): more than 128 MiB is
   * refused (lines.h) before the decoder allocates it. */
  if (size >= 6 && !(data[4] & 0x20)) {
    const uint64_t base = (uint64_t)1 << (10 + (data[5] >> 3));
    if (base + base / 8 * (data[5] & 7) > ((uint64_t)1 << 27)) {
      FUZZ_CHECK(st == MSC_E_BAD_FORMAT);
      return 0;
    }
  }
  if (plain) FUZZ_CHECK(st == MSC_OK); /* decodable: the reader decodes it too */
  free(plain);
  return 0;
}
