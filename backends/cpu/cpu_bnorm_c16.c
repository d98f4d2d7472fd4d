/*
 * cpu_bnorm_c16.c — the training forward and backward of a float32 batch norm over 8 or
 * 16 channels in the channel-blocked layout (aBcd8b, aBcd16b: the `tiny` encoder's
 * activations, docs/performance.md "Batch norms of 8 and 16 channels"), where oneDNN 2.6
 * reads the 8-channel tensor with its AVX2 kernel in more passes than the arithmetic
 * needs. AVX-512 only, like cpu_conv_c16.c; cpu_bnorm.c falls back to oneDNN elsewhere.
 *
 * The tensor is one array of [n][h][w][c] floats, so a 16-float vector holds one pixel
 * (c 16) or two (c 8) and lane l belongs to channel l mod c. Forward: one pass sums
 * x − K and (x − K)², K the running mean (the shifted sums of cpu_bnorm_sync.c keep the
 * variance exact when K is near the batch's mean), in float over a chunk of vectors and
 * in double across chunks; then one pass writes y = (x − mean)·γ/√(var + ε) + β, with the
 * fused ReLU. Backward recomputes the ReLU's mask from x with the same operations (no
 * workspace), sums g = dy·mask and g·(x − mean) in one pass and writes dx in another.
 * Each thread takes a contiguous range of vectors; the sums are added in thread order
 * (the same result at every call for a thread count).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BN16_BUILT 1
#include <immintrin.h>
#include <omp.h>
#else
#define BN16_BUILT 0
#endif

enum {
  BN16_CHUNK = 64,  /* vectors summed in float before going to double */
  BN16_THREADS = 64 /* the most threads whose sums are kept apart (more share a slot) */
};

#if BN16_BUILT

#define BN16_ATTR __attribute__((target("avx512f,avx512vl,fma")))

/* The lanes of the last, partial vector of a tensor of t floats (t mod 16 of them). */
static __mmask16 bn16_tail_mask(int64_t t) {
  return (__mmask16)((1u << (t % 16)) - 1u);
}

/* Lanes 8..15 of v (AVX-512F has no 8-float extract). */
BN16_ATTR static inline __m256 bn16_high(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/* 16 lanes of per-channel values v[0..c): lane l is v[l mod c]. */
static void bn16_lanes(const float *v, int64_t c, float *l) {
  for (int i = 0; i < 16; ++i) l[i] = v[i % c];
}

/* A pass's inputs: x (and dy), and per-lane constants (bn16_lanes): the shift K of the
 * forward's sums, the mean m, a = γ/√(var + ε) and β of the ReLU's mask (x − m)·a + β > 0
 * (relu), the coefficients c1, c2, c3 of dx. The vector code takes only these plain
 * arrays and pointers: OpenMP's outlined regions do not inherit a target attribute. */
typedef struct bn16_pass {
  const float *x, *dy;
  float k[16], m[16], a[16], beta[16], c1[16], c2[16], c3[16];
  int relu;
} bn16_pass;

/* Vectors [v0, v1) of the tensor, the last one partial (mask tail) when tail is set. */
typedef struct bn16_range {
  int64_t v0, v1;
  __mmask16 tail;
} bn16_range;

/* This thread's share of the t floats' vectors: contiguous, the partial one to the last. */
static bn16_range bn16_share(int64_t t, int th, int nt) {
  const int64_t vecs = t / 16;
  bn16_range r = {vecs * th / nt, vecs * (th + 1) / nt, 0};
  if (th == nt - 1 && t % 16) r.tail = bn16_tail_mask(t);
  return r;
}

BN16_ATTR static __m512 bn16_grad(const bn16_pass *p, __m512 xv, __m512 dv) {
  if (!p->relu) return dv;
  const __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(xv, _mm512_loadu_ps(p->m)),
                                   _mm512_loadu_ps(p->a), _mm512_loadu_ps(p->beta));
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), dv);
}

/* Sums over range r: s[0..16) of x − K and s[16..32) of (x − K)² (pass 0, the forward);
 * of g and g·(x − m) (pass 1, the backward). Float over a chunk, double across chunks. */
BN16_ATTR static void bn16_sums(const bn16_pass *p, int pass, bn16_range r, double *s) {
  __m512d d[4];
  for (int i = 0; i < 4; ++i) d[i] = _mm512_setzero_pd();
  const __m512 k = _mm512_loadu_ps(p->k), m = _mm512_loadu_ps(p->m);
  const int64_t end = r.v1 + (r.tail ? 1 : 0);
  for (int64_t c0 = r.v0; c0 < end; c0 += BN16_CHUNK) {
    __m512 f1 = _mm512_setzero_ps(), f2 = _mm512_setzero_ps();
    const int64_t c1 = c0 + BN16_CHUNK < end ? c0 + BN16_CHUNK : end;
    for (int64_t v = c0; v < c1; ++v) {
      const __mmask16 mk = v < r.v1 ? (__mmask16)0xFFFF : r.tail;
      const __m512 xv = _mm512_maskz_loadu_ps(mk, p->x + v * 16);
      if (pass == 0) {
        const __m512 t = _mm512_maskz_sub_ps(mk, xv, k);
        f1 = _mm512_add_ps(f1, t);
        f2 = _mm512_fmadd_ps(t, t, f2);
      } else {
        const __m512 g = bn16_grad(p, xv, _mm512_maskz_loadu_ps(mk, p->dy + v * 16));
        f1 = _mm512_add_ps(f1, g);
        f2 = _mm512_fmadd_ps(g, _mm512_maskz_sub_ps(mk, xv, m), f2);
      }
    }
    d[0] = _mm512_add_pd(d[0], _mm512_cvtps_pd(_mm512_castps512_ps256(f1)));
    d[1] = _mm512_add_pd(d[1], _mm512_cvtps_pd(bn16_high(f1)));
    d[2] = _mm512_add_pd(d[2], _mm512_cvtps_pd(_mm512_castps512_ps256(f2)));
    d[3] = _mm512_add_pd(d[3], _mm512_cvtps_pd(bn16_high(f2)));
  }
  for (int i = 0; i < 4; ++i) _mm512_storeu_pd(s + 8 * i, d[i]);
}

/* y = (x − m)·a + β over range r, then the ReLU. */
BN16_ATTR static void bn16_apply(const bn16_pass *p, bn16_range r, float *y) {
  const __m512 m = _mm512_loadu_ps(p->m), a = _mm512_loadu_ps(p->a);
  const __m512 beta = _mm512_loadu_ps(p->beta);
  for (int64_t v = r.v0; v < r.v1 + (r.tail ? 1 : 0); ++v) {
    const __mmask16 mk = v < r.v1 ? (__mmask16)0xFFFF : r.tail;
    __m512 o =
        _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, p->x + v * 16), m), a, beta);
    if (p->relu) o = _mm512_max_ps(o, _mm512_setzero_ps());
    _mm512_mask_storeu_ps(y + v * 16, mk, o);
  }
}

/* dx = γ·inv·(g − mean(g) − x̂·mean(g·x̂)) = c1·g − c2·(x − m) − c3 over range r. */
BN16_ATTR static void bn16_dx(const bn16_pass *p, bn16_range r, float *dx) {
  const __m512 m = _mm512_loadu_ps(p->m), c1 = _mm512_loadu_ps(p->c1);
  const __m512 c2 = _mm512_loadu_ps(p->c2), c3 = _mm512_loadu_ps(p->c3);
  for (int64_t v = r.v0; v < r.v1 + (r.tail ? 1 : 0); ++v) {
    const __mmask16 mk = v < r.v1 ? (__mmask16)0xFFFF : r.tail;
    const __m512 xv = _mm512_maskz_loadu_ps(mk, p->x + v * 16);
    const __m512 g = bn16_grad(p, xv, _mm512_maskz_loadu_ps(mk, p->dy + v * 16));
    const __m512 o =
        _mm512_sub_ps(_mm512_fnmadd_ps(c2, _mm512_sub_ps(xv, m), _mm512_mul_ps(c1, g)), c3);
    _mm512_mask_storeu_ps(dx + v * 16, mk, o);
  }
}

/* The sums of a pass over the whole tensor of t floats, per channel: s1[c], s2[c]. */
static void bn16_reduce(const bn16_pass *p, int pass, int64_t t, int64_t c, double *s1,
                        double *s2) {
  double part[BN16_THREADS][32];
  int used = 1;
#pragma omp parallel
  {
    const int th = omp_get_thread_num(), nt = omp_get_num_threads();
    const int n = nt < BN16_THREADS ? nt : BN16_THREADS;
    if (th < n) bn16_sums(p, pass, bn16_share(t, th, n), part[th]);
    if (th == 0) used = n;
  }
  for (int64_t i = 0; i < c; ++i) s1[i] = s2[i] = 0.0;
  for (int th = 0; th < used; ++th)
    for (int l = 0; l < 16; ++l) {
      s1[l % c] += part[th][l];
      s2[l % c] += part[th][16 + l];
    }
}

int cpu_bn16_fits(const dnnl_memory_desc_t *md, int64_t c) {
  if (md->ndims != 4 || md->data_type != dnnl_f32 || (c != 8 && c != 16)) return 0;
  if (cpu_own_kernels_isa() != 2) return 0;
  dnnl_memory_desc_t want;
  dnnl_dims_t dd = {md->dims[0], md->dims[1], md->dims[2], md->dims[3]};
  if (dnnl_memory_desc_init_by_tag(&want, 4, dd, dnnl_f32,
                                   c == 8 ? dnnl_aBcd8b : dnnl_aBcd16b) != dnnl_success)
    return 0;
  return cpu_md_equal(md, &want);
}

void cpu_bn16_forward(const float *x, int64_t t, int64_t c, const float *gamma,
                      const float *beta, const float *shift, float eps, int relu, float *y,
                      cpu_bn16_state *st) {
  bn16_pass p;
  memset(&p, 0, sizeof p);
  p.x = x;
  p.relu = relu;
  bn16_lanes(shift, c, p.k);
  double s1[16], s2[16];
  bn16_reduce(&p, 0, t, c, s1, s2);
  const double M = (double)t / (double)c;
  for (int64_t i = 0; i < c; ++i) {
    const double e1 = s1[i] / M;
    double var = s2[i] / M - e1 * e1; /* biased; the shifted sums keep it exact */
    if (var < 0.0) var = 0.0;
    const double mean = (double)shift[i] + e1, inv = 1.0 / sqrt(var + (double)eps);
    st->mean[i] = (float)mean;
    st->var[i] = (float)var;
    st->inv[i] = (float)inv;
    st->a[i] = (float)((double)gamma[i] * inv);
    st->beta[i] = beta[i];
  }
  bn16_lanes(st->mean, c, p.m);
  bn16_lanes(st->a, c, p.a);
  bn16_lanes(st->beta, c, p.beta);
#pragma omp parallel
  bn16_apply(&p, bn16_share(t, omp_get_thread_num(), omp_get_num_threads()), y);
}

void cpu_bn16_backward(const float *x, const float *dy, int64_t t, int64_t c,
                       const float *gamma, int relu, const cpu_bn16_state *st, float *dx,
                       float *dgamma, float *dbeta) {
  bn16_pass p;
  memset(&p, 0, sizeof p);
  p.x = x;
  p.dy = dy;
  p.relu = relu;
  /* the ReLU's mask from x with the forward's a and β (the backward has no β input) */
  bn16_lanes(st->mean, c, p.m);
  bn16_lanes(st->a, c, p.a);
  bn16_lanes(st->beta, c, p.beta);
  double sg[16], sgx[16];
  bn16_reduce(&p, 1, t, c, sg, sgx);
  const double M = (double)t / (double)c;
  float c1[16], c2[16], c3[16];
  for (int64_t i = 0; i < c; ++i) {
    const double inv = (double)st->inv[i], k = (double)gamma[i] * inv;
    const double mg = sg[i] / M, mgx = sgx[i] * inv / M; /* mean(g), mean(g·x̂) */
    if (dgamma) dgamma[i] = (float)(sgx[i] * inv);
    if (dbeta) dbeta[i] = (float)sg[i];
    c1[i] = (float)k;
    c2[i] = (float)(k * inv * mgx);
    c3[i] = (float)(k * mg);
  }
  bn16_lanes(c1, c, p.c1);
  bn16_lanes(c2, c, p.c2);
  bn16_lanes(c3, c, p.c3);
#pragma omp parallel
  bn16_dx(&p, bn16_share(t, omp_get_thread_num(), omp_get_num_threads()), dx);
}

#else /* !BN16_BUILT */

int cpu_bn16_fits(const dnnl_memory_desc_t *md, int64_t c) {
  (void)md, (void)c;
  return 0;
}

void cpu_bn16_forward(const float *x, int64_t t, int64_t c, const float *gamma,
                      const float *beta, const float *shift, float eps, int relu, float *y,
                      cpu_bn16_state *st) {
  (void)x, (void)t, (void)c, (void)gamma, (void)beta, (void)shift, (void)eps, (void)relu;
  (void)y, (void)st;
}

void cpu_bn16_backward(const float *x, const float *dy, int64_t t, int64_t c,
                       const float *gamma, int relu, const cpu_bn16_state *st, float *dx,
                       float *dgamma, float *dbeta) {
  (void)x, (void)dy, (void)t, (void)c, (void)gamma, (void)relu, (void)st;
  (void)dx, (void)dgamma, (void)dbeta;
}

#endif /* BN16_BUILT */
