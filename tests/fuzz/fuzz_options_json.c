/*
 * fuzz_options_json.c — fuzz target for msc_options_from_json, the parser that reads
 * users' configuration files (mosaic train --config) and model files' embedded options.
 *
 * The input, as a NUL-terminated string, is parsed into fresh options. Promises checked:
 * a refused input leaves a message in msc_last_error() and a known status code; an
 * accepted one survives a round trip — written with msc_options_to_json, read back into
 * new options and written again, the two texts are equal. Any other outcome, a crash or
 * a sanitizer report is a bug.
 *
 * Built as tests/fuzz/fuzz_safetensors.c is (see there).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "fuzz_options_json: check failed: %s (line %d)\n", #cond, __LINE__);     \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

static char *to_json(const msc_options *o) {
  size_t len = 0;
  FUZZ_CHECK(msc_options_to_json(o, NULL, 0, &len) == MSC_E_BUFFER_TOO_SMALL || len == 0);
  char *buf = malloc(len + 1);
  if (!buf) return NULL;
  FUZZ_CHECK(msc_options_to_json(o, buf, len + 1, NULL) == MSC_OK);
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  msc_options *o = NULL;
  FUZZ_CHECK(msc_options_create(&o) == MSC_OK);
  msc_status st = msc_options_from_json(o, text);
  if (st != MSC_OK) {
    FUZZ_CHECK(st == MSC_E_INVALID_ARGUMENT || st == MSC_E_BAD_FORMAT ||
               st == MSC_E_OUT_OF_MEMORY || st == MSC_E_NOT_FOUND);
    FUZZ_CHECK(msc_last_error()[0] != '\0');
  } else {
    char *a = to_json(o);
    msc_options *o2 = NULL;
    FUZZ_CHECK(msc_options_create(&o2) == MSC_OK);
    if (a) {
      FUZZ_CHECK(msc_options_from_json(o2, a) == MSC_OK);
      char *b = to_json(o2);
      if (b) FUZZ_CHECK(strcmp(a, b) == 0);
      free(b);
    }
    free(a);
    msc_options_free(o2);
  }
  msc_options_free(o);
  free(text);
  return 0;
}
