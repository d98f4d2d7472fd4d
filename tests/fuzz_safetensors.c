/*
 * fuzz_safetensors.c — fuzz target for the safetensors reader (lib/safetensors.c).
 *
 * Each input is opened with msci_st_open_memory; when it is accepted, every tensor's
 * shape, dtype and raw bytes are fetched and the tensor is read as float32, and the
 * promises of an accepted file are checked (byte sizes match shape x dtype, the ranges
 * lie inside the input). A refused input must be refused with MSC_E_BAD_FORMAT.
 * Any other status, a crash or a sanitizer report is a bug.
 *
 * libFuzzer build (clang), from the repository root:
 *   clang -std=c11 -g -O1 -D_GNU_SOURCE -DMSC_LIBFUZZER -fsanitize=fuzzer,address,undefined \
 *     -Iinclude -Ilib -Ibackends tests/fuzz_safetensors.c lib/safetensors.c lib/status.c \
 *     $(pkg-config --cflags --libs jansson) -o fuzz_safetensors
 *   ./fuzz_safetensors -malloc_limit_mb=64 -max_len=4096 CORPUS_DIR
 * (-malloc_limit_mb catches any allocation sized by a header claim rather than by the
 * input; seed CORPUS_DIR with a few files written by msci_st_write.)
 *
 * Without MSC_LIBFUZZER the same file builds a plain program that runs the target over
 * the files named on its command line (corpus replay, e.g. from ctest, no clang needed):
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Ilib -Ibackends tests/fuzz_safetensors.c \
 *     lib/safetensors.c lib/status.c -ljansson -o fuzz_safetensors_replay
 *   ./fuzz_safetensors_replay FILE...
 * It exits 0 when every file was processed, 1 if a file could not be read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborting is how a fuzz target reports a broken promise. */
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "fuzz_safetensors: check failed: %s (line %d)\n", #cond, __LINE__); \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

static unsigned dtype_bits(const char *d) {
  static const char *const b8[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0"};
  static const char *const b16[] = {"I16", "U16", "F16", "BF16"};
  static const char *const b32[] = {"I32", "U32", "F32"};
  static const char *const b64[] = {"I64", "U64", "F64", "C64"};
  for (size_t i = 0; i < sizeof b8 / sizeof b8[0]; i++)
    if (strcmp(d, b8[i]) == 0)
      return 8;
  for (size_t i = 0; i < sizeof b16 / sizeof b16[0]; i++)
    if (strcmp(d, b16[i]) == 0)
      return 16;
  for (size_t i = 0; i < sizeof b32 / sizeof b32[0]; i++)
    if (strcmp(d, b32[i]) == 0)
      return 32;
  for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++)
    if (strcmp(d, b64[i]) == 0)
      return 64;
  if (strcmp(d, "F4") == 0)
    return 4;
  if (strcmp(d, "F6_E2M3") == 0 || strcmp(d, "F6_E3M2") == 0)
    return 6;
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
    if (dst == NULL)
      continue;
    rc = msci_st_read_f32(f, name, dst, (size_t)count);
    FUZZ_CHECK(rc == MSC_OK || rc == MSC_E_UNSUPPORTED);
    if (count > 0)
      FUZZ_CHECK(msci_st_read_f32(f, name, dst, (size_t)count - 1) != MSC_OK);
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

#ifndef MSC_LIBFUZZER
int main(int argc, char **argv) {
  int status = 0;
  for (int i = 1; i < argc; i++) {
    FILE *fp = fopen(argv[i], "rb");
    if (fp == NULL) {
      fprintf(stderr, "fuzz_safetensors: cannot open %s\n", argv[i]);
      status = 1;
      continue;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while (buf != NULL && (r = fread(buf + len, 1, cap - len, fp)) > 0) {
      len += r;
      if (len == cap) {
        unsigned char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
          free(buf);
          buf = NULL;
          break;
        }
        buf = bigger;
        cap *= 2;
      }
    }
    int err = ferror(fp);
    fclose(fp);
    if (buf == NULL || err) {
      fprintf(stderr, "fuzz_safetensors: cannot read %s\n", argv[i]);
      free(buf);
      status = 1;
      continue;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
  }
  return status;
}
#endif
