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
 * that is itself zstd (its magic number) is compared with zstd's own streaming decoder:
 * the whole text when it decodes completely to at most REF_MAX bytes and LINES_MAX lines
 * (the reader must then read it all), otherwise the first LINES_MAX lines that lie wholly
 * within the first REF_MAX decoded bytes, after which the comparison stops — 500 bytes of
 * zstd can decode to 128 MiB of empty lines, and reading them all made this target run at
 * 170-850 inputs/s without testing anything new. An input that does not decode may be refused, with MSC_E_BAD_FORMAT or
 * MSC_E_IO and a message; it must be refused (MSC_E_BAD_FORMAT) when its first frame
 * announces a window of more than 128 MiB (lines.h). Any other status, a crash or a
 * sanitizer report is a bug.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/lines) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_lines (docs/testing.md).
 */
#include "fuzz_common.h"

#include <zstd.h>

#include "data/lines.h"

/* The most decoded bytes a zstd input is compared on (see above). */
#define REF_MAX ((size_t)1 << 18)
/* The most lines compared of a zstd input (its other lines cost time, not coverage). */
#define LINES_MAX 16384

/* Reads path and compares its lines with the plain split of text[0..n). With partial set, text is only the start of what the file decodes to: the comparison stops
 * at the first line that does not end inside it. Returns the reader's final status
 * (MSC_OK when it stopped early). */
static msc_status read_and_compare(const char *path, const char *text, size_t n, int partial) {
  msci_lines rd;
  msc_status st = msci_lines_open(&rd, path);
  FUZZ_CHECK(st == MSC_OK); /* the file was just written */
  size_t pos = 0, lines = 0;
  int r;
  while ((r = msci_lines_next(&rd)) > 0) {
    FUZZ_CHECK(strchr(rd.line, '\n') == NULL);
    if (partial && (pos >= n || ++lines > LINES_MAX)) break;
    FUZZ_CHECK(pos < n); /* a line beyond the text */
    const char *nl = memchr(text + pos, '\n', n - pos);
    if (partial && !nl) break; /* the line goes on past the reference */
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
  } else if (r == 0) {
    FUZZ_CHECK(pos == n); /* every line was given */
  }
  msci_lines_close(&rd);
  return r < 0 ? st : MSC_OK;
}

/* The first REF_MAX bytes zstd's streaming decoder makes of data[0..size) (all its
 * frames, as the reader reads them), with the decoder's window bounded as the reader
 * bounds it. *complete: the input decoded to its end without error within REF_MAX
 * bytes (its frames ended and nothing was left to give). */
static const char *reference(const uint8_t *data, size_t size, size_t *n, int *complete) {
  *n = 0;
  *complete = 0;
  /* (one decoder and one buffer for the process: allocating them for each input cost
   * more than the reading under test) */
  static ZSTD_DCtx *d;
  static char *out;
  if (!d) {
    d = ZSTD_createDCtx();
    out = malloc(REF_MAX);
    FUZZ_CHECK(d != NULL && out != NULL);
  }
  ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
  ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
  ZSTD_inBuffer in = {data, size, 0};
  ZSTD_outBuffer ob = {out, REF_MAX, 0};
  size_t ret = 1;
  while (in.pos < in.size && ob.pos < ob.size) {
    ret = ZSTD_decompressStream(d, &ob, &in);
    if (ZSTD_isError(ret)) break;
  }
  /* (0 from ZSTD_decompressStream: the frame is decoded and all of it flushed) */
  *complete = !ZSTD_isError(ret) && in.pos == in.size && ret == 0;
  *n = ob.pos;
  return out;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[256];
  fuzz_path(path, sizeof path, "in.tsv");
  fuzz_write(path, data, size);
  const int is_zstd =
      size >= 4 && data[0] == 0x28 && data[1] == 0xB5 && data[2] == 0x2F && data[3] == 0xFD;
  if (!is_zstd) {
    FUZZ_CHECK(read_and_compare(path, (const char *)data, size, 0) == MSC_OK);
    /* the same text compressed */
    size_t cap = ZSTD_compressBound(size);
    void *z = malloc(cap ? cap : 1);
    FUZZ_CHECK(z != NULL);
    static ZSTD_CCtx *cctx; /* (one for the process, as the decoder above) */
    if (!cctx) FUZZ_CHECK((cctx = ZSTD_createCCtx()) != NULL);
    size_t zn = ZSTD_compressCCtx(cctx, z, cap, data, size, 1);
    FUZZ_CHECK(!ZSTD_isError(zn));
    fuzz_write(path, z, zn);
    free(z);
    FUZZ_CHECK(read_and_compare(path, (const char *)data, size, 0) == MSC_OK);
    return 0;
  }
  /* zstd input: the reference is zstd's streaming decoder, up to REF_MAX bytes */
  size_t pn = 0;
  int complete = 0;
  const char *plain = reference(data, size, &pn, &complete);
  size_t nl = 0; /* (the reference's lines: past LINES_MAX, it is compared in part) */
  for (const char *q = plain; q < plain + pn && (q = memchr(q, '\n', (size_t)(plain + pn - q)));
       ++q)
    nl++;
  msc_status st = read_and_compare(path, plain, pn, !complete || nl >= LINES_MAX);
  /* The first frame's window, from its header (RFC 8878, 3.1.1.1): more than 128 MiB is
   * refused (lines.h) before the decoder allocates it. */
  if (size >= 6 && !(data[4] & 0x20)) {
    const uint64_t base = (uint64_t)1 << (10 + (data[5] >> 3));
    if (base + base / 8 * (data[5] & 7) > ((uint64_t)1 << 27)) {
      FUZZ_CHECK(st == MSC_E_BAD_FORMAT);
      return 0;
    }
  }
  if (complete) FUZZ_CHECK(st == MSC_OK); /* decodable: the reader decodes it too */
  return 0;
}
