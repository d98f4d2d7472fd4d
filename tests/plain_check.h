/*
 * plain_check.h — the checks of the test programs that run without Check's fork
 * (test_backend_ops.c, test_inplace_ops.c: CUDA does not survive a fork once the parent
 * touched it). CHECK counts a check and, when cond is false, prints the message with
 * its place and counts a failure; main returns 1 when g_failures > 0.
 */
#ifndef MOSAIC_TESTS_PLAIN_CHECK_H
#define MOSAIC_TESTS_PLAIN_CHECK_H

#include <stdio.h>

static int g_failures, g_checks;

#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    ++g_checks;                                                                                \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                     \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, "\n");                                                                   \
      ++g_failures;                                                                            \
    }                                                                                          \
  } while (0)

#endif /* MOSAIC_TESTS_PLAIN_CHECK_H */
