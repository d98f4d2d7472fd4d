/*
 * replay_main.c — runs a fuzz target over the files named on the command line, so that
 * a corpus (tests/fuzz/corpus/<target>) is replayed by ctest with any C compiler, and a
 * crash found by libFuzzer can be reproduced without clang. Linked into every target's
 * replay program; libFuzzer builds bring their own main instead.
 *
 * Exits 0 when every file was run, 1 when a file could not be read (a failed check in
 * the target aborts, which ctest reports as a failure).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  size_t cap = 4096;
  unsigned char *buf = malloc(cap);
  *len = 0;
  size_t r;
  while (buf && (r = fread(buf + *len, 1, cap - *len, fp)) > 0) {
    *len += r;
    if (*len == cap) {
      unsigned char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(fp);
  return buf;
}

int main(int argc, char **argv) {
  int status = 0;
  for (int i = 1; i < argc; i++) {
    size_t len = 0;
    unsigned char *buf = read_all(argv[i], &len);
    if (!buf) {
      fprintf(stderr, "replay: cannot read %s\n", argv[i]);
      status = 1;
      continue;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
  }
  printf("replay: %d inputs\n", argc - 1);
  return status;
}
