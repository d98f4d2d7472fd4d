/*
 * lines.c — line reader over a plain or zstd-compressed text file (lines.h).
 */
#include "data/lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file_read.h"
#include "common/internal.h"

/* Appends up to 64 KiB of decoded bytes; returns 0 at end of input, 1 if bytes came,
 * -1 on error (msci_fail done). */
static int fill(msci_lines *r) {
  if (r->pos > 0) {
    memmove(r->data, r->data + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->cap - r->len < (1 << 16)) {
    size_t cap = r->cap ? r->cap * 2 : (1 << 17);
    char *p = realloc(r->data, cap);
    if (!p) {
      r->st = msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory reading %s", r->path);
      return -1;
    }
    r->data = p;
    r->cap = cap;
  }
  if (!r->z) {
    size_t got = fread(r->data + r->len, 1, r->cap - r->len, r->f);
    if (got == 0) {
      if (ferror(r->f)) {
        r->st = msci_fail(MSC_E_IO, "cannot read %s", r->path);
        return -1;
      }
      return 0;
    }
    r->len += got;
    return 1;
  }
  for (;;) {
    if (r->zin.pos == r->zin.size && !r->eof) {
      size_t got = fread(r->in, 1, sizeof r->in, r->f);
      if (got == 0) {
        if (ferror(r->f)) {
          r->st = msci_fail(MSC_E_IO, "cannot read %s", r->path);
          return -1;
        }
        r->eof = 1;
      }
      r->zin.src = r->in;
      r->zin.size = got;
      r->zin.pos = 0;
    }
    if (r->eof && r->zin.pos == r->zin.size) {
      if (!r->z_done) {
        r->st = msci_fail(MSC_E_BAD_FORMAT, "%s: truncated zstd stream", r->path);
        return -1;
      }
      return 0;
    }
    ZSTD_outBuffer out = {r->data + r->len, r->cap - r->len, 0};
    size_t ret = ZSTD_decompressStream(r->z, &out, &r->zin);
    if (ZSTD_isError(ret)) {
      r->st = msci_fail(MSC_E_BAD_FORMAT, "%s: zstd: %s", r->path, ZSTD_getErrorName(ret));
      return -1;
    }
    r->z_done = ret == 0;
    r->len += out.pos;
    if (out.pos > 0) return 1;
  }
}

/* Next line without its "\n" / "\r\n" into r->line: 1, 0 at the end, -1 on error. */
int msci_lines_next(msci_lines *r) {
  for (;;) {
    char *nl = r->len > r->pos ? memchr(r->data + r->pos, '\n', r->len - r->pos) : NULL;
    int got = 1;
    /* + 1: a line of MSCI_LINE_MAX bytes may still have its "\r" of "\r\n" buffered. */
    if (!nl && r->len - r->pos > MSCI_LINE_MAX + 1) {
      r->st = msci_fail(MSC_E_BAD_FORMAT,
                        "%s line %lld: longer than %zu bytes (the limit of a line)", r->path,
                        (long long)(r->line_no + 1), MSCI_LINE_MAX);
      return -1;
    }
    if (!nl) {
      got = fill(r);
      if (got < 0) return -1;
      if (got > 0) continue;
      if (r->len == r->pos) return 0; /* end, nothing left */
    }
    const size_t raw = nl ? (size_t)(nl - (r->data + r->pos)) : r->len - r->pos;
    size_t n = raw;
    if (n - (n > 0 && r->data[r->pos + n - 1] == '\r') > MSCI_LINE_MAX) {
      r->st = msci_fail(MSC_E_BAD_FORMAT,
                        "%s line %lld: longer than %zu bytes (the limit of a line)", r->path,
                        (long long)(r->line_no + 1), MSCI_LINE_MAX);
      return -1;
    }
    if (n + 1 > r->line_cap) {
      char *p = realloc(r->line, n + 1);
      if (!p) {
        r->st = msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory reading %s", r->path);
        return -1;
      }
      r->line = p;
      r->line_cap = n + 1;
    }
    memcpy(r->line, r->data + r->pos, n);
    if (n > 0 && r->line[n - 1] == '\r') n--;
    r->line[n] = '\0';
    r->pos += raw + (nl ? 1 : 0);
    r->line_no++;
    return 1;
  }
}

msc_status msci_lines_open(msci_lines *r, const char *path) {
  memset(r, 0, sizeof *r);
  r->path = path;
  /* Not fopen: a FIFO named as a table would block it until a writer comes. */
  int fd;
  uint64_t size;
  MSCI_TRY(msci_file_open_regular(path, &fd, &size));
  if (!(r->f = fdopen(fd, "rb"))) {
    int e = errno;
    close(fd);
    return msci_fail(MSC_E_IO, "cannot open %s: %s", path, strerror(e));
  }
  unsigned char magic[4] = {0};
  size_t got = fread(magic, 1, 4, r->f);
  rewind(r->f);
  if (got == 4 && magic[0] == 0x28 && magic[1] == 0xB5 && magic[2] == 0x2F &&
      magic[3] == 0xFD) {
    if (!(r->z = ZSTD_createDStream())) {
      fclose(r->f);
      return msci_fail(MSC_E_OUT_OF_MEMORY, "zstd stream");
    }
    ZSTD_initDStream(r->z);
    /* A frame header alone makes the decoder allocate its window: bounded here, as the
     * zstd tool bounds it without --memory (2^27 = 128 MiB), so that a tiny hostile
     * file cannot claim more (found by tests/fuzz/fuzz_lines.c; the BigEarthNet v2
     * table has an 8 MiB window). A larger window is refused as MSC_E_BAD_FORMAT. */
    ZSTD_DCtx_setParameter(r->z, ZSTD_d_windowLogMax, 27);
  }
  return MSC_OK;
}

void msci_lines_close(msci_lines *r) {
  if (r->f) fclose(r->f);
  if (r->z) ZSTD_freeDStream(r->z);
  free(r->data);
  free(r->line);
}
