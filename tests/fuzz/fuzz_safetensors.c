/*
 * fuzz_safetensors.c — fuzz target for the safetensors reader (lib/model/safetensors.c).
 *
 * Each input is opened with msci_st_open_memory; when it is accepted, every tensor's
 * shape, dtype and raw bytes are fetched and the tensor is read as float32, and the
 * promises of an accepted file are checked (byte sizes match shape x dtype, the ranges
 * lie inside the input). A refused input must be refused with MSC_E_BAD_FORMAT.
 * Any other status, a crash or a sanitizer report is a bug.
 *
 * Built by CMake: with -DMSC_BUILD_FUZZERS=ON and clang as a libFuzzer program
 * (tests/fuzz/CMakeLists.txt, docs/conventions.md "Fuzzing"); always as a replay program
 * (replay_main.c) that ctest runs over tests/fuzz/corpus/safetensors.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborting is how a fuzz target reports a broken promise. */
#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "fuzz_safetensors: check failed: %s (line %d)\n", #cond, __LINE__);      \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

static unsigned dtype_bits(const char *d) {
  static const char *const b8[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0"};
  static const char *const b16[] = {"I16", "U16", "F16", "BF16"};
  static const char *const b32[] = {"I32", "U32", "F32"};
  static const char *const b64[] = {"I64", "U64", "F64", "C64"};
  for (size_t i = 0; i < sizeof b8 / sizeof b8[0]; i++)
    if (strcmp(d, b8[i]) == 0) return 8;
  for (size_t i = 0; i < sizeof b16 / sizeof b16[0]; i++)
    if (strcmp(d, b16[i]) == 0) return 16;
  for (size_t i = 0; i < sizeof b32 / sizeof b32[0]; i++)
    if (strcmp(d, b32[i]) == 0) return 32;
  for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++)
    if (strcmp(d, b64[i]) == 0) return 64;
  if (strcmp(d, "F4") == 0) return 4;
  if (strcmp(d, "F6_E2M3") == 0 || strcmp(d, "F6_E3M2") == 0) return 6;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  msci_st_file *f = NULL;
  msc_status rc = msci_st_open_memory(data, size, &f);
  if (rc != MSC_OK) {
    FUZZ_CHECK(rc == MSC_E_BAD_FORMAT || rc == MSC_E_OUT_OF_MEMORY);
    FUZZ_CHECK(f == NULL);
    return 0;
  }
  size_t total = 0;
  size_t n = msci_st_count(f);
  for (size_t i = 0; i < n; i++) {
    const char *name = msci_st_name(f, i);
    FUZZ_CHECK(name != NULL && name[0] != '\0');
    int32_t ndim = -1;
    int64_t dims[MSCI_ST_MAX_DIMS];
    FUZZ_CHECK(msci_st_shape(f, name, &ndim, dims) == MSC_OK);
    FUZZ_CHECK(ndim >= 0 && ndim <= MSCI_ST_MAX_DIMS);
    uint64_t count = 1;
    for (int32_t d = 0; d < ndim; d++) {
      FUZZ_CHECK(dims[d] >= 0);
      count *= (uint64_t)dims[d]; /* validated: no overflow unless a dim is 0 */
    }
    const char *dt = msci_st_dtype(f, name);
    FUZZ_CHECK(dt != NULL);
    unsigned bits = dtype_bits(dt);
    FUZZ_CHECK(bits > 0);
    const void *raw = NULL;
    size_t nbytes = 0;
    FUZZ_CHECK(msci_st_raw(f, name, &raw, &nbytes) == MSC_OK);
    FUZZ_CHECK((uint64_t)nbytes * 8 == count * bits);
    FUZZ_CHECK(nbytes <= size);
    total += nbytes;
    FUZZ_CHECK(total <= size);
    /* count * bits / 8 bytes lie in the input, so count <= 2 * size here */
    float *dst = malloc((size_t)count * sizeof *dst + 1);
    if (dst == NULL) continue;
    rc = msci_st_read_f32(f, name, dst, (size_t)count);
    FUZZ_CHECK(rc == MSC_OK || rc == MSC_E_UNSUPPORTED);
    if (count > 0) FUZZ_CHECK(msci_st_read_f32(f, name, dst, (size_t)count - 1) != MSC_OK);
    free(dst);
  }
  size_t nm = msci_st_meta_count(f);
  for (size_t i = 0; i < nm; i++) {
    const char *key = msci_st_meta_key(f, i);
    FUZZ_CHECK(key != NULL && msci_st_meta_get(f, key) != NULL);
  }
  msci_st_close(f);
  return 0;
}
