/*
 * safetensors.h — reading and writing safetensors files (model files, checkpoints).
 * Layer: model (lib/model/README.md says what it owns and may include).
 *
 * The format (huggingface/safetensors): an 8-byte little-endian unsigned header length
 * N, then N bytes of UTF-8 JSON, then the data buffer. The JSON is an object mapping
 * each tensor name to {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin,
 * end]}, offsets in bytes relative to the start of the data buffer, plus an optional
 * "__metadata__" object of string values. The header may end in spaces; the ranges of
 * the tensors must cover the whole buffer exactly, without holes or overlaps.
 *
 * Files written here are plain F32 safetensors that any standard reader opens.
 * Files read here are treated as hostile: every length, offset, dtype and shape is
 * validated at open, before any tensor byte is used, and no allocation is ever sized
 * by a number the header claims (only by bytes actually present).
 *
 * Thread safety: an open msci_st_file is read-only, so every getter and
 * msci_st_read_f32 may be called concurrently on one file. msci_st_write is
 * reentrant (separate paths, or the same path: the last rename wins).
 */
#ifndef MOSAIC_LIB_SAFETENSORS_H
#define MOSAIC_LIB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

/* Most dimensions a tensor may have (files with more are refused). */
#define MSCI_ST_MAX_DIMS 8
/* Longest tensor name in bytes, NUL excluded. */
#define MSCI_ST_MAX_NAME 255
/* Largest JSON header accepted or written: 100 MiB, the order of the reference
 * implementation's limit (100 MB). */
#define MSCI_ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)

/* One float32 tensor to write. name: non-empty UTF-8, at most MSCI_ST_MAX_NAME bytes,
 * not "__metadata__", unique among the tensors of one file. dims[0..ndim) >= 0,
 * 0 <= ndim <= MSCI_ST_MAX_DIMS (ndim == 0 is a scalar: one element). data: the
 * row-major elements; may be NULL only when the element count is 0. */
typedef struct msci_st_tensor_in {
  const char *name;
  int32_t ndim;
  const int64_t *dims;
  const float *data;
} msci_st_tensor_in;

/* One "__metadata__" entry: key and value are UTF-8 strings; keys are unique. */
typedef struct msci_st_meta {
  const char *key;
  const char *value;
} msci_st_meta;

/*
 * Writes an F32 safetensors file atomically: a temporary file in path's directory
 * (mkstemp), written fully, fsync'd, given mode 0644, renamed over path, then the
 * directory fsync'd. On any failure before the rename the temporary is removed and a
 * file already at path is left untouched. Tensors are written sorted by name (strcmp
 * order) and the header JSON is compact with sorted keys, padded with spaces so that
 * the data starts at an 8-byte boundary: the same inputs always give the same bytes.
 * "__metadata__" is omitted when n_meta is 0. meta may be NULL when n_meta is 0,
 * tensors when n_tensors is 0.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT for a NULL/invalid argument, a duplicate name
 * or key, a bad dimension or a header that would exceed MSCI_ST_MAX_HEADER (nothing is
 * created then); MSC_E_IO naming the file and the system error; MSC_E_OUT_OF_MEMORY.
 * If only the final directory fsync fails, MSC_E_IO is returned although the new file
 * is already in place (its durability is then not guaranteed). A symbolic link at path
 * is replaced by the file, not followed. The mode is 0644 whatever the umask.
 */
msc_status msci_st_write(const char *path, const msci_st_meta *meta, size_t n_meta,
                         const msci_st_tensor_in *tensors, size_t n_tensors);

/* An open, fully validated safetensors file held in memory. */
typedef struct msci_st_file msci_st_file;

/*
 * Reads the whole file at path and validates it (rules in safetensors.c). On success
 * *out owns a copy of the file; release it with msci_st_close.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT for NULL; MSC_E_IO (file named, strerror)
 * when it cannot be opened or read or is not a regular file; MSC_E_BAD_FORMAT naming
 * the file and the offending tensor or field; MSC_E_OUT_OF_MEMORY. *out is untouched
 * on error.
 */
msc_status msci_st_open(const char *path, msci_st_file **out);

/* Same as msci_st_open for a buffer of len bytes, which is copied (the caller keeps
 * it). bytes may be NULL when len is 0 (then the result is MSC_E_BAD_FORMAT). */
msc_status msci_st_open_memory(const void *bytes, size_t len, msci_st_file **out);

/* Releases f; accepts NULL. */
void msci_st_close(msci_st_file *f);

/* The "__metadata__" value of key, or NULL if there is none (or f/key is NULL). The
 * string lives as long as f. */
const char *msci_st_meta_get(const msci_st_file *f, const char *key);

/* Number of "__metadata__" entries (0 for NULL) and entry i of them in strcmp order of
 * the keys (NULL when i is out of range); strings live as long as f. */
size_t msci_st_meta_count(const msci_st_file *f);
const char *msci_st_meta_key(const msci_st_file *f, size_t i);

/* Number of tensors (0 for NULL). */
size_t msci_st_count(const msci_st_file *f);

/* Name of tensor i, tensors sorted by name (strcmp order); NULL when i >= count. The
 * string lives as long as f. */
const char *msci_st_name(const msci_st_file *f, size_t i);

/* The dtype string of the tensor called name ("F32", "BF16", ...), or NULL if there
 * is none. Static storage. */
const char *msci_st_dtype(const msci_st_file *f, const char *name);

/* Shape of the tensor called name: *ndim (0..MSCI_ST_MAX_DIMS) and dims[0..*ndim);
 * dims must have room for MSCI_ST_MAX_DIMS values. Returns MSC_OK;
 * MSC_E_NOT_FOUND if there is no such tensor; MSC_E_INVALID_ARGUMENT for NULL.
 * Outputs are untouched on error. */
msc_status msci_st_shape(const msci_st_file *f, const char *name, int32_t *ndim, int64_t *dims);

/* The tensor's raw bytes (little-endian, possibly unaligned) and their count; the
 * pointer lives as long as f. MSC_E_NOT_FOUND / MSC_E_INVALID_ARGUMENT as above. */
msc_status msci_st_raw(const msci_st_file *f, const char *name, const void **bytes,
                       size_t *nbytes);

/*
 * Copies the tensor called name into dst[0..n) as float32, converting F16, BF16 and
 * F64 (F64 rounds to nearest; values beyond float's range become infinities).
 * n must equal the tensor's element count (1 for a scalar); dst may be NULL when n is 0.
 * Returns MSC_OK; MSC_E_NOT_FOUND; MSC_E_SHAPE when n differs from the element count;
 * MSC_E_UNSUPPORTED naming the tensor and its dtype for any other dtype;
 * MSC_E_INVALID_ARGUMENT for NULL. dst is untouched on error.
 */
msc_status msci_st_read_f32(const msci_st_file *f, const char *name, float *dst, size_t n);

#endif /* MOSAIC_LIB_SAFETENSORS_H */
