/*
 * npy.h — reading NumPy .npy arrays (PASTIS stores its T×C×H×W time series this way).
 * Layer: data (lib/data/README.md says what it owns and may include).
 *
 * The format (numpy/lib/format.py, NEP 1): the magic "\x93NUMPY", a major and a minor
 * version byte (1.0, 2.0 or 3.0), the header length (little-endian: 2 bytes for 1.0,
 * 4 bytes for 2.0 and 3.0), the header — the repr of a Python dict with exactly the
 * keys 'descr', 'fortran_order' and 'shape', padded with spaces and ending in '\n',
 * ASCII for 1.0/2.0, UTF-8 for 3.0 — and then the array's bytes, in C (row-major) or
 * Fortran (column-major) order.
 *
 * Supported dtypes: uint8, int16, uint16, int32, uint32, int64, float16, float32 and
 * float64, little- or big-endian ('<u2', '>f8', '|u1'), in either order. Every array
 * is returned as float32 in C order, whatever the file's dtype and order.
 *
 * Files are treated as hostile: the header is parsed by a small strict parser (the
 * rules are in npy.c and docs/data.md, "NumPy arrays") and every refusal is
 * MSC_E_BAD_FORMAT with a message naming the file and what is wrong. No allocation is
 * ever sized by a header value: only by the bytes actually present.
 *
 * Two readers share the header parser and the element conversions: msci_npy reads the
 * whole file into memory; msci_npy_file keeps the file open and reads boxes (windows) of
 * the array with pread, for samples that need a few pixels of a large file (a PASTIS
 * DATA_S2 array is T × 10 × 128 × 128 int16, about 20 MB).
 *
 * Thread safety: an open msci_npy or msci_npy_file is read-only (the file reader uses
 * only pread, no file position), so every getter and reader may be called concurrently
 * on one handle.
 */
#ifndef MOSAIC_LIB_NPY_H
#define MOSAIC_LIB_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

/* Most dimensions an array may have (NumPy 1.x's NPY_MAXDIMS); files with more are
 * refused. */
#define MSCI_NPY_MAX_DIMS 32

/* Element types (msci_npy_dtype). The byte order is separate (msci_npy_big_endian). */
#define MSCI_NPY_U8  1 /* '|u1' */
#define MSCI_NPY_I16 2 /* '<i2' / '>i2' */
#define MSCI_NPY_U16 3 /* '<u2' / '>u2' */
#define MSCI_NPY_I32 4 /* '<i4' / '>i4' */
#define MSCI_NPY_U32 5 /* '<u4' / '>u4' */
#define MSCI_NPY_I64 6 /* '<i8' / '>i8' */
#define MSCI_NPY_F16 7 /* '<f2' / '>f2' */
#define MSCI_NPY_F32 8 /* '<f4' / '>f4' */
#define MSCI_NPY_F64 9 /* '<f8' / '>f8' */

/* An open, fully validated .npy array held in memory. */
typedef struct msci_npy msci_npy;

/*
 * Reads the whole file at path into memory and validates it. The file is read, not
 * mapped: a mapping of a file that another process truncates turns later accesses into
 * SIGBUS, and the library must never crash on a file. On success *out owns a copy;
 * release it with msci_npy_close.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT for NULL; MSC_E_IO (file named, strerror) when
 * it cannot be opened or read, is not a regular file or changes size while read;
 * MSC_E_BAD_FORMAT naming the file and the fault; MSC_E_OUT_OF_MEMORY. *out is
 * untouched on error.
 */
msc_status msci_npy_open(const char *path, msci_npy **out);

/* Same as msci_npy_open for size bytes at data, which are copied (the caller keeps
 * them; nothing points into them after the call). data may be NULL when size is 0
 * (then the result is MSC_E_BAD_FORMAT). Messages name the input "<memory>". */
msc_status msci_npy_open_memory(const void *data, size_t size, msci_npy **out);

/* Releases npy; accepts NULL. */
void msci_npy_close(msci_npy *npy);

/* The array's shape: *ndim (0..MSCI_NPY_MAX_DIMS; 0 is a scalar) and dims[0..*ndim),
 * each >= 0. dims must have room for MSCI_NPY_MAX_DIMS values (it may be NULL when only
 * ndim is wanted). Returns MSC_OK or MSC_E_INVALID_ARGUMENT (npy or ndim NULL); outputs
 * are untouched on error. */
msc_status msci_npy_shape(const msci_npy *npy, int32_t *ndim, int64_t *dims);

/* Number of elements (the product of the dims; 1 for a scalar, 0 when a dim is 0);
 * 0 for NULL. Always fits in memory: the file holds count × itemsize bytes. */
size_t msci_npy_count(const msci_npy *npy);

/* MSCI_NPY_* of the elements, or 0 for NULL. */
int32_t msci_npy_dtype(const msci_npy *npy);

/* The dtype's NumPy name ("int16", "float32", ...) for an MSCI_NPY_* value; "unknown"
 * for any other value. Static storage. */
const char *msci_npy_dtype_name(int32_t dtype);

/* Bytes per element (1, 2, 4 or 8); 0 for NULL. */
size_t msci_npy_itemsize(const msci_npy *npy);

/* 1 when the file's elements are big-endian, 0 when little-endian or single bytes (and
 * for NULL). */
int32_t msci_npy_big_endian(const msci_npy *npy);

/* 1 when the file stores the array in Fortran (column-major) order, 0 for C order (and
 * for NULL). The readers below return C order either way. */
int32_t msci_npy_fortran_order(const msci_npy *npy);

/* The format's major version (1, 2 or 3); 0 for NULL. */
int32_t msci_npy_version(const msci_npy *npy);

/* The array's bytes exactly as in the file (count × itemsize bytes, in the file's order
 * and byte order, possibly unaligned) and their count; the pointer lives as long as
 * npy. Returns MSC_OK or MSC_E_INVALID_ARGUMENT for NULL. */
msc_status msci_npy_raw(const msci_npy *npy, const void **bytes, size_t *nbytes);

/*
 * Converts the whole array to float32 into dst[0..count), in C order whatever the
 * file's order. Integers convert exactly up to 2^24 and beyond that round to nearest
 * (ties to even), as do float64 values (those beyond float's range become infinities);
 * float16 converts exactly (subnormals, infinities, NaN kept NaN). cap is dst's size
 * in elements; dst may be NULL when the count is 0.
 * Returns MSC_OK; MSC_E_BUFFER_TOO_SMALL naming both sizes when cap < count (dst is
 * untouched); MSC_E_INVALID_ARGUMENT for NULL.
 */
msc_status msci_npy_read_f32(const msci_npy *npy, float *dst, size_t cap);

/*
 * Converts the sub-array at index along axis 0 (a dims[1] × ... × dims[ndim-1] array,
 * count / dims[0] elements: one date t of a T×C×H×W series) to float32 into dst, in C
 * order, converting nothing else. Same conversions as msci_npy_read_f32.
 * Returns MSC_OK; MSC_E_SHAPE for a scalar (no axis 0); MSC_E_INVALID_ARGUMENT when
 * index is not in [0, dims[0]) or for NULL; MSC_E_BUFFER_TOO_SMALL when cap is less
 * than the sub-array's count. dst is untouched on error.
 */
msc_status msci_npy_read_index_f32(const msci_npy *npy, int64_t index, float *dst, size_t cap);

/* ------------------------------------------------------------------------------ */
/* Windowed reads from an open file                                                */
/* ------------------------------------------------------------------------------ */

/* An open .npy file whose header is validated; the array is read in boxes. */
typedef struct msci_npy_file msci_npy_file;

/*
 * Opens path and reads and validates only its header, with the same rules and messages
 * as msci_npy_open. The path must name a regular file (checked on a non-blocking
 * descriptor before anything is read: a FIFO is refused at once, never waited on) whose
 * size is exactly the header plus count × itemsize bytes. The descriptor stays open
 * (O_CLOEXEC) until msci_npy_file_close. The file is read with pread, never mapped: a
 * file that shrinks later gives MSC_E_IO from msci_npy_file_read_box, not SIGBUS.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT for NULL; MSC_E_IO (file named) when it cannot
 * be opened, stat'ed or read or is not a regular file; MSC_E_BAD_FORMAT naming the file
 * and the fault (a size mismatch names the actual and the expected file sizes);
 * MSC_E_OUT_OF_MEMORY. *out is untouched on error.
 */
msc_status msci_npy_file_open(const char *path, msci_npy_file **out);

/* Closes the file and releases f; accepts NULL. */
void msci_npy_file_close(msci_npy_file *f);

/* Number of dimensions (0..MSCI_NPY_MAX_DIMS; 0 for a scalar); -1 for NULL. */
int32_t msci_npy_file_ndim(const msci_npy_file *f);

/* The ndim dimensions (each >= 0), valid as long as f; NULL for NULL. */
const int64_t *msci_npy_file_dims(const msci_npy_file *f);

/* MSCI_NPY_* of the elements; 0 for NULL. */
int32_t msci_npy_file_dtype(const msci_npy_file *f);

/*
 * Bytes of scratch msci_npy_file_read_box needs for a box of cnt[0..ndim) elements per
 * dimension, whatever its position: at most 1 MiB (reads are split to that size), and
 * much less for small boxes (a run of rows of one T×C plane spans at most one plane). 0
 * for an empty box, for f NULL, cnt NULL with ndim > 0, or a count outside [0, dims[d]]
 * (read_box refuses those). A loader thread can size one buffer for its largest box and
 * reuse it for every call.
 */
size_t msci_npy_file_box_scratch(const msci_npy_file *f, const int64_t *cnt);

/*
 * Reads the box lo[d] .. lo[d] + cnt[d] - 1 of every dimension d (ndim entries in lo and
 * cnt; both may be NULL for a scalar) as float32 into out: prod(cnt) floats in C order of
 * the box, with the conversions of msci_npy_read_f32, for C- and Fortran-order files of
 * any supported dtype and byte order. An empty box (a count of 0) reads nothing.
 *
 * Reads: C order — when the box's trailing dimensions are whole, each contiguous run is
 * one pread; when the last dimension is partial, the box's rows of one index of the other
 * dimensions (e.g. one (t, c) of a T×C×H×W box) are one pread covering the rows' span,
 * gaps included. Fortran order is read by runs along the first dimension, one pread per
 * span of runs along the second: a box of a Fortran file takes more preads (one per
 * index of dimensions 2..ndim-1). Every pread is at most 1 MiB (longer runs are split).
 *
 * scratch: a buffer of scratch_size bytes, at least msci_npy_file_box_scratch(f, cnt),
 * used for the raw bytes; or NULL, and the call allocates the buffer and frees it before
 * returning. Thread-safe on one handle with a scratch per thread.
 *
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT for NULL (out may be NULL only for an empty box)
 * or a box outside the dims (named); MSC_E_BUFFER_TOO_SMALL when scratch_size is short
 * (both sizes named); MSC_E_IO naming the file when a pread fails or ends early (the file
 * shrank after it was opened); MSC_E_OUT_OF_MEMORY. out is untouched on an argument
 * error; on MSC_E_IO part of it may have been written.
 */
msc_status msci_npy_file_read_box(const msci_npy_file *f, const int64_t *lo, const int64_t *cnt,
                                  float *out, void *scratch, size_t scratch_size);

#endif /* MOSAIC_LIB_NPY_H */
