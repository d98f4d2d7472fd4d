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

/* The longest line accepted, without its "\n": a longer one is refused (MSC_E_BAD_FORMAT
 * naming the file and line) before more than about twice this much is buffered, so a small
 * zstd file that expands to one huge line costs megabytes, not gigabytes (docs/data.md,
 * "Limits"). Every field of a table lies within one line, so this bounds fields too. */
#define MSCI_LINE_MAX ((size_t)1 << 20)

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
  int64_t line_no; /* lines returned so far (1-based number of r->line) */
  const char *path;
  msc_status st; /* the error of a -1 return */
} msci_lines;

/* Opens path (plain or zstd). MSC_E_IO names the file; anything but a regular file (a
 * FIFO, a device) is refused without waiting on it (msci_file_open_regular). */
msc_status msci_lines_open(msci_lines *r, const char *path);
/* Next line without its "\n" / "\r\n" into r->line: 1, 0 at the end, -1 on error (r->st
 * holds the status, msc_last_error() the message naming the file; a line longer than
 * MSCI_LINE_MAX bytes is MSC_E_BAD_FORMAT naming its number). */
int msci_lines_next(msci_lines *r);
void msci_lines_close(msci_lines *r);

#endif
