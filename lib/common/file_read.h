/*
 * file_read.h — reading a whole file into memory, or parts of it with pread, for the
 * parsers of untrusted files (safetensors model files, NumPy arrays, JSON and GeoJSON
 * tables). msci_file_open_regular is the one way the library opens a file it reads: the
 * line reader of tables (data/lines.c) and the GeoTIFF reader (data/raster.c) use it too,
 * so that a FIFO or a device named by a data file never blocks or feeds a parser.
 * Layer: common (lib/common/README.md says what it owns and may include).
 */
#ifndef MOSAIC_LIB_FILE_READ_H
#define MOSAIC_LIB_FILE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

/* Reads the regular file at path into a new buffer of *len bytes (at least 1 byte is
 * allocated, so an empty file gives a valid pointer); the caller frees it with free().
 * Refused with MSC_E_IO and the path in the message: a file that cannot be opened or
 * stat'ed, anything but a regular file (a FIFO is refused without waiting for a writer),
 * a size past the address space, a read error, and a file that shrank or grew while it
 * was read. MSC_E_OUT_OF_MEMORY when the buffer cannot be had. *bytes and *len are
 * untouched on error. */
msc_status msci_file_read_all(const char *path, unsigned char **bytes, size_t *len);

/* Opens the regular file at path for reading (O_CLOEXEC) and gives its descriptor and
 * size. The open is non-blocking, so a FIFO is refused at once rather than waiting for a
 * writer; the flag is cleared again before returning (reads of a regular file block as
 * usual). MSC_E_IO naming the path: cannot open or stat, not a regular file, a size past
 * the address space. *fd and *size are untouched on error; the caller closes *fd. */
msc_status msci_file_open_regular(const char *path, int *fd, uint64_t *size);

/* Reads exactly n bytes at offset off of fd into buf with pread (retried on EINTR and
 * after partial reads; no file position is used, so threads may share fd). MSC_E_IO
 * naming path: a read error (strerror) or end of file before n bytes (the file is
 * shorter than its size when opened: it shrank). */
msc_status msci_file_pread(int fd, const char *path, void *buf, size_t n, uint64_t off);

/* Writes all of buf to fd, retrying after EINTR and short writes: 0, or an errno value
 * (EIO for a write that wrote nothing). The savers (model files, .npy) use it. */
int msci_file_write_all(int fd, const void *buf, size_t len);

#endif /* MOSAIC_LIB_FILE_READ_H */
