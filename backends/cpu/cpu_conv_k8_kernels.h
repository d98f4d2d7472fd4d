/*
 * cpu_conv_k8_kernels.h — the vector kernels of cpu_conv_k8.c, included there once per
 * instruction set with these defined:
 *   K8_SFX     the suffix of the function names (avx512, avx2)
 *   K8_TARGET  the target attribute's string
 *   K8_P       output pixels per block: one accumulator register each (AVX-512VL has 32
 *              vector registers, AVX2 16, and a block must leave room for the weights)
 *   K8_KXB     kernel columns summed at once by backward-weights (each column takes 8
 *              accumulators: 3 × 8 + 1 fit in AVX-512VL's registers, 1 × 8 in AVX2's)
 *   K8_ZMM     1: also the 16-float kernels (AVX-512: channel pairs of an 8-channel
 *              input, pixel pairs of a plain one)
 * Every 8-float vector is one pixel's 8 output channels. x is [n][h][w][8] (nhwc: the
 * 8-channel blocked layout) or [n][ic][h][w] (plain, any ic); y and dy are [n][h][w][8].
 * Packed weights wp: [ky][kx][ic][oc] (cpu_conv_k8.c, k8_pack).
 */
#define K8_CAT2(a, b) a##_##b
#define K8_CAT(a, b)  K8_CAT2(a, b)
#define K8_FN(name)   K8_CAT(name, K8_SFX)
#define K8_ATTR       __attribute__((target(K8_TARGET)))
#define K8_INL        K8_ATTR static inline __attribute__((always_inline))

/* The address of x[ic][iy][ix] in either layout (XP: 8 = nhwc, 1 = plain). */
#define K8_X(x, XP, ic, iy, ix, h, w)                                                          \
  ((x) + ((XP) == 8 ? ((iy) * (w) + (ix)) * 8 + (ic) : ((ic) * (h) + (iy)) * (w) + (ix)))

/* Stores v (one pixel's 8 outputs) at y + o, after the epilogue: + r[o] with a residual,
 * then max(·, 0) with relu (the fused inference forward, cpu_conv_k8.c). */
K8_INL void K8_FN(k8_store)(float *y, int64_t o, __m256 v, const k8_epi *e) {
  if (e->res) v = _mm256_add_ps(v, _mm256_loadu_ps(e->res + o));
  if (e->relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  _mm256_storeu_ps(y + o, v);
}

/* P output pixels ox .. ox+P-1 of row oy whose 3×3 neighbourhoods lie inside the row
 * (1 <= ox, ox+P <= w-1); rows above and below the image add nothing. */
K8_INL void K8_FN(k8_block)(const float *x, const int XP, int64_t ic_n, int64_t h, int64_t w,
                            const float *wp, __m256 b, float *y, const k8_epi *e, int64_t oy,
                            int64_t ox, const int P) {
  __m256 acc[K8_P];
  for (int p = 0; p < P; ++p) acc[p] = b;
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    for (int kx = 0; kx < 3; ++kx) {
      const float *wk = wp + (ky * 3 + kx) * ic_n * 8;
      for (int64_t ic = 0; ic < ic_n; ++ic) {
        const float *xp = K8_X(x, XP, ic, iy, ox + kx - 1, h, w);
        const __m256 wv = _mm256_loadu_ps(wk + ic * 8);
        for (int p = 0; p < P; ++p)
          acc[p] = _mm256_fmadd_ps(_mm256_broadcast_ss(xp + p * XP), wv, acc[p]);
      }
    }
  }
  for (int p = 0; p < P; ++p) K8_FN(k8_store)(y, (oy * w + ox + p) * 8, acc[p], e);
}

/* One output pixel with every tap checked (the first and last of a row). */
K8_INL void K8_FN(k8_pixel)(const float *x, const int XP, int64_t ic_n, int64_t h, int64_t w,
                            const float *wp, __m256 b, float *y, const k8_epi *e, int64_t oy,
                            int64_t ox) {
  __m256 acc = b;
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    for (int kx = 0; kx < 3; ++kx) {
      const int64_t ix = ox + kx - 1;
      if (ix < 0 || ix >= w) continue;
      const float *wk = wp + (ky * 3 + kx) * ic_n * 8;
      for (int64_t ic = 0; ic < ic_n; ++ic)
        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(K8_X(x, XP, ic, iy, ix, h, w)),
                              _mm256_loadu_ps(wk + ic * 8), acc);
    }
  }
  K8_FN(k8_store)(y, (oy * w + ox) * 8, acc, e);
}

K8_INL void K8_FN(k8_row_as)(const float *x, const int XP, int64_t ic_n, int64_t h, int64_t w,
                             const float *wp, const k8_epi *e, float *y, int64_t oy) {
  const __m256 b = e->bias ? _mm256_loadu_ps(e->bias) : _mm256_setzero_ps();
  K8_FN(k8_pixel)(x, XP, ic_n, h, w, wp, b, y, e, oy, 0);
  if (w > 1) K8_FN(k8_pixel)(x, XP, ic_n, h, w, wp, b, y, e, oy, w - 1);
  int64_t ox = 1;
  for (; ox + K8_P <= w - 1; ox += K8_P)
    K8_FN(k8_block)(x, XP, ic_n, h, w, wp, b, y, e, oy, ox, K8_P);
  /* the tail, in blocks of 8, 4, 2 and 1 (fewer than K8_P <= 16 pixels) */
  for (int sz = 8; sz >= 1; sz /= 2)
    if (w - 1 - ox >= sz) {
      switch (sz) {
      case 8: K8_FN(k8_block)(x, XP, ic_n, h, w, wp, b, y, e, oy, ox, 8); break;
      case 4: K8_FN(k8_block)(x, XP, ic_n, h, w, wp, b, y, e, oy, ox, 4); break;
      case 2: K8_FN(k8_block)(x, XP, ic_n, h, w, wp, b, y, e, oy, ox, 2); break;
      default: K8_FN(k8_block)(x, XP, ic_n, h, w, wp, b, y, e, oy, ox, 1); break;
      }
      ox += sz;
    }
}

/* Row oy of y = x ⊛ wp (+ bias), one sample (x and y at its start). */
K8_ATTR static void K8_FN(k8_row)(const float *x, int nhwc, int64_t ic_n, int64_t h, int64_t w,
                                  const float *wp, const k8_epi *e, float *y, int64_t oy) {
  if (nhwc)
    K8_FN(k8_row_as)(x, 8, 8, h, w, wp, e, y, oy);
  else
    K8_FN(k8_row_as)(x, 1, ic_n, h, w, wp, e, y, oy);
}

/* Adds to part ([ky][kx][ic][oc]) the share of row oy (of one sample) in dW for kernel
 * row ky, input channels ic0 .. ic0+G-1 and kernel columns kx0 .. kx0+KX-1. */
K8_INL void K8_FN(k8_grad_tile)(const float *x, const int XP, int64_t ic_n, const float *dyr,
                                int64_t h, int64_t w, int64_t iy, int ky, int64_t ic0,
                                const int G, int kx0, const int KX, float *part) {
  __m256 acc[K8_KXB][8];
  for (int kx = 0; kx < KX; ++kx)
    for (int g = 0; g < G; ++g) acc[kx][g] = _mm256_setzero_ps();
  /* interior pixels: every tap inside the row */
  for (int64_t ox = 1; ox < w - 1; ++ox) {
    const __m256 d = _mm256_loadu_ps(dyr + ox * 8);
    for (int kx = 0; kx < KX; ++kx) {
      const float *xp = K8_X(x, XP, ic0, iy, ox + kx0 + kx - 1, h, w);
      for (int g = 0; g < G; ++g)
        acc[kx][g] =
            _mm256_fmadd_ps(_mm256_broadcast_ss(xp + (XP == 8 ? g : g * h * w)), d, acc[kx][g]);
    }
  }
  for (int64_t ox = 0; ox < w; ox += (w > 1 ? w - 1 : 1)) { /* the two edge pixels */
    const __m256 d = _mm256_loadu_ps(dyr + ox * 8);
    for (int kx = 0; kx < KX; ++kx) {
      const int64_t ix = ox + kx0 + kx - 1;
      if (ix < 0 || ix >= w) continue;
      for (int g = 0; g < G; ++g)
        acc[kx][g] = _mm256_fmadd_ps(_mm256_broadcast_ss(K8_X(x, XP, ic0 + g, iy, ix, h, w)), d,
                                     acc[kx][g]);
    }
  }
  for (int kx = 0; kx < KX; ++kx)
    for (int g = 0; g < G; ++g) {
      float *q = part + ((ky * 3 + kx0 + kx) * ic_n + ic0 + g) * 8;
      _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), acc[kx][g]));
    }
}

K8_INL void K8_FN(k8_grad_as)(const float *x, const int XP, int64_t ic_n, const float *dy,
                              int64_t h, int64_t w, int64_t oy, float *part) {
  const float *dyr = dy + oy * w * 8;
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    for (int kx0 = 0; kx0 < 3; kx0 += K8_KXB)
      for (int64_t ic0 = 0; ic0 < ic_n;) { /* input channels in groups of 8, 4, 2, 1 */
        const int64_t left = ic_n - ic0;
        if (left >= 8) {
          K8_FN(k8_grad_tile)(x, XP, ic_n, dyr, h, w, iy, ky, ic0, 8, kx0, K8_KXB, part);
          ic0 += 8;
        } else if (left >= 4) {
          K8_FN(k8_grad_tile)(x, XP, ic_n, dyr, h, w, iy, ky, ic0, 4, kx0, K8_KXB, part);
          ic0 += 4;
        } else if (left >= 2) {
          K8_FN(k8_grad_tile)(x, XP, ic_n, dyr, h, w, iy, ky, ic0, 2, kx0, K8_KXB, part);
          ic0 += 2;
        } else {
          K8_FN(k8_grad_tile)(x, XP, ic_n, dyr, h, w, iy, ky, ic0, 1, kx0, K8_KXB, part);
          ic0 += 1;
        }
      }
  }
}

/* Adds row oy's share of dW to part ([ky][kx][ic][oc]) and of db to dbp (if not NULL). */
K8_ATTR static void K8_FN(k8_grad_row)(const float *x, int nhwc, int64_t ic_n, const float *dy,
                                       int64_t h, int64_t w, int64_t oy, float *part,
                                       float *dbp) {
  if (nhwc)
    K8_FN(k8_grad_as)(x, 8, 8, dy, h, w, oy, part);
  else
    K8_FN(k8_grad_as)(x, 1, ic_n, dy, h, w, oy, part);
  if (dbp) {
    const float *dyr = dy + oy * w * 8;
    __m256 s = _mm256_setzero_ps();
    for (int64_t ox = 0; ox < w; ++ox) s = _mm256_add_ps(s, _mm256_loadu_ps(dyr + ox * 8));
    _mm256_storeu_ps(dbp, _mm256_add_ps(_mm256_loadu_ps(dbp), s));
  }
}

#if K8_ZMM
/* The 16-float kernels of an 8-channel blocked x (AVX-512 has twice AVX2's multiply-add
 * width, and a broadcast has to fill all of it). Forward: the 8 input channels taken in
 * pairs, each pair's two values broadcast as one 64-bit element ([a b a b …]) against
 * packed weights wp2 ([ky][kx][pair][oc][2]: lane 2·oc + j holds W[oc][2·pair + j]), so
 * each lane pair sums one output channel over even and odd inputs; the halves are added
 * when the block is stored. */
K8_INL void K8_FN(k8_block_z)(const float *x, int64_t h, int64_t w, const float *wp2, __m256 b,
                              float *y, const k8_epi *e, int64_t oy, int64_t ox, const int P) {
  __m512 acc[K8_P];
  for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    const float *xr = x + (iy * w + ox - 1) * 8;
    for (int kx = 0; kx < 3; ++kx) {
      const float *xp = xr + kx * 8, *wk = wp2 + (ky * 3 + kx) * 64;
      for (int pr = 0; pr < 4; ++pr) {
        const __m512 wv = _mm512_loadu_ps(wk + pr * 16);
        for (int p = 0; p < P; ++p) {
          double pair;
          memcpy(&pair, xp + p * 8 + 2 * pr, sizeof pair);
          acc[p] = _mm512_fmadd_ps(_mm512_castpd_ps(_mm512_set1_pd(pair)), wv, acc[p]);
        }
      }
    }
  }
  const __m512i even = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int p = 0; p < P; ++p) {
    const __m512 s = _mm512_add_ps(acc[p], _mm512_permute_ps(acc[p], 0xB1));
    const __m256 v = _mm512_castps512_ps256(_mm512_permutexvar_ps(even, s));
    K8_FN(k8_store)(y, (oy * w + ox + p) * 8, _mm256_add_ps(v, b), e);
  }
}

/* Row oy of y = x ⊛ W (+ bias), x 8-channel blocked: wp for the edge pixels, wp2 (above)
 * for the blocks. */
K8_ATTR static void K8_FN(k8_row_z)(const float *x, int64_t h, int64_t w, const float *wp,
                                    const float *wp2, const k8_epi *e, float *y, int64_t oy) {
  const __m256 b = e->bias ? _mm256_loadu_ps(e->bias) : _mm256_setzero_ps();
  K8_FN(k8_pixel)(x, 8, 8, h, w, wp, b, y, e, oy, 0);
  if (w > 1) K8_FN(k8_pixel)(x, 8, 8, h, w, wp, b, y, e, oy, w - 1);
  int64_t ox = 1;
  for (; ox + K8_P <= w - 1; ox += K8_P) K8_FN(k8_block_z)(x, h, w, wp2, b, y, e, oy, ox, K8_P);
  for (int sz = 8; sz >= 1; sz /= 2) /* the tail, as k8_row_as's */
    if (w - 1 - ox >= sz) {
      switch (sz) {
      case 8: K8_FN(k8_block_z)(x, h, w, wp2, b, y, e, oy, ox, 8); break;
      case 4: K8_FN(k8_block_z)(x, h, w, wp2, b, y, e, oy, ox, 4); break;
      case 2: K8_FN(k8_block_z)(x, h, w, wp2, b, y, e, oy, ox, 2); break;
      default: K8_FN(k8_block_z)(x, h, w, wp2, b, y, e, oy, ox, 1); break;
      }
      ox += sz;
    }
}

/* Backward-weights of an 8-channel blocked x: for an interior pixel, the input of kernel
 * columns 0 and 1 is two neighbouring pixels, one 16-float load, multiplied by dy's
 * output channel broadcast; column 2 takes an 8-float one. Interior sums go to partz
 * ([ky][oc][kx][ic]), the edge pixels' to part ([ky][kx][ic][oc]) as k8_grad_tile's. */
K8_ATTR static void K8_FN(k8_grad_row_z)(const float *x, const float *dy, int64_t h, int64_t w,
                                         int64_t oy, float *part, float *partz, float *dbp) {
  const float *dyr = dy + oy * w * 8;
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    const float *xr = x + iy * w * 8;
    __m512 a01[8];
    __m256 a2[8];
    for (int oc = 0; oc < 8; ++oc) a01[oc] = _mm512_setzero_ps(), a2[oc] = _mm256_setzero_ps();
    for (int64_t ox = 1; ox < w - 1; ++ox) {
      const float *xp = xr + (ox - 1) * 8, *d = dyr + ox * 8;
      const __m512 x01 = _mm512_loadu_ps(xp);
      const __m256 x2 = _mm256_loadu_ps(xp + 16);
      for (int oc = 0; oc < 8; ++oc) {
        a01[oc] = _mm512_fmadd_ps(x01, _mm512_set1_ps(d[oc]), a01[oc]);
        a2[oc] = _mm256_fmadd_ps(x2, _mm256_set1_ps(d[oc]), a2[oc]);
      }
    }
    for (int oc = 0; oc < 8; ++oc) {
      float *q = partz + (ky * 8 + oc) * 24;
      _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), a01[oc]));
      _mm256_storeu_ps(q + 16, _mm256_add_ps(_mm256_loadu_ps(q + 16), a2[oc]));
    }
    __m256 acc[3][8]; /* the two edge pixels */
    for (int kx = 0; kx < 3; ++kx)
      for (int ic = 0; ic < 8; ++ic) acc[kx][ic] = _mm256_setzero_ps();
    for (int64_t ox = 0; ox < w; ox += (w > 1 ? w - 1 : 1)) {
      const __m256 d = _mm256_loadu_ps(dyr + ox * 8);
      for (int kx = 0; kx < 3; ++kx) {
        const int64_t ix = ox + kx - 1;
        if (ix < 0 || ix >= w) continue;
        for (int ic = 0; ic < 8; ++ic)
          acc[kx][ic] = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + ix * 8 + ic), d, acc[kx][ic]);
      }
    }
    for (int kx = 0; kx < 3; ++kx)
      for (int ic = 0; ic < 8; ++ic) {
        float *q = part + ((ky * 3 + kx) * 8 + ic) * 8;
        _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), acc[kx][ic]));
      }
  }
  if (dbp) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t ox = 0; ox < w; ++ox) s = _mm256_add_ps(s, _mm256_loadu_ps(dyr + ox * 8));
    _mm256_storeu_ps(dbp, _mm256_add_ps(_mm256_loadu_ps(dbp), s));
  }
}
/* Forward of a plain x (a stem): two neighbouring pixels of a row of one input channel
 * are one 64-bit broadcast ([a b a b …]) against weights wpd with each output channel's
 * weight twice ([ky][kx][ic][oc][2]), so lane 2·oc + t sums pixel t of the pair; the
 * lanes are sorted back into the two pixels when the block of P pairs is stored. */
K8_INL void K8_FN(k8_block_zp)(const float *x, int64_t ic_n, int64_t h, int64_t w,
                               const float *wpd, __m256 b, float *y, const k8_epi *e,
                               int64_t oy, int64_t ox, const int P) {
  __m512 acc[K8_P];
  for (int j = 0; j < P; ++j) acc[j] = _mm512_setzero_ps();
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    for (int kx = 0; kx < 3; ++kx)
      for (int64_t ic = 0; ic < ic_n; ++ic) {
        const float *xp = x + (ic * h + iy) * w + ox + kx - 1;
        const __m512 wv = _mm512_loadu_ps(wpd + ((ky * 3 + kx) * ic_n + ic) * 16);
        for (int j = 0; j < P; ++j) {
          double pair;
          memcpy(&pair, xp + 2 * j, sizeof pair);
          acc[j] = _mm512_fmadd_ps(_mm512_castpd_ps(_mm512_set1_pd(pair)), wv, acc[j]);
        }
      }
  }
  const __m512i sort = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int j = 0; j < P; ++j) {
    const __m512 v = _mm512_permutexvar_ps(sort, acc[j]);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    K8_FN(k8_store)
    (y, (oy * w + ox + 2 * j) * 8, _mm256_add_ps(_mm512_castps512_ps256(v), b), e);
    K8_FN(k8_store)(y, (oy * w + ox + 2 * j + 1) * 8, _mm256_add_ps(hi, b), e);
  }
}

/* Row oy of a plain x's forward: wp for the edge pixels and a last odd one, wpd (above)
 * for the pairs. */
K8_ATTR static void K8_FN(k8_row_zp)(const float *x, int64_t ic_n, int64_t h, int64_t w,
                                     const float *wp, const float *wpd, const k8_epi *e,
                                     float *y, int64_t oy) {
  const __m256 b = e->bias ? _mm256_loadu_ps(e->bias) : _mm256_setzero_ps();
  K8_FN(k8_pixel)(x, 1, ic_n, h, w, wp, b, y, e, oy, 0);
  if (w > 1) K8_FN(k8_pixel)(x, 1, ic_n, h, w, wp, b, y, e, oy, w - 1);
  int64_t ox = 1;
  for (; ox + 2 * K8_P <= w - 1; ox += 2 * K8_P)
    K8_FN(k8_block_zp)(x, ic_n, h, w, wpd, b, y, e, oy, ox, K8_P);
  for (int sz = 8; sz >= 1; sz /= 2) /* the tail: pairs in blocks of 8, 4, 2 and 1 */
    if (w - 1 - ox >= 2 * sz) {
      switch (sz) {
      case 8: K8_FN(k8_block_zp)(x, ic_n, h, w, wpd, b, y, e, oy, ox, 8); break;
      case 4: K8_FN(k8_block_zp)(x, ic_n, h, w, wpd, b, y, e, oy, ox, 4); break;
      case 2: K8_FN(k8_block_zp)(x, ic_n, h, w, wpd, b, y, e, oy, ox, 2); break;
      default: K8_FN(k8_block_zp)(x, ic_n, h, w, wpd, b, y, e, oy, ox, 1); break;
      }
      ox += 2 * sz;
    }
  if (ox < w - 1) K8_FN(k8_block)(x, 1, ic_n, h, w, wp, b, y, e, oy, ox, 1);
}
/* Backward-weights of a plain x (a stem): for a pair of interior pixels, dy's two
 * vectors with their lanes interleaved (lane 2·oc + t: pixel t) against one 64-bit
 * broadcast of the two x values, as k8_block_zp; sums go to partp ([ky][kx][ic][oc][2]).
 * The edge pixels and a last odd one go to part ([ky][kx][ic][oc]) eight lanes wide.
 * Input channels ic0 .. ic0+G-1 of kernel row ky (input row iy); G is a constant of
 * each call, so that the 3·G accumulators stay in registers. */
K8_INL void K8_FN(k8_grad_zp_group)(const float *x, int64_t ic_n, const float *dyr, int64_t h,
                                    int64_t w, int64_t iy, int ky, int64_t ic0, const int G,
                                    float *part, float *partp) {
  const __m512i mix = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
  const int64_t pairs = (w - 2) / 2; /* interior pixels 1 .. 2·pairs */
  __m512 acc[3][8];
  for (int kx = 0; kx < 3; ++kx)
    for (int g = 0; g < G; ++g) acc[kx][g] = _mm512_setzero_ps();
  for (int64_t q = 0; q < pairs; ++q) {
    const int64_t ox = 1 + 2 * q;
    const __m512 d = _mm512_permutexvar_ps(mix, _mm512_loadu_ps(dyr + ox * 8));
    for (int kx = 0; kx < 3; ++kx)
      for (int g = 0; g < G; ++g) {
        double pair;
        memcpy(&pair, x + ((ic0 + g) * h + iy) * w + ox + kx - 1, sizeof pair);
        acc[kx][g] = _mm512_fmadd_ps(_mm512_castpd_ps(_mm512_set1_pd(pair)), d, acc[kx][g]);
      }
  }
  for (int kx = 0; kx < 3; ++kx)
    for (int g = 0; g < G; ++g) {
      float *q = partp + ((ky * 3 + kx) * ic_n + ic0 + g) * 16;
      _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), acc[kx][g]));
    }
  /* the rest: pixel 0, the last odd interior pixel if any, pixel w - 1 */
  __m256 r[3][8];
  for (int kx = 0; kx < 3; ++kx)
    for (int g = 0; g < G; ++g) r[kx][g] = _mm256_setzero_ps();
  const int64_t rest[3] = {0, 1 + 2 * pairs, w - 1};
  for (int i = 0; i < 3; ++i) {
    const int64_t ox = rest[i];
    if (ox >= w || (i == 1 && ox >= w - 1) || (i == 2 && w < 2)) continue;
    const __m256 d = _mm256_loadu_ps(dyr + ox * 8);
    for (int kx = 0; kx < 3; ++kx) {
      const int64_t ix = ox + kx - 1;
      if (ix < 0 || ix >= w) continue;
      for (int g = 0; g < G; ++g)
        r[kx][g] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + ((ic0 + g) * h + iy) * w + ix), d,
                                   r[kx][g]);
    }
  }
  for (int kx = 0; kx < 3; ++kx)
    for (int g = 0; g < G; ++g) {
      float *q = part + ((ky * 3 + kx) * ic_n + ic0 + g) * 8;
      _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), r[kx][g]));
    }
}

/* Row oy's share of a stem's dW (k8_grad_zp_group, input channels in groups of 8, 4, 2,
 * 1) and of db (dbp, if not NULL). */
K8_ATTR static void K8_FN(k8_grad_row_zp)(const float *x, int64_t ic_n, const float *dy,
                                          int64_t h, int64_t w, int64_t oy, float *part,
                                          float *partp, float *dbp) {
  const float *dyr = dy + oy * w * 8;
  for (int ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy + ky - 1;
    if (iy < 0 || iy >= h) continue;
    for (int64_t ic0 = 0; ic0 < ic_n;) {
      const int64_t left = ic_n - ic0;
      if (left >= 8) {
        K8_FN(k8_grad_zp_group)(x, ic_n, dyr, h, w, iy, ky, ic0, 8, part, partp);
        ic0 += 8;
      } else if (left >= 4) {
        K8_FN(k8_grad_zp_group)(x, ic_n, dyr, h, w, iy, ky, ic0, 4, part, partp);
        ic0 += 4;
      } else if (left >= 2) {
        K8_FN(k8_grad_zp_group)(x, ic_n, dyr, h, w, iy, ky, ic0, 2, part, partp);
        ic0 += 2;
      } else {
        K8_FN(k8_grad_zp_group)(x, ic_n, dyr, h, w, iy, ky, ic0, 1, part, partp);
        ic0 += 1;
      }
    }
  }
  if (dbp) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t ox = 0; ox < w; ++ox) s = _mm256_add_ps(s, _mm256_loadu_ps(dyr + ox * 8));
    _mm256_storeu_ps(dbp, _mm256_add_ps(_mm256_loadu_ps(dbp), s));
  }
}
#endif /* K8_ZMM */

#undef K8_CAT2
#undef K8_CAT
#undef K8_FN
#undef K8_ATTR
#undef K8_INL
#undef K8_X
