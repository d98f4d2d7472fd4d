/*
 * rng.c — xoshiro256** (Blackman & Vigna) with splitmix64 seeding; see rng.h.
 */
#include "common/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void msci_rng_seed(msci_rng *r, uint64_t seed, const char *stream) {
  /* FNV-1a of the label mixed into the seed. */
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char *p = (const unsigned char *)(stream ? stream : ""); *p; ++p)
    h = (h ^ *p) * 0x100000001b3ull;
  uint64_t x = seed ^ h;
  for (int i = 0; i < 4; ++i) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t msci_rng_next(msci_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double msci_rng_uniform(msci_rng *r) {
  return (double)(msci_rng_next(r) >> 11) * 0x1.0p-53;
}

double msci_rng_normal(msci_rng *r) {
  double u1 = msci_rng_uniform(r), u2 = msci_rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* msci_rng_normal n times, in three passes over a block so that the generator runs
 * alone, log and cos are plain calls in tight loops and the square roots and products
 * vectorise (a square root is correctly rounded, so its vector form gives the scalar
 * bits). The same operations on the same values: the same numbers. */
void msci_rng_normals(msci_rng *r, double *out, size_t n) {
  enum { BLOCK = 256 };
  double u2[BLOCK];
  for (size_t at = 0; at < n; at += BLOCK) {
    const size_t m = n - at < BLOCK ? n - at : BLOCK;
    double *o = out + at;
    for (size_t i = 0; i < m; ++i) {
      double u1 = msci_rng_uniform(r);
      u2[i] = msci_rng_uniform(r);
      o[i] = u1 < 1e-300 ? 1e-300 : u1;
    }
    for (size_t i = 0; i < m; ++i) o[i] = -2.0 * log(o[i]);
    for (size_t i = 0; i < m; ++i) u2[i] = cos(2.0 * M_PI * u2[i]);
    for (size_t i = 0; i < m; ++i) o[i] = sqrt(o[i]) * u2[i];
  }
}
