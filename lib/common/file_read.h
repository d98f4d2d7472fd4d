/*
 * file_read.h — reading a whole file into memory, for the parsers of untrusted files
 * (safetensors model files, NumPy arrays).
 * Layer: common (lib/common/README.md says what it owns and may include).
 */
#ifndef MOSAIC_LIB_FILE_READ_H
#define MOSAIC_LIB_FILE_READ_H

#include <stddef.h>

#include "mosaic/mosaic.h"

/* Reads the regular file at path into a new buffer of *len bytes (at least 1 byte is
 * allocated, so an empty file gives a valid pointer); the caller frees it with free().
 * Refused with MSC_E_IO and the path in the message: a file that cannot be opened or
 * stat'ed, anything but a regular file (a FIFO is refused without waiting for a writer),
 * a size past the address space, a read error, and a file that shrank or grew while it
 * was read. MSC_E_OUT_OF_MEMORY when the buffer cannot be had. *bytes and *len are
 * untouched on error. */
msc_status msci_file_read_all(const char *path, unsigned char **bytes, size_t *len);

#endif /* MOSAIC_LIB_FILE_READ_H */
