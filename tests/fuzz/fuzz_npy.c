/*
 * fuzz_npy.c — fuzz target for the NumPy .npy reader (lib/data/npy.c).
 *
 * Each input is opened with msci_npy_open_memory. A refused input must be refused with
 * MSC_E_BAD_FORMAT (or MSC_E_OUT_OF_MEMORY) and leave the output untouched. When it is
 * accepted, the promises of an accepted file are checked: the dims are non-negative,
 * at most MSCI_NPY_MAX_DIMS, and their product times the item size is exactly the raw
 * data's byte count, which lies inside the input; read_f32 succeeds and refuses a
 * buffer one element short without writing to it; each index of axis 0 read alone is
 * bit for bit the matching slab of the whole array. The same bytes, written to a
 * temporary file, are opened with msci_npy_file_open too: it accepts exactly what the
 * memory reader accepts (the same status when refused), gives the same shape and dtype,
 * and its full box and a box of the last element of every dimension read bit for bit
 * what read_f32 gives. Any other status, a crash or a sanitizer report is a bug.
 *
 * Built by CMake: with -DMSC_BUILD_FUZZERS=ON and clang as a libFuzzer program
 * (tests/fuzz/CMakeLists.txt, docs/conventions.md "Fuzzing"); always as a replay program
 * (replay_main.c) that ctest runs over tests/fuzz/corpus/npy.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborting is how a fuzz target reports a broken promise. */
#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "fuzz_npy: check failed: %s (line %d)\n", #cond, __LINE__);              \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

/* The input written to a temporary file (one per process, rewritten each time) and
 * opened with the windowed reader; NULL with *rc its status when refused, or MSC_E_IO
 * when no file could be written (then that half of the check is skipped). */
static msci_npy_file *open_as_file(const uint8_t *data, size_t size, msc_status *rc) {
  static char path[64];
  if (path[0] == 0) {
    snprintf(path, sizeof path, "/tmp/fuzz_npy_%ld.npy", (long)getpid());
  }
  *rc = MSC_E_IO; /* (a file that cannot be written skips the check, as an I/O error) */
  FILE *fp = fopen(path, "wb");
  if (fp == NULL) return NULL;
  int ok = (size == 0 || fwrite(data, 1, size, fp) == size);
  if (fclose(fp) != 0 || !ok) {
    unlink(path);
    return NULL;
  }
  msci_npy_file *sentinel = (msci_npy_file *)&sentinel;
  msci_npy_file *f = sentinel;
  *rc = msci_npy_file_open(path, &f);
  unlink(path); /* the descriptor stays valid */
  if (*rc != MSC_OK) {
    FUZZ_CHECK(f == sentinel);
    return NULL;
  }
  return f;
}

/* The file reader's boxes against the memory reader's whole array (count elements). */
static void check_file_reader(msci_npy_file *f, msci_npy *a, const float *all, size_t count) {
  int32_t ndim = msci_npy_file_ndim(f);
  int64_t dims[MSCI_NPY_MAX_DIMS];
  FUZZ_CHECK(msci_npy_shape(a, &ndim, dims) == MSC_OK && ndim == msci_npy_file_ndim(f));
  for (int32_t d = 0; d < ndim; d++) FUZZ_CHECK(msci_npy_file_dims(f)[d] == dims[d]);
  FUZZ_CHECK(msci_npy_file_dtype(f) == msci_npy_dtype(a));
  int64_t lo[MSCI_NPY_MAX_DIMS] = {0};
  float *box = malloc((count + 1) * sizeof *box);
  if (box == NULL) return;
  /* the full box (scratch allocated by the call) */
  FUZZ_CHECK(msci_npy_file_read_box(f, lo, dims, box, NULL, 0) == MSC_OK);
  FUZZ_CHECK(memcmp(box, all, count * sizeof *box) == 0);
  if (count > 0) { /* the last element, through a scratch of exactly the announced size */
    int64_t one[MSCI_NPY_MAX_DIMS];
    for (int32_t d = 0; d < ndim; d++) {
      lo[d] = dims[d] - 1;
      one[d] = 1;
    }
    size_t need = msci_npy_file_box_scratch(f, one);
    void *scratch = malloc(need);
    if (scratch != NULL) {
      FUZZ_CHECK(msci_npy_file_read_box(f, lo, one, box, scratch, need) == MSC_OK);
      FUZZ_CHECK(memcmp(box, all + count - 1, sizeof *box) == 0);
      free(scratch);
    }
  }
  free(box);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  msci_npy *sentinel = (msci_npy *)&sentinel;
  msci_npy *a = sentinel;
  msc_status rc = msci_npy_open_memory(data, size, &a);
  msc_status frc = MSC_OK;
  msci_npy_file *f = open_as_file(data, size, &frc);
  if (rc != MSC_OK) {
    FUZZ_CHECK(rc == MSC_E_BAD_FORMAT || rc == MSC_E_OUT_OF_MEMORY);
    FUZZ_CHECK(a == sentinel);
    FUZZ_CHECK(f == NULL && (frc == rc || frc == MSC_E_IO || frc == MSC_E_OUT_OF_MEMORY));
    return 0;
  }
  FUZZ_CHECK(frc == MSC_OK || frc == MSC_E_IO || frc == MSC_E_OUT_OF_MEMORY);
  int32_t ndim = -1;
  int64_t dims[MSCI_NPY_MAX_DIMS];
  FUZZ_CHECK(msci_npy_shape(a, &ndim, dims) == MSC_OK);
  FUZZ_CHECK(ndim >= 0 && ndim <= MSCI_NPY_MAX_DIMS);
  uint64_t count = 1;
  int zero = 0;
  for (int32_t d = 0; d < ndim; d++) {
    FUZZ_CHECK(dims[d] >= 0);
    if (dims[d] == 0) zero = 1;
  }
  if (zero)
    count = 0;
  else
    for (int32_t d = 0; d < ndim; d++) count *= (uint64_t)dims[d]; /* validated: no overflow */
  FUZZ_CHECK(msci_npy_count(a) == count);
  size_t isz = msci_npy_itemsize(a);
  FUZZ_CHECK(isz == 1 || isz == 2 || isz == 4 || isz == 8);
  FUZZ_CHECK(strcmp(msci_npy_dtype_name(msci_npy_dtype(a)), "unknown") != 0);
  int32_t v = msci_npy_version(a);
  FUZZ_CHECK(v >= 1 && v <= 3);
  const void *raw = NULL;
  size_t nbytes = 0;
  FUZZ_CHECK(msci_npy_raw(a, &raw, &nbytes) == MSC_OK);
  FUZZ_CHECK((uint64_t)nbytes == count * isz);
  FUZZ_CHECK(nbytes < size);
  /* count <= size here, so these allocations are bounded by the input */
  float *all = malloc(((size_t)count + 1) * sizeof *all);
  float *one = malloc(((size_t)count + 1) * sizeof *one);
  if (all == NULL || one == NULL) {
    free(all);
    free(one);
    msci_npy_file_close(f);
    msci_npy_close(a);
    return 0;
  }
  if (count > 0) {
    all[0] = 1234.5f;
    FUZZ_CHECK(msci_npy_read_f32(a, all, (size_t)count - 1) == MSC_E_BUFFER_TOO_SMALL);
    FUZZ_CHECK(all[0] == 1234.5f);
  }
  all[count] = -7.0f;
  FUZZ_CHECK(msci_npy_read_f32(a, all, (size_t)count + 1) == MSC_OK);
  FUZZ_CHECK(all[count] == -7.0f);
  if (ndim == 0) {
    FUZZ_CHECK(msci_npy_read_index_f32(a, 0, one, 1) == MSC_E_SHAPE);
  } else {
    FUZZ_CHECK(msci_npy_read_index_f32(a, -1, one, (size_t)count) == MSC_E_INVALID_ARGUMENT);
    FUZZ_CHECK(msci_npy_read_index_f32(a, dims[0], one, (size_t)count) ==
               MSC_E_INVALID_ARGUMENT);
    size_t inner = dims[0] > 0 ? (size_t)count / (size_t)dims[0] : 0;
    /* every index when the slabs are not empty; at most the first few when they are */
    int64_t n = inner > 0 ? dims[0] : (dims[0] < 4 ? dims[0] : 4);
    for (int64_t t = 0; t < n; t++) {
      FUZZ_CHECK(msci_npy_read_index_f32(a, t, one, inner) == MSC_OK);
      FUZZ_CHECK(memcmp(one, all + (size_t)t * inner, inner * sizeof *one) == 0);
    }
  }
  if (f != NULL) check_file_reader(f, a, all, (size_t)count);
  msci_npy_file_close(f);
  free(all);
  free(one);
  msci_npy_close(a);
  return 0;
}
