/*
 * rng.h — the library's one random generator (xoshiro256**, seeded with splitmix64):
 * Layer: common (lib/common/README.md says what it owns and may include).
 * fast, small state, identical streams on every platform, so a seed reproduces a model.
 */
#ifndef MOSAIC_LIB_RNG_H
#define MOSAIC_LIB_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct msci_rng {
  uint64_t s[4];
} msci_rng;

/* Seeds from a 64-bit seed and a stream label (e.g. a parameter's name), so adding a
 * parameter or a consumer never shifts the numbers another one gets. */
void msci_rng_seed(msci_rng *r, uint64_t seed, const char *stream);
uint64_t msci_rng_next(msci_rng *r);
/* Uniform in [0, 1). */
double msci_rng_uniform(msci_rng *r);
/* Standard normal (Box–Muller). */
double msci_rng_normal(msci_rng *r);
/* n standard normals into out: exactly the numbers of n msci_rng_normal calls, faster. */
void msci_rng_normals(msci_rng *r, double *out, size_t n);

#endif
