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

/* Marsaglia's polar method, a block of pairs at a time: the draws and the rejections run
 * alone, then one log per pair (no cos: Box–Muller's cos was most of the augmentation's
 * time) and the square roots and products, which vectorise (a square root is correctly
 * rounded, so its vector form gives the scalar bits). Pair i is (u·f, v·f) with
 * f = √((−2 ln s) / s); with n odd the last pair's v·f is dropped. */
void msci_rng_normals(msci_rng *r, double *out, size_t n) {
  enum { PAIRS = 256 };
  double u[PAIRS], v[PAIRS], f[PAIRS];
  for (size_t at = 0; at < n; at += 2 * PAIRS) {
    const size_t left = n - at, m = left >= 2 * PAIRS ? PAIRS : (left + 1) / 2;
    for (size_t i = 0; i < m; ++i) {
      double a, b, s;
      do {
        a = 2.0 * msci_rng_uniform(r) - 1.0;
        b = 2.0 * msci_rng_uniform(r) - 1.0;
        s = a * a + b * b;
      } while (s >= 1.0 || s == 0.0);
      u[i] = a;
      v[i] = b;
      f[i] = s;
    }
    for (size_t i = 0; i < m; ++i) f[i] = -2.0 * log(f[i]) / f[i];
    for (size_t i = 0; i < m; ++i) f[i] = sqrt(f[i]);
    double *o = out + at;
    for (size_t i = 0; i < m; ++i) {
      o[2 * i] = u[i] * f[i];
      if (2 * i + 1 < left) o[2 * i + 1] = v[i] * f[i];
    }
  }
}
