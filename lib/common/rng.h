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
/* Standard normal (Box–Muller, one per call: weight initialisation, synthetic data). */
double msci_rng_normal(msci_rng *r);
/* n standard normals into out by Marsaglia's polar method (the augmentation's speckle and
 * noise: several times faster than n msci_rng_normal calls, other numbers): pairs
 * (u·f, v·f), u and v = 2·uniform − 1 drawn until 0 < s = u² + v² < 1, f = √((−2 ln s)
 * / s); with n odd the last pair's second value is dropped, so calls of even n give the
 * numbers of one call of their total. */
void msci_rng_normals(msci_rng *r, double *out, size_t n);

#endif
