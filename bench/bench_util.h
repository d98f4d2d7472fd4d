/* bench_util.h — timing, peak memory and argument helpers shared by the benchmarks. */
#ifndef MOSAIC_BENCH_UTIL_H
#define MOSAIC_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mosaic/mosaic.h"

/* Benchmarks stop at the first failing call, saying which and why. */
#define CHECK(call)                                                                            \
  do {                                                                                         \
    msc_status st_ = (call);                                                                   \
    if (st_ != MSC_OK) {                                                                       \
      fprintf(stderr, "%s: %s\n", #call, msc_last_error());                                    \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

/* Monotonic time in seconds. */
double bench_now(void);
/* Peak resident set size of this process so far, in MiB. */
double bench_peak_rss_mib(void);
/* Median of n values (sorts v). */
double bench_median(double *v, int n);
/* Value of "--name V" in argv, or def. */
const char *bench_arg(int argc, char **argv, const char *name, const char *def);
/* Fills n floats with a fixed pseudo-random pattern in [lo, hi). */
void bench_fill(float *x, int64_t n, float lo, float hi, uint32_t seed);

#endif
