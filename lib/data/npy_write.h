/*
 * npy_write.h — a minimal NumPy .npy writer (format version 1.0): little-endian, C order,
 * the dtypes the synthetic datasets need. Layer: data (lib/data/README.md says what it owns
 * and may include). Used by the PASTIS-layout generator (lib/data/synth_pastis.c).
 *
 * The file is the 6-byte magic "\x93NUMPY", the version bytes 1 0, the header length
 * (uint16 little-endian) and the header, a Python dict literal written exactly as NumPy
 * writes it, e.g. "{'descr': '<i2', 'fortran_order': False, 'shape': (6, 10, 32, 32), }",
 * padded with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes;
 * then the elements in C order, little-endian whatever the host.
 */
#ifndef MOSAIC_LIB_NPY_WRITE_H
#define MOSAIC_LIB_NPY_WRITE_H

#include <stdint.h>

#include "mosaic/mosaic.h"

/* Largest number of dimensions msci_npy_write accepts. */
#define MSCI_NPY_WRITE_MAX_DIM 16

/* Writes the ndim-dimensional array data (shape[0] × ... × shape[ndim-1] elements, C
 * order, host byte order) to path as a .npy file: first to path + ".tmp", then renamed, so
 * that path never names a truncated file. dtype is the NumPy descr: "|u1" (uint8), "|i1",
 * "<i2" (int16), "<u2", "<i4", "<u4", "<i8", "<f4" (float32), "<f8". ndim 0..16 (0: a
 * scalar, one element); every shape[d] >= 0; data may be NULL only when there is no
 * element.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, an unknown dtype, a bad ndim or shape);
 * MSC_E_IO (the message names the file, the operation that failed — create, write, fsync,
 * close, rename — and the system's reason; the temporary file is removed and path is
 * untouched). The data is on disk (fsync) before the rename.
 * Thread-safe (calls writing to distinct paths are independent). */
msc_status msci_npy_write(const char *path, const char *dtype, int32_t ndim,
                          const int64_t *shape, const void *data);

#endif /* MOSAIC_LIB_NPY_WRITE_H */
