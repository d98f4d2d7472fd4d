/*
 * cuda_optim.cu — the optimiser step on device tensors (mbk_iface.optim_update): one
 * thread per element running msci_adamw_elem / msci_sgd_elem of optim_core.h, with the
 * step's scalars computed once on the host by msci_adamw_coefs, exactly as
 * msci_optim_update does. This file is compiled without FMA contraction (see
 * CMakeLists.txt), so every element rounds as on the host: the same bits.
 *
 * The gradient statistics (mbk_iface.grad_stats): per tensor, a fixed number of blocks
 * (a function of its size only) add squares in double over grid-strided shares and
 * reduce them in a fixed tree; one block per tensor then adds the partial sums in a fixed
 * tree; the host adds the per-tensor sums in the tensors' order and finds the first one
 * that is not finite. Same bits from run to run; against the host's serial sum
 * (the CPU backend's) the double differs in its last bits only.
 * Only one double per tensor comes to the host.
 */
#include <math.h>
#include <stdlib.h>

#define MSCI_HD __host__ __device__
#include "optim_core.h"

#include "cuda_internal.h"

__global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n,
                        msci_adamw_coef k, int32_t scaled, float gs) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float gi = scaled ? g[i] * gs : g[i];
    msci_adamw_elem(&p[i], &m[i], &v[i], gi, &k);
  }
}

__global__ void k_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float wd,
                      float momentum, int32_t nesterov, int32_t scaled, float gs) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float gi = scaled ? g[i] * gs : g[i];
    msci_sgd_elem(&p[i], buf ? &buf[i] : NULL, gi, lr, wd, momentum, nesterov);
  }
}

static msc_status expect_count(const mbk_tensor *t, int64_t n, const char *name) {
  if (!t) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: %s is NULL", name);
  if (t->ndim == 0 || cu_numel(t->ndim, t->dims) != n)
    return CU_FAIL(MSC_E_SHAPE, "cuda: optim_update: %s holds %lld floats, expected %lld", name,
                   (long long)(t->ndim ? cu_numel(t->ndim, t->dims) : 0), (long long)n);
  return MSC_OK;
}

msc_status cu_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                           const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2) {
  if (!ctx || !d) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: NULL argument");
  if (d->type != MBK_OPTIM_ADAMW && d->type != MBK_OPTIM_SGD)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: unknown optimiser %d",
                   (int)d->type);
  if (d->n <= 0)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: n = %lld", (long long)d->n);
  const int adamw = d->type == MBK_OPTIM_ADAMW;
  const int momentum = !adamw && (float)d->momentum != 0.0f;
  CU_CHECK(expect_count(param, d->n, "param"));
  CU_CHECK(expect_count(grad, d->n, "grad"));
  if (adamw || momentum) CU_CHECK(expect_count(m1, d->n, "m1"));
  if (adamw) CU_CHECK(expect_count(m2, d->n, "m2"));
  CU_CHECK(cu_enter(ctx));
  mbk_tensor *touched[3] = {param, momentum || adamw ? m1 : NULL, adamw ? m2 : NULL};
  CU_CHECK(cu_tensor_use(ctx, grad));
  for (int i = 0; i < 3; ++i)
    if (touched[i]) CU_CHECK(cu_tensor_use(ctx, touched[i]));
  /* The clipping factor: exactly 1 leaves the gradient alone, else g·(float)scale. */
  const int32_t scaled = d->grad_scale != 1.0;
  const float gs = (float)d->grad_scale;
  if (adamw) {
    msci_adamw_coef k =
        msci_adamw_coefs(d->lr, d->beta1, d->beta2, d->eps, d->weight_decay, d->step);
    k_adamw<<<cu_grid(d->n), CU_THREADS, 0, ctx->stream>>>(param->data, grad->data, m1->data,
                                                           m2->data, d->n, k, scaled, gs);
  } else {
    k_sgd<<<cu_grid(d->n), CU_THREADS, 0, ctx->stream>>>(
        param->data, grad->data, momentum ? m1->data : NULL, d->n, (float)d->lr,
        (float)d->weight_decay, (float)d->momentum, d->nesterov, scaled, gs);
  }
  CU_LAUNCHED("optimiser update");
  for (int i = 0; i < 3; ++i)
    if (touched[i]) CU_CHECK(cu_tensor_wrote(ctx, touched[i]));
  return MSC_OK;
}

/* ---- gradient statistics ------------------------------------------------------------------ */

/* Partial sums per tensor: at most this many blocks, each writing one double. */
#define CU_STATS_BLOCKS 1024

static unsigned stats_blocks(int64_t n) {
  int64_t b = (n + CU_THREADS - 1) / CU_THREADS;
  if (b < 1) b = 1;
  return (unsigned)(b < CU_STATS_BLOCKS ? b : CU_STATS_BLOCKS);
}

/* Fixed-order tree over the block's CU_THREADS values in sh; the sum ends in sh[0]. */
__device__ static void block_tree(double *sh) {
  __syncthreads();
  for (unsigned w = CU_THREADS / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
}

/* partial[blockIdx.x] = Σ g[i]² over the block's grid-strided share of the n elements. */
__global__ void k_sumsq_partial(const float *g, int64_t n, double *partial) {
  __shared__ double sh[CU_THREADS];
  double s = 0.0;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    double x = (double)g[i];
    s += x * x; /* exact square: a float's square fits a double */
  }
  sh[threadIdx.x] = s;
  block_tree(sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

/* One block per tensor: out[t] = Σ of its nb[t] partial sums (CU_STATS_BLOCKS apart). */
__global__ void k_sumsq_final(const double *partial, const unsigned *nb, double *out) {
  __shared__ double sh[CU_THREADS];
  const double *p = partial + (size_t)blockIdx.x * CU_STATS_BLOCKS;
  double s = 0.0;
  for (unsigned i = threadIdx.x; i < nb[blockIdx.x]; i += CU_THREADS) s += p[i];
  sh[threadIdx.x] = s;
  block_tree(sh);
  if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}

msc_status cu_grad_stats(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                         int32_t *first_bad, double *sumsq) {
  if (!ctx || !first_bad || n < 0 || (n > 0 && !t))
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: grad_stats: bad argument");
  for (int32_t i = 0; i < n; ++i)
    if (!t[i] || t[i]->ndim == 0)
      return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: grad_stats: tensor %d is %s", (int)i,
                     t[i] ? "empty" : "NULL");
  *first_bad = -1;
  if (sumsq) *sumsq = 0.0;
  if (n == 0) return MSC_OK;
  CU_CHECK(cu_enter(ctx));
  for (int32_t i = 0; i < n; ++i) CU_CHECK(cu_tensor_use(ctx, t[i]));
  /* Device scratch: the partial sums, the per-tensor block counts and the sums. */
  const size_t partial_bytes = (size_t)n * CU_STATS_BLOCKS * sizeof(double);
  const size_t sums_bytes = (size_t)n * sizeof(double), nb_bytes = (size_t)n * sizeof(unsigned);
  double *sums = (double *)malloc(sums_bytes);
  unsigned *nb = (unsigned *)malloc(nb_bytes);
  cu_buf scratch = {NULL, 0};
  msc_status st = sums && nb ? MSC_OK : CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: grad_stats");
  if (st == MSC_OK) st = cu_buf_ensure(ctx, &scratch, partial_bytes + sums_bytes + nb_bytes);
  double *d_partial = (double *)scratch.p, *d_sums = d_partial + (size_t)n * CU_STATS_BLOCKS;
  unsigned *d_nb = (unsigned *)(d_sums + n);
  for (int32_t i = 0; st == MSC_OK && i < n; ++i) {
    const int64_t count = cu_numel(t[i]->ndim, t[i]->dims);
    nb[i] = stats_blocks(count);
    k_sumsq_partial<<<nb[i], CU_THREADS, 0, ctx->stream>>>(
        t[i]->data, count, d_partial + (size_t)i * CU_STATS_BLOCKS);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) st = cu_rt_fail(e, "grad_stats: partial sums");
  }
  if (st == MSC_OK) st = cu_upload_small(ctx, d_nb, nb, nb_bytes);
  if (st == MSC_OK) {
    k_sumsq_final<<<(unsigned)n, CU_THREADS, 0, ctx->stream>>>(d_partial, d_nb, d_sums);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) st = cu_rt_fail(e, "grad_stats: sums");
  }
  if (st == MSC_OK) {
    cudaError_t e =
        cudaMemcpyAsync(sums, d_sums, sums_bytes, cudaMemcpyDeviceToHost, ctx->stream);
    if (e != cudaSuccess) st = cu_rt_fail(e, "grad_stats: download");
  }
  if (st == MSC_OK) st = cu_sync(ctx, "grad_stats");
  if (st == MSC_OK) {
    /* Finite squares cannot overflow a double: a sum is not finite exactly when its
     * tensor holds a NaN or an infinity. */
    double total = 0.0;
    for (int32_t i = 0; i < n && *first_bad < 0; ++i) {
      if (!isfinite(sums[i])) *first_bad = i;
      total += sums[i];
    }
    if (sumsq) *sumsq = total;
  }
  if (scratch.p) cu_buf_release(ctx, &scratch);
  free(sums);
  free(nb);
  return st;
}
