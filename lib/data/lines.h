/*
 * lines.h — reading a text table line by line, plain or zstd-compressed (detected by the
 * Layer: data (lib/data/README.md says what it owns and may include).
 * magic number), so metadata tables can be shipped compressed (docs/data.md). Used by the
 * dataset openers. A zstd frame may use a window of at most 128 MiB (the zstd tool's own
 * limit without --memory), which the decoder allocates when the frame starts.
 */
#ifndef MOSAIC_LIB_LINES_H
#define MOSAIC_LIB_LINES_H

#include <stdio.h>
#include <zstd.h>

#include "mosaic/mosaic.h"

typedef struct msci_lines {
  FILE *f;
  ZSTD_DStream *z; /* NULL: plain */
  unsigned char in[1 << 16];
  ZSTD_inBuffer zin;
  int eof;
  int z_done; /* last ZSTD_decompressStream returned 0 (a frame ended) */
  char *data; /* decoded bytes not yet consumed: data[pos..len) */
  size_t pos, len, cap;
  char *line; /* current line, NUL-terminated */
  size_t line_cap;
  const char *path;
  msc_status st; /* the error of a -1 return */
} msci_lines;

/* Opens path (plain or zstd). MSC_E_IO names the file. */
msc_status msci_lines_open(msci_lines *r, const char *path);
/* Next line without its "\n" / "\r\n" into r->line: 1, 0 at the end, -1 on error (r->st
 * holds the status, msc_last_error() the message naming the file). */
int msci_lines_next(msci_lines *r);
void msci_lines_close(msci_lines *r);

#endif
