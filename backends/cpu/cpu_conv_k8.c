/*
 * cpu_conv_k8.c — the project's own float32 kernels for the convolutions of the `tiny`
 * encoder at full resolution: 3×3, stride 1, padding 1, 8 output channels, ungrouped,
 * from 8 input channels (its four 8 → 8 layers per step and encoder) or from a few
 * (1 to 16: its stems, 2 → 8 and 12 → 8). oneDNN 2.6 has only its AVX2 kernel for
 * these on the 8-channel blocked layout (about 40 % of AVX2's peak on this project's
 * AVX-512 machines) and its AVX-512 ones need a channels-last layout that the batch norms
 * around them run slower on (docs/performance.md, "Where the tiny train step goes").
 *
 * Each output pixel's 8 channels are one 8-float vector, a block of 16 pixels of a row
 * (12 with AVX2's 16 registers) is one accumulator each, and each input value is
 * broadcast into the multiply-adds of the pixels that use it. With AVX-512 the vectors
 * are 16 floats wide (cpu_conv_k8_kernels.h, K8_ZMM): two input channels, or two
 * neighbouring pixels, share one. The output and its gradient are in the 8-channel
 * blocked layout (NHWC in the fused forward: for 8 channels the same bytes); an
 * 8-channel input is too, any other plain NCHW (as the batch arrives).
 * Forward and backward-data of the 8 → 8 layers are the same kernel: backward-data
 * convolves dy with the weights flipped and their two channel axes swapped. The stems'
 * backward-data (their input is the batch: nothing asks for it in training) is a plain
 * loop. Backward-weights sums x·dy row by row into [ky][kx][ic] vectors over the output
 * channels, each thread over its own rows, added up in thread order (the same result at
 * every call for a thread count).
 *
 * The kernels are compiled for AVX-512VL and for AVX2 (cpu_conv_k8_kernels.h) and chosen
 * from the ISA oneDNN reports (dnnl_get_effective_cpu_isa): ONEDNN_MAX_CPU_ISA=AVX2 selects
 * the AVX2 ones, below AVX2 oneDNN runs the op (cpu_conv.c). Measured in
 * docs/performance.md, "8-channel kernels of our own".
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define K8_BUILT 1
#include <immintrin.h>
#include <omp.h>
#else
#define K8_BUILT 0
#endif

enum {
  K8_C = 8,       /* output channels */
  K8_IC_MAX = 16, /* input channels of a plain (stem) input */
  K8_W = 9 * K8_IC_MAX * K8_C,
  K8_W8 = 9 * K8_C * K8_C,
  /* backward-weights' scratch per thread: the 8-float kernels' [ky][kx][ic][oc] sums
   * (K8_W), the 16-float kernels' (K8_WZ: k8_grad_row_z's [ky][oc][kx][ic], or
   * k8_grad_row_zp's [ky][kx][ic][oc][2]), db */
  K8_WZ = 9 * K8_IC_MAX * 16,
  K8_PART_Z = K8_W,
  K8_PART_DB = K8_W + K8_WZ,
  K8_PART = K8_W + K8_WZ + K8_C
};

/* What the forward does after the sum (cpu_conv_k8_kernels.h, k8_store): + bias, + the
 * residual res (same layout as y; NULL: none), then ReLU if relu. */
typedef struct k8_epi {
  const float *bias, *res;
  int relu;
} k8_epi;

typedef void (*k8_row_fn)(const float *x, int nhwc, int64_t ic_n, int64_t h, int64_t w,
                          const float *wp, const k8_epi *e, float *y, int64_t oy);
typedef void (*k8_grad_row_fn)(const float *x, int nhwc, int64_t ic_n, const float *dy,
                               int64_t h, int64_t w, int64_t oy, float *part, float *dbp);
typedef void (*k8_row_z_fn)(const float *x, int64_t h, int64_t w, const float *wp,
                            const float *wp2, const k8_epi *e, float *y, int64_t oy);
typedef void (*k8_grad_row_z_fn)(const float *x, const float *dy, int64_t h, int64_t w,
                                 int64_t oy, float *part, float *partz, float *dbp);
typedef void (*k8_row_zp_fn)(const float *x, int64_t ic_n, int64_t h, int64_t w,
                             const float *wp, const float *wpd, const k8_epi *e, float *y,
                             int64_t oy);
typedef void (*k8_grad_row_zp_fn)(const float *x, int64_t ic_n, const float *dy, int64_t h,
                                  int64_t w, int64_t oy, float *part, float *partp, float *dbp);

struct cpu_k8 {
  int64_t ic;    /* input channels */
  int nhwc;      /* 1: x in the 8-channel blocked layout (ic 8); 0: plain */
  k8_row_fn row; /* the instruction set's kernels */
  k8_grad_row_fn grad_row;
  k8_row_z_fn row_z; /* AVX-512's kernels of an 8-channel input; NULL with AVX2 */
  k8_grad_row_z_fn grad_row_z;
  k8_row_zp_fn row_zp; /* AVX-512's forward of a plain input; NULL with AVX2 */
  k8_grad_row_zp_fn grad_row_zp;
  float wp[K8_W];   /* the forward's packed weights [ky][kx][ic][oc] (k8_pack) */
  float wb[K8_W8];  /* backward-data's (ic 8 only) */
  float wp2[K8_W8]; /* wp and wb as the 16-float kernel wants them (k8_block_z) */
  float wb2[K8_W8];
  float wpd[9 * K8_IC_MAX * 16]; /* wp with each value twice (k8_block_zp) */
  cpu_own_io io; /* conversions, backward-weights' scratch (threads × K8_PART floats) */
};

int cpu_k8_fits(const cpu_weighted *op) {
  const mbk_op_desc *d = &op->base.desc;
  if (op->x_ndim != 4 || op->y_dims[1] != K8_C || op->w_groups != 1) return 0;
  if (op->x_dims[1] < 1 || op->x_dims[1] > K8_IC_MAX) return 0;
  if (d->u.conv.kh != 3 || d->u.conv.kw != 3 || d->u.conv.sh != 1 || d->u.conv.sw != 1 ||
      d->u.conv.ph != 1 || d->u.conv.pw != 1)
    return 0;
  if (op->q || cpu_op_dt(op->base.ctx) != dnnl_f32) return 0;
  return cpu_own_kernels_isa() > 0;
}

#if K8_BUILT

#define K8_SFX    avx512
#define K8_TARGET "avx512f,avx512vl,fma"
#define K8_P      16
#define K8_KXB    3
#define K8_ZMM    1
#include "cpu_conv_k8_kernels.h"
#undef K8_SFX
#undef K8_TARGET
#undef K8_P
#undef K8_KXB
#undef K8_ZMM

#define K8_SFX    avx2
#define K8_TARGET "avx2,fma"
#define K8_P      12
#define K8_KXB    1
#define K8_ZMM    0
#include "cpu_conv_k8_kernels.h"
#undef K8_SFX
#undef K8_TARGET
#undef K8_P
#undef K8_KXB

#undef K8_ZMM

/* y = x ⊛ W, then the epilogue e (its res for the whole batch), over n samples; x has ic
 * channels, or 8 in the blocked layout when nhwc is set. wp2 is W for the 16-float
 * kernels (k8_pack): wp2 of the struct with nhwc, wpd without. */
static void k8_conv(const cpu_k8 *k, const float *x, int nhwc, int64_t ic, int64_t n, int64_t h,
                    int64_t w, const float *wp, const float *wp2, const k8_epi *e, float *y) {
  const int64_t rows = n * h, xplane = ic * h * w, yplane = h * w * K8_C;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *xs = x + (r / h) * xplane;
    float *ys = y + (r / h) * yplane;
    const k8_epi es = {e->bias, e->res ? e->res + (r / h) * yplane : NULL, e->relu};
    if (nhwc && k->row_z)
      k->row_z(xs, h, w, wp, wp2, &es, ys, r % h);
    else if (!nhwc && k->row_zp)
      k->row_zp(xs, ic, h, w, wp, wp2, &es, ys, r % h);
    else
      k->row(xs, nhwc, ic, h, w, wp, &es, ys, r % h);
  }
}

/* dw (OIHW, plain) and db (if not NULL) of x and dy over n samples; part: threads ×
 * K8_PART floats of scratch. Each thread sums a contiguous range of rows; the ranges are
 * added in thread order. */
static void k8_grad(const cpu_k8 *k, const float *x, const float *dy, int64_t n, int64_t h,
                    int64_t w, float *part, int threads, float *dw, float *db) {
  const int64_t rows = n * h, xplane = k->ic * h * w, yplane = h * w * K8_C;
  memset(part, 0, (size_t)threads * K8_PART * sizeof *part);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    float *pt = part + (int64_t)t * K8_PART, *dbp = db ? pt + K8_PART_DB : NULL;
    for (int64_t r = r0; r < r1; ++r) {
      const float *xs = x + (r / h) * xplane, *dys = dy + (r / h) * yplane;
      if (k->nhwc && k->grad_row_z)
        k->grad_row_z(xs, dys, h, w, r % h, pt, pt + K8_PART_Z, dbp);
      else if (!k->nhwc && k->grad_row_zp)
        k->grad_row_zp(xs, k->ic, dys, h, w, r % h, pt, pt + K8_PART_Z, dbp);
      else
        k->grad_row(xs, k->nhwc, k->ic, dys, h, w, r % h, pt, dbp);
    }
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t i = 0; i < K8_PART; ++i) part[i] += part[(int64_t)t * K8_PART + i];
  for (int oc = 0; oc < K8_C; ++oc)
    for (int64_t ic = 0; ic < k->ic; ++ic)
      for (int j = 0; j < 9; ++j) {
        float v = part[(j * k->ic + ic) * K8_C + oc];
        if (k->nhwc)
          v += part[K8_PART_Z + ((j / 3) * K8_C + oc) * 24 + (j % 3) * 8 + ic];
        else
          v += part[K8_PART_Z + (j * k->ic + ic) * 16 + 2 * oc] +
               part[K8_PART_Z + (j * k->ic + ic) * 16 + 2 * oc + 1];
        dw[(oc * k->ic + ic) * 9 + j] = v;
      }
  if (db) memcpy(db, part + K8_PART_DB, K8_C * sizeof *db);
}

/* dx (plain [n][ic][h][w]) of a stem: dx[ic][iy][ix] = Σ dy[iy+1-ky][ix+1-kx][oc] ·
 * W[oc][ic][ky][kx] (w: OIHW), by plain loops (nothing in training asks for it). */
static void k8_stem_dx(const float *w, const float *dy, int64_t n, int64_t ic_n, int64_t h,
                       int64_t wd, float *dx) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * ic_n; ++r) {
    const int64_t s = r / ic_n, ic = r % ic_n;
    const float *dys = dy + s * h * wd * K8_C;
    for (int64_t iy = 0; iy < h; ++iy)
      for (int64_t ix = 0; ix < wd; ++ix) {
        float acc = 0.0f;
        for (int ky = 0; ky < 3; ++ky) {
          const int64_t oy = iy + 1 - ky;
          if (oy < 0 || oy >= h) continue;
          for (int kx = 0; kx < 3; ++kx) {
            const int64_t ox = ix + 1 - kx;
            if (ox < 0 || ox >= wd) continue;
            for (int oc = 0; oc < K8_C; ++oc)
              acc += dys[(oy * wd + ox) * K8_C + oc] * w[((oc * ic_n + ic) * 3 + ky) * 3 + kx];
          }
        }
        dx[((s * ic_n + ic) * h + iy) * wd + ix] = acc;
      }
  }
}

/* The weights w (OIHW) as [ky][kx][ic][oc] for the forward (wp) and, with 8 inputs, as
 * backward-data's forward wants them (wb): dx[iy][ix][ic] = Σ dy[iy+1-ky][ix+1-kx][oc] ·
 * W[oc][ic][ky][kx], the taps flipped and the two channel axes swapped. */
static void k8_pack(cpu_k8 *k, const float *w) {
  for (int oc = 0; oc < K8_C; ++oc)
    for (int64_t ic = 0; ic < k->ic; ++ic)
      for (int j = 0; j < 9; ++j) {
        const float v = w[(oc * k->ic + ic) * 9 + j];
        k->wp[(j * k->ic + ic) * K8_C + oc] = v;
        if (!k->nhwc) { /* [tap][ic][oc][2] (k8_block_zp) */
          k->wpd[(j * k->ic + ic) * 16 + 2 * oc] = k->wpd[(j * k->ic + ic) * 16 + 2 * oc + 1] =
              v;
          continue;
        }
        k->wb[((8 - j) * K8_C + oc) * K8_C + ic] = v;
        /* [tap][pair][oc][2] (k8_block_z): lane 2·oc + j of pair p is input 2p + j */
        k->wp2[j * 64 + (ic / 2) * 16 + 2 * oc + ic % 2] = v;
        k->wb2[(8 - j) * 64 + (oc / 2) * 16 + 2 * ic + oc % 2] = v;
      }
}

msc_status cpu_k8_create(cpu_weighted *op) {
  cpu_k8 *k = calloc(1, sizeof *k);
  if (!k) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: conv2d kernel state");
  k->ic = op->x_dims[1];
  k->nhwc = k->ic == K8_C;
  const int isa = cpu_own_kernels_isa();
  k->row = isa == 2 ? k8_row_avx512 : k8_row_avx2;
  k->grad_row = isa == 2 ? k8_grad_row_avx512 : k8_grad_row_avx2;
  k->row_z = isa == 2 ? k8_row_z_avx512 : NULL;
  k->grad_row_z = isa == 2 ? k8_grad_row_z_avx512 : NULL;
  k->row_zp = isa == 2 ? k8_row_zp_avx512 : NULL;
  k->grad_row_zp = isa == 2 ? k8_grad_row_zp_avx512 : NULL;
  op->k8 = k;
  return MSC_OK;
}

/* Layouts: the 8-channel blocked one (aBcd8b) for training's x and y, NHWC (acdb) for the
 * fused forward's (cpu_k8_fused_forward), plain (abcd) for a stem's x. */
msc_status cpu_k8_forward(cpu_weighted *op, int32_t training, mbk_tensor *const *in,
                          mbk_tensor *const *out) {
  cpu_k8 *k = op->k8;
  dnnl_memory_desc_t xmd, ymd;
  CPU_CHECK(cpu_own_md(op->x_dims, k->nhwc ? dnnl_aBcd8b : dnnl_abcd, &xmd));
  CPU_CHECK(cpu_own_md(op->y_dims, dnnl_aBcd8b, &ymd));
  const float *wt, *x;
  CPU_CHECK(cpu_own_weights(op, &k->io, in[1], &wt));
  k8_pack(k, wt);
  CPU_CHECK(cpu_own_x(op, &k->io, training, in[0], &xmd, &x));
  CPU_CHECK(cpu_tensor_set(out[0], op->y_ndim, op->y_dims, &ymd));
  cpu_ctx_threads(op->base.ctx);
  const k8_epi e = {op->bias ? (const float *)in[2]->data : NULL, NULL, 0};
  k8_conv(k, x, k->nhwc, k->ic, op->x_dims[0], op->x_dims[2], op->x_dims[3], k->wp,
          k->nhwc ? k->wp2 : k->wpd, &e, out[0]->data);
  return MSC_OK;
}

/* The fused forward's activations are NHWC, as oneDNN's fused small convolutions have them
 * (cpu_conv.c, CPU_NHWC_MAX_C), so that neighbouring layers of either kind pass them on
 * without a conversion; for 8 channels the same bytes as the 8-channel blocked layout. */
msc_status cpu_k8_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                mbk_tensor *const *out) {
  cpu_k8 *k = op->k8;
  dnnl_memory_desc_t xmd, ymd;
  CPU_CHECK(cpu_own_md(op->x_dims, k->nhwc ? dnnl_acdb : dnnl_abcd, &xmd));
  CPU_CHECK(cpu_own_md(op->y_dims, dnnl_acdb, &ymd));
  float wf[K8_W], bf[K8_C];
  cpu_own_fused f;
  CPU_CHECK(cpu_own_fused_inputs(op, &k->io, in, out, &xmd, &ymd, wf, bf, &f));
  k8_pack(k, f.w);
  cpu_ctx_threads(op->base.ctx);
  const k8_epi e = {f.bias, f.res, op->base.desc.u.conv.relu != 0};
  k8_conv(k, f.x, k->nhwc, k->ic, op->x_dims[0], op->x_dims[2], op->x_dims[3], k->wp,
          k->nhwc ? k->wp2 : k->wpd, &e, out[0]->data);
  return MSC_OK;
}

msc_status cpu_k8_backward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out) {
  mbk_ctx *ctx = op->base.ctx;
  cpu_k8 *k = op->k8;
  dnnl_memory_desc_t xmd, ymd;
  CPU_CHECK(cpu_own_md(op->x_dims, k->nhwc ? dnnl_aBcd8b : dnnl_abcd, &xmd));
  CPU_CHECK(cpu_own_md(op->y_dims, dnnl_aBcd8b, &ymd));
  const int64_t n = op->x_dims[0], h = op->x_dims[2], w = op->x_dims[3];
  dnnl_memory_t dy;
  CPU_CHECK(cpu_view_shared(ctx, in[2], &ymd, CPU_SHARED_DY, &k->io.r_dy, &dy));
  if (out[0]) {
    const float *wt;
    CPU_CHECK(cpu_own_weights(op, &k->io, in[1], &wt));
    k8_pack(k, wt);
    CPU_CHECK(cpu_tensor_set(out[0], op->x_ndim, op->x_dims, &xmd));
    cpu_ctx_threads(ctx);
    const k8_epi e = {NULL, NULL, 0};
    if (k->nhwc)
      k8_conv(k, cpu_own_data(dy), 1, K8_C, n, h, w, k->wb, k->wb2, &e, out[0]->data);
    else
      k8_stem_dx(wt, cpu_own_data(dy), n, k->ic, h, w, out[0]->data);
  }
  if (!out[1] && !out[2]) return MSC_OK;
  dnnl_memory_t x;
  CPU_CHECK(cpu_view_shared(ctx, in[0], &xmd, CPU_SHARED_X, &k->io.r_xw, &x));
  cpu_ctx_threads(ctx);
  int threads;
  CPU_CHECK(cpu_own_scratch(&k->io, K8_PART, &threads));
  float dw[K8_W], db[K8_C];
  k8_grad(k, cpu_own_data(x), cpu_own_data(dy), n, h, w, k->io.part, threads, dw,
          out[2] ? db : NULL);
  return cpu_own_grads(op, out, dw, db);
}

#else /* !K8_BUILT: cpu_own_kernels_isa says 0, so cpu_k8_fits never lets these run */

msc_status cpu_k8_create(cpu_weighted *op) {
  return cpu_own_absent(op);
}

msc_status cpu_k8_forward(cpu_weighted *op, int32_t training, mbk_tensor *const *in,
                          mbk_tensor *const *out) {
  (void)training, (void)in, (void)out;
  return cpu_own_absent(op);
}

msc_status cpu_k8_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                mbk_tensor *const *out) {
  (void)in, (void)out;
  return cpu_own_absent(op);
}

msc_status cpu_k8_backward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out) {
  (void)in, (void)out;
  return cpu_own_absent(op);
}

#endif /* K8_BUILT */

void cpu_k8_destroy(cpu_k8 *k) {
  if (!k) return;
  cpu_own_io_free(&k->io);
  free(k);
}
