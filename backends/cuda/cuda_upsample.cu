/*
 * cuda_upsample.cu — nearest and bilinear upsampling to an output size (backend.h,
 * UPSAMPLE) as own kernels: both are memory-bound one-pass loops over the output, and
 * the taps come from the contract's msci_upsample_taps (upsample_core.h), the same
 * function the host tests check, so the semantics (PyTorch's align_corners=False) are
 * fixed here rather than left to a library.
 *
 * Backward gathers rather than scatters: each input element visits the outputs that may
 * read it (the rows and columns within about one ratio OH/H on either side) and adds their dy
 * times its weight, in a fixed order: no atomics, the same bits on every run. It needs
 * nothing from a forward.
 */
#include <stdlib.h>

#define MSCI_HD __host__ __device__
#include "upsample_core.h"

#include "cuda_internal.h"

typedef struct cu_upsample {
  mbk_op base;
  int64_t x_dims[MBK_MAX_DIMS], y_dims[MBK_MAX_DIMS];
} cu_upsample;

typedef struct up_geom {
  int64_t planes, h, w, oh, ow;
  int32_t bilinear;
} up_geom;

static up_geom geometry(const cu_upsample *op) {
  const mbk_op_desc *d = &op->base.desc;
  up_geom g;
  g.planes = d->n * d->c;
  g.h = d->h, g.w = d->w;
  g.oh = op->y_dims[2], g.ow = op->y_dims[3];
  g.bilinear = d->u.upsample.mode == MBK_UPSAMPLE_BILINEAR;
  return g;
}

__global__ void k_upsample_fwd(up_geom g, const float *x, float *y) {
  const int64_t count = g.planes * g.oh * g.ow;
  for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < count;
       k += (int64_t)gridDim.x * blockDim.x) {
    int64_t j = k % g.ow, i = (k / g.ow) % g.oh, p = k / (g.ow * g.oh);
    int64_t a0, a1, b0, b1;
    float la, lb;
    msci_upsample_taps(i, g.h, g.oh, g.bilinear, &a0, &a1, &la);
    msci_upsample_taps(j, g.w, g.ow, g.bilinear, &b0, &b1, &lb);
    const float *xp = x + p * g.h * g.w;
    y[k] = (1.f - la) * ((1.f - lb) * xp[a0 * g.w + b0] + lb * xp[a0 * g.w + b1]) +
           la * ((1.f - lb) * xp[a1 * g.w + b0] + lb * xp[a1 * g.w + b1]);
  }
}

/* The weight with which output index o of an axis of n inputs and `out` outputs reads
 * input index i. */
__device__ static float tap_weight(int64_t o, int64_t i, int64_t n, int64_t out, int32_t bl) {
  int64_t i0, i1;
  float l;
  msci_upsample_taps(o, n, out, bl, &i0, &i1, &l);
  return (i0 == i ? 1.f - l : 0.f) + (i1 == i ? l : 0.f);
}

__global__ void k_upsample_bwd(up_geom g, const float *dy, float *dx) {
  const int64_t count = g.planes * g.h * g.w;
  for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < count;
       k += (int64_t)gridDim.x * blockDim.x) {
    int64_t j = k % g.w, i = (k / g.w) % g.h, p = k / (g.w * g.h);
    int64_t r0, r1, c0, c1; /* the outputs whose taps can reach (i, j) */
    msci_upsample_reach(i, g.h, g.oh, &r0, &r1);
    msci_upsample_reach(j, g.w, g.ow, &c0, &c1);
    const float *dp = dy + p * g.oh * g.ow;
    float acc = 0.f;
    for (int64_t r = r0; r < r1; ++r) {
      float wr = tap_weight(r, i, g.h, g.oh, g.bilinear);
      if (wr == 0.f) continue;
      for (int64_t c = c0; c < c1; ++c) {
        float wc = tap_weight(c, j, g.w, g.ow, g.bilinear);
        if (wc != 0.f) acc += wr * wc * dp[r * g.ow + c];
      }
    }
    dx[k] = acc;
  }
}

static msc_status upsample_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                   mbk_tensor *const *out) {
  (void)training; /* nothing to save */
  cu_upsample *op = (cu_upsample *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "upsample", "x"));
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->y_dims));
  int64_t count = cu_numel(4, op->y_dims);
  k_upsample_fwd<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(geometry(op), in[0]->data,
                                                                 out[0]->data);
  CU_LAUNCHED("upsample forward");
  return MSC_OK;
}

static msc_status upsample_backward(mbk_op *base, mbk_tensor *const *in,
                                    mbk_tensor *const *out) {
  cu_upsample *op = (cu_upsample *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->y_dims, "upsample", "dy"));
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->x_dims));
  int64_t count = cu_numel(4, op->x_dims);
  k_upsample_bwd<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(geometry(op), in[0]->data,
                                                                 out[0]->data);
  CU_LAUNCHED("upsample backward");
  return MSC_OK;
}

static void upsample_destroy(mbk_op *base) {
  free(base);
}

static const mbk_op_vt upsample_vt = {"upsample", upsample_forward, upsample_backward,
                                      upsample_destroy};

msc_status cu_upsample_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &upsample_vt, sizeof(cu_upsample), &base));
  cu_upsample *op = (cu_upsample *)base;
  mbk_op_in_dims(d, op->x_dims);
  mbk_op_out_dims(d, op->y_dims);
  *out = base;
  return MSC_OK;
}
